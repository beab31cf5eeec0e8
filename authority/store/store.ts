/**
 * The authority's state, over either dialect. Every write that must be ordered across
 * processes takes a database lock, never an in-process one, so any number of authority
 * replicas on one Postgres behave as one: bundle versions are allocated under the fleet row's
 * lock, audit entries under a lock on the audit table.
 *
 * Bundles and audit entries are only ever inserted; this class has no path that updates or
 * deletes them.
 *
 * A submit stores a bundle; what agents run changes only through the fleet's state (stable and
 * candidate versions), and every change of a state — the first bundle making itself stable, a
 * promote, setFleetState — happens under the same fleet lock as submits, raises its generation
 * by one, is audited and announced on FLEET_STATE_CHANNEL in its transaction.
 */
import { randomUUID } from "node:crypto";
import { type Kysely, sql, type Transaction } from "kysely";
import {
  type AgentFilter,
  countAgents,
  DEFAULT_AGENT_STALE_AFTER_MS,
  type FleetStatus,
} from "./agent-status.js";
import { auditEntryHash, chainBreak, GENESIS_HASH, jsonDetails } from "./audit-chain.js";
import type { Database } from "./database.js";
import { StoreError } from "./errors.js";
import {
  applyChange,
  downgrade,
  emptyFleetState,
  FLEET_STATE_CHANNEL,
  type FleetStateChange,
  type FleetStateChangedEvent,
  type FleetStateFields,
  type FleetStateResult,
  inconsistency,
  parseFleetStateEvent,
  promoted,
  sameFields,
  stateDetails,
} from "./fleet-state.js";
import { type HealthSummary, summarizeHealth } from "./health-summary.js";
import {
  parseRolloutEvent,
  ROLLOUT_CHANNEL,
  type RolloutChangedEvent,
  RolloutStore,
} from "./rollout-store.js";
import {
  type AgentReport,
  type AgentRow,
  type AuditRow,
  BUNDLE_SUMMARY_COLUMNS,
  type BundleRow,
  type BundleSummary,
  type Fleet,
  type FleetState,
  type HealthSampleRow,
  type SigningKeyRow,
  type SigningKeyStatus,
  TOKEN_COLUMNS,
  type TokenRole,
  type TokenRow,
  toAgentRow,
  toAuditRow,
  toBundleRow,
  toBundleSummary,
  toFleet,
  toFleetState,
  toHealthSampleRow,
  toSigningKeyRow,
  toTokenRow,
} from "./rows.js";
import type { Tables } from "./tables.js";

type Executor = Kysely<Tables>;

/** The NOTIFY channel of bundle creation; payload `{"fleet":…,"version":…}`. */
export const BUNDLE_CHANNEL = "coherent_bundles";

export interface AuditInput {
  readonly actor: string;
  readonly action: string;
  readonly target: string;
  readonly details?: Record<string, unknown>;
}

export interface BuiltBundle {
  readonly jws: string;
  readonly config: unknown;
  readonly createdBy: string;
  readonly message?: string;
  readonly rollbackOf?: number;
  /** Appended in the same transaction: the bundle and its audit entry commit together or not at all. */
  readonly audit?: AuditInput;
}

/**
 * Called inside submitBundle's transaction, holding the fleet's lock, with the version being
 * allocated, its parent (the fleet's latest version, null for the first) and the creation time
 * the row will carry. It must not use the database: on PGlite the transaction holds the only
 * connection. A throw rolls everything back and the version stays free.
 */
export type BundleBuilder = (version: number, parent: number | null, createdAt: Date) => Promise<BuiltBundle>;

export type SubmitResult =
  | { readonly status: "created"; readonly bundle: BundleRow }
  /** The content equals the fleet's latest bundle, which is returned; nothing was written. */
  | { readonly status: "unchanged"; readonly bundle: BundleRow };

export interface BundleCreatedEvent {
  readonly fleet: string;
  readonly version: number;
}

export interface AuditFilter {
  readonly actor?: string;
  readonly action?: string;
  readonly target?: string;
  /** Entries at or after this time. */
  readonly since?: Date;
  /** Entries before this seq: the next page after a page ending at it. */
  readonly beforeSeq?: number;
  /** Default 100, at most 1,000. */
  readonly limit?: number;
}

export type AuditVerification =
  | { readonly ok: true; readonly entries: number }
  /** `entries` counts the intact entries before the break. */
  | { readonly ok: false; readonly entries: number; readonly brokenAt: { seq: number; reason: string } };

export interface HealthSampleFilter {
  readonly fleet: string;
  readonly version?: number;
  readonly region?: string;
  /** Windows starting at or after this time. */
  readonly since?: Date;
  /** Windows ending at or before this time (window ends are exclusive). */
  readonly until?: Date;
}

export interface AuthorityStoreOptions {
  /** Milliseconds since the epoch; stamps bundles, audit entries, tokens and keys. */
  readonly now?: () => number;
  /** An agent not heard of for longer is shown as stale; default DEFAULT_AGENT_STALE_AFTER_MS. */
  readonly agentStaleAfterMs?: number;
}

const VERIFY_BATCH = 1000;

export class AuthorityStore {
  readonly #database: Database;
  readonly #now: () => number;
  readonly #agentStaleAfterMs: number;

  /** Rollouts, their events and the controller's lease. */
  readonly rollouts: RolloutStore;

  constructor(database: Database, options: AuthorityStoreOptions = {}) {
    this.#database = database;
    this.#now = options.now ?? Date.now;
    this.#agentStaleAfterMs = options.agentStaleAfterMs ?? DEFAULT_AGENT_STALE_AFTER_MS;
    this.rollouts = new RolloutStore(
      database.db,
      (entry, trx) => this.#appendAudit(trx, entry),
      (channel, payload, trx) => database.notify(channel, payload, trx),
    );
  }

  get #db() {
    return this.#database.db;
  }

  async createFleet(input: { name: string; description?: string }): Promise<Fleet> {
    const row = await this.#db
      .insertInto("fleets")
      .values({ name: input.name, description: input.description ?? null, created_at: this.#date() })
      .onConflict((conflict) => conflict.column("name").doNothing())
      .returningAll()
      .executeTakeFirst();
    if (!row) throw new StoreError("fleet_exists", `fleet "${input.name}" already exists`);
    return toFleet(row);
  }

  async getFleet(name: string): Promise<Fleet | undefined> {
    const row = await this.#db.selectFrom("fleets").selectAll().where("name", "=", name).executeTakeFirst();
    return row && toFleet(row);
  }

  async listFleets(): Promise<Fleet[]> {
    const rows = await this.#db.selectFrom("fleets").selectAll().orderBy("name").execute();
    return rows.map(toFleet);
  }

  /**
   * Allocates the fleet's next version and stores what `build` returns, in one transaction
   * holding the fleet row's lock, so concurrent submits from any number of processes get
   * 1, 2, 3… with no gap and no duplicate. Throws StoreError "unknown_fleet".
   */
  submitBundle(fleet: string, contentSha256: string, build: BundleBuilder): Promise<SubmitResult> {
    return this.#db.transaction().execute(async (trx): Promise<SubmitResult> => {
      await lockFleet(trx, fleet);
      const latest = await trx
        .selectFrom("bundles")
        .select(["version", "content_sha256"])
        .where("fleet", "=", fleet)
        .orderBy("version", "desc")
        .limit(1)
        .executeTakeFirst();
      if (latest?.content_sha256 === contentSha256) {
        const row = await trx
          .selectFrom("bundles")
          .selectAll()
          .where("fleet", "=", fleet)
          .where("version", "=", latest.version)
          .executeTakeFirstOrThrow();
        return { status: "unchanged", bundle: toBundleRow(row) };
      }
      const version = (latest?.version ?? 0) + 1;
      const parent = latest?.version ?? null;
      const createdAt = this.#date();
      const built = await build(version, parent, createdAt);
      const bundle: BundleRow = {
        fleet,
        version,
        parent,
        contentSha256,
        createdBy: built.createdBy,
        createdAt,
        message: built.message ?? null,
        rollbackOf: built.rollbackOf ?? null,
        jws: built.jws,
        config: built.config,
      };
      await trx
        .insertInto("bundles")
        .values({
          fleet,
          version,
          parent,
          content_sha256: contentSha256,
          jws: bundle.jws,
          config: JSON.stringify(bundle.config),
          created_by: bundle.createdBy,
          created_at: createdAt,
          message: bundle.message,
          rollback_of: bundle.rollbackOf,
        })
        .execute();
      if (built.audit) await this.#appendAudit(trx, built.audit);
      const event: BundleCreatedEvent = { fleet, version };
      await this.#database.notify(BUNDLE_CHANNEL, JSON.stringify(event), trx);
      if (parent === null) {
        // Announced after the bundle: a state is never heard of before the bundle it names.
        const current = emptyFleetState(fleet);
        await this.#transition(trx, current, promoted(version), (state) => ({
          actor: built.audit?.actor ?? built.createdBy,
          action: "fleet.state",
          target: `fleet:${fleet}`,
          details: stateChangeDetails(current, state, "first_bundle"),
        }));
      }
      return { status: "created", bundle };
    });
  }

  async getBundle(fleet: string, version: number): Promise<BundleRow | undefined> {
    const row = await this.#db
      .selectFrom("bundles")
      .selectAll()
      .where("fleet", "=", fleet)
      .where("version", "=", version)
      .executeTakeFirst();
    return row && toBundleRow(row);
  }

  async latestBundle(fleet: string): Promise<BundleRow | undefined> {
    const row = await this.#db
      .selectFrom("bundles")
      .selectAll()
      .where("fleet", "=", fleet)
      .orderBy("version", "desc")
      .limit(1)
      .executeTakeFirst();
    return row && toBundleRow(row);
  }

  /** Newest first, without content (getBundle has it). Default 50, at most 1,000. */
  async listBundles(
    fleet: string,
    page: { limit?: number; beforeVersion?: number } = {},
  ): Promise<BundleSummary[]> {
    let query = this.#db
      .selectFrom("bundles")
      .select(BUNDLE_SUMMARY_COLUMNS)
      .where("fleet", "=", fleet)
      .orderBy("version", "desc")
      .limit(clampLimit(page.limit, 50));
    if (page.beforeVersion !== undefined) query = query.where("version", "<", page.beforeVersion);
    const rows = await query.execute();
    return rows.map(toBundleSummary);
  }

  /** The fleet's state (generation 0 before its first bundle); undefined for an unknown fleet. */
  async getFleetState(fleet: string): Promise<FleetState | undefined> {
    if (!(await this.getFleet(fleet))) return undefined;
    return readFleetState(this.#db, fleet);
  }

  /**
   * Changes a fleet's state as the rollout controller does, audited as `fleet.state` with the
   * state before and after. Throws StoreError "unknown_fleet", "unknown_version",
   * "invalid_fleet_state" or "downgrade"; a change that changes nothing writes nothing.
   * `guard` runs first in the same transaction and may refuse it by throwing (the controller
   * checks its lease epoch there).
   */
  setFleetState(
    fleet: string,
    change: FleetStateChange,
    actor: string,
    guard?: (trx: Transaction<Tables>) => Promise<void>,
  ): Promise<FleetStateResult> {
    return this.#db.transaction().execute(async (trx) => {
      await guard?.(trx);
      await lockFleet(trx, fleet);
      const current = await readFleetState(trx, fleet);
      return this.#transition(trx, current, applyChange(current, change), (state) => ({
        actor,
        action: "fleet.state",
        target: `fleet:${fleet}`,
        details: stateChangeDetails(current, state),
      }));
    });
  }

  /**
   * The emergency path: `version` becomes the stable version at once, for every agent. It ends
   * any rollout in progress (candidate, rollout id and percent cleared, named in the audit
   * entry's `ended_rollout`), since a rollout staged against the old stable version no longer
   * means what it did. Audited as `fleet.promote` with `{from, to}` stable versions. Throws
   * StoreError "unknown_fleet", "unknown_version" or "downgrade" (below a version agents may run).
   */
  promoteStable(fleet: string, version: number, actor: string): Promise<FleetStateResult> {
    return this.#db.transaction().execute(async (trx) => {
      await lockFleet(trx, fleet);
      const current = await readFleetState(trx, fleet);
      const ended =
        current.rolloutId === null
          ? {}
          : {
              ended_rollout: {
                rollout_id: current.rolloutId,
                candidate_version: current.candidateVersion,
                candidate_percent: current.candidatePercent,
              },
            };
      return this.#transition(trx, current, promoted(version), (state) => ({
        actor,
        action: "fleet.promote",
        target: `fleet:${fleet}`,
        details: { from: current.stableVersion, to: version, generation: state.generation, ...ended },
      }));
    });
  }

  /**
   * Appends to the hash chain. Pass the surrounding transaction to make the entry part of it;
   * without one the entry commits on its own.
   */
  appendAudit(entry: AuditInput, trx?: Transaction<Tables>): Promise<AuditRow> {
    if (trx) return this.#appendAudit(trx, entry);
    return this.#db.transaction().execute((own) => this.#appendAudit(own, entry));
  }

  /** Newest first. Default 100 entries, at most 1,000. */
  async listAudit(filter: AuditFilter = {}): Promise<AuditRow[]> {
    let query = this.#db
      .selectFrom("audit_log")
      .selectAll()
      .orderBy("seq", "desc")
      .limit(clampLimit(filter.limit, 100));
    if (filter.actor !== undefined) query = query.where("actor", "=", filter.actor);
    if (filter.action !== undefined) query = query.where("action", "=", filter.action);
    if (filter.target !== undefined) query = query.where("target", "=", filter.target);
    if (filter.since !== undefined) query = query.where("at", ">=", filter.since);
    if (filter.beforeSeq !== undefined) query = query.where("seq", "<", filter.beforeSeq);
    const rows = await query.execute();
    return rows.map(toAuditRow);
  }

  /**
   * Walks the whole chain in seq order and names the first entry that breaks it: edited
   * (its hash no longer matches), with an edited hash (the same), or following a removed one.
   * Removing the newest entries leaves a shorter valid chain; only a copy of the head kept
   * elsewhere can show that.
   */
  async verifyAudit(): Promise<AuditVerification> {
    let previous: AuditRow | undefined;
    let entries = 0;
    for (;;) {
      let query = this.#db.selectFrom("audit_log").selectAll().orderBy("seq").limit(VERIFY_BATCH);
      if (previous) query = query.where("seq", ">", previous.seq);
      const rows = await query.execute();
      for (const row of rows) {
        const entry = toAuditRow(row);
        const reason = chainBreak(entry, previous);
        if (reason !== undefined) return { ok: false, entries, brokenAt: { seq: entry.seq, reason } };
        previous = entry;
        entries++;
      }
      if (rows.length < VERIFY_BATCH) return { ok: true, entries };
    }
  }

  async createToken(input: {
    name: string;
    role: TokenRole;
    tokenHash: string;
    createdBy: string;
  }): Promise<TokenRow> {
    const row = await this.#db
      .insertInto("api_tokens")
      .values({
        id: randomUUID(),
        name: input.name,
        role: input.role,
        token_hash: input.tokenHash,
        created_by: input.createdBy,
        created_at: this.#date(),
      })
      .returning(TOKEN_COLUMNS)
      .executeTakeFirstOrThrow();
    return toTokenRow(row);
  }

  /** The token with this hash unless it was revoked. */
  async findToken(tokenHash: string): Promise<TokenRow | undefined> {
    const row = await this.#db
      .selectFrom("api_tokens")
      .select(TOKEN_COLUMNS)
      .where("token_hash", "=", tokenHash)
      .where("revoked_at", "is", null)
      .executeTakeFirst();
    return row && toTokenRow(row);
  }

  /** Every token, revoked ones included, oldest first. */
  async listTokens(): Promise<TokenRow[]> {
    const rows = await this.#db
      .selectFrom("api_tokens")
      .select(TOKEN_COLUMNS)
      .orderBy("created_at")
      .execute();
    return rows.map(toTokenRow);
  }

  /** The token as revoked now; undefined when there is no such token or it was revoked before. */
  async revokeToken(id: string): Promise<TokenRow | undefined> {
    const row = await this.#db
      .updateTable("api_tokens")
      .set({ revoked_at: this.#date() })
      .where("id", "=", id)
      .where("revoked_at", "is", null)
      .returning(TOKEN_COLUMNS)
      .executeTakeFirst();
    return row && toTokenRow(row);
  }

  /**
   * Registers a public key or changes its status. Making one key active makes the active one
   * before it trusted, in the same transaction: there is never more than one signing key.
   */
  async upsertSigningKey(input: {
    kid: string;
    publicJwk: unknown;
    status: SigningKeyStatus;
  }): Promise<void> {
    const at = this.#date();
    await this.#db.transaction().execute(async (trx) => {
      // Two rotations at once would otherwise both demote, then collide on the one-active index.
      await sql`lock table signing_keys in exclusive mode`.execute(trx);
      if (input.status === "active") {
        await trx
          .updateTable("signing_keys")
          .set({ status: "trusted", updated_at: at })
          .where("status", "=", "active")
          .where("kid", "<>", input.kid)
          .execute();
      }
      await trx
        .insertInto("signing_keys")
        .values({
          kid: input.kid,
          public_jwk: JSON.stringify(input.publicJwk),
          status: input.status,
          created_at: at,
          updated_at: at,
        })
        .onConflict((conflict) =>
          conflict.column("kid").doUpdateSet({ status: input.status, updated_at: at }),
        )
        .execute();
    });
  }

  /** Oldest first. */
  async listSigningKeys(): Promise<SigningKeyRow[]> {
    const rows = await this.#db
      .selectFrom("signing_keys")
      .selectAll()
      .orderBy("created_at")
      .orderBy("kid")
      .execute();
    return rows.map(toSigningKeyRow);
  }

  /**
   * Records agents as distributors report them, every field replaced by the newer report. An
   * agent may move between distributors, so a report older than the stored one (by lastSeen)
   * changes nothing. Agents of fleets the authority does not know are skipped, not refused: one
   * stray agent must not cost a region its batch. Resolves with how many were of known fleets.
   */
  async upsertAgentStatuses(reports: readonly AgentReport[]): Promise<number> {
    const newest = new Map<string, AgentReport>();
    for (const report of reports) {
      const held = newest.get(report.id);
      if (!held || held.lastSeen <= report.lastSeen) newest.set(report.id, report);
    }
    const rows = await this.#ofKnownFleets([...newest.values()]);
    if (rows.length === 0) return 0;
    const updatedAt = this.#date();
    await this.#db
      .insertInto("agents")
      .values(
        rows.map((row) => ({
          id: row.id,
          fleet: row.fleet,
          region: row.region,
          distributor_id: row.distributorId,
          running_version: row.runningVersion,
          desired_version: row.desiredVersion,
          state: row.state,
          nack_version: row.nack?.version ?? null,
          nack_errors: JSON.stringify(row.nack?.errors ?? []),
          labels: JSON.stringify(row.labels),
          connected: row.connected,
          last_seen: row.lastSeen,
          updated_at: updatedAt,
        })),
      )
      .onConflict((conflict) =>
        conflict
          .column("id")
          .doUpdateSet((eb) => ({
            fleet: eb.ref("excluded.fleet"),
            region: eb.ref("excluded.region"),
            distributor_id: eb.ref("excluded.distributor_id"),
            running_version: eb.ref("excluded.running_version"),
            desired_version: eb.ref("excluded.desired_version"),
            state: eb.ref("excluded.state"),
            nack_version: eb.ref("excluded.nack_version"),
            nack_errors: eb.ref("excluded.nack_errors"),
            labels: eb.ref("excluded.labels"),
            connected: eb.ref("excluded.connected"),
            last_seen: eb.ref("excluded.last_seen"),
            updated_at: eb.ref("excluded.updated_at"),
          }))
          .where((eb) => eb("agents.last_seen", "<=", eb.ref("excluded.last_seen"))),
      )
      .execute();
    return rows.length;
  }

  /** Sorted by fleet, region and id; `stale` as of now (see #staleness). */
  async listAgents(filter: AgentFilter = {}): Promise<AgentRow[]> {
    const stale = this.#staleness();
    let query = this.#db
      .selectFrom("agents")
      .selectAll()
      .select(stale.as("stale"))
      .orderBy("fleet")
      .orderBy("region")
      .orderBy("id");
    if (filter.fleet !== undefined) query = query.where("fleet", "=", filter.fleet);
    if (filter.region !== undefined) query = query.where("region", "=", filter.region);
    if (filter.state !== undefined) query = query.where("state", "=", filter.state);
    if (filter.stale !== undefined) query = query.where(filter.stale ? stale : sql<boolean>`not ${stale}`);
    const rows = await query.execute();
    return rows.map(toAgentRow);
  }

  /** The fleet's state and how its agents add up per version, as of now; undefined for an unknown fleet. */
  async fleetStatus(fleet: string): Promise<FleetStatus | undefined> {
    const state = await this.getFleetState(fleet);
    if (state === undefined) return undefined;
    // Staleness is computed once per row in a subquery: grouping by the expression itself would
    // bind its cutoff twice, and Postgres does not see two parameters as the same expression.
    const agents = this.#db
      .selectFrom("agents")
      .select(["running_version", "desired_version", "state", this.#staleness().as("stale")])
      .where("fleet", "=", fleet)
      .as("agents");
    const rows = await this.#db
      .selectFrom(agents)
      .select((eb) => [
        "running_version",
        "desired_version",
        "state",
        "stale",
        eb.fn.countAll<string | number>().as("count"),
      ])
      .groupBy(["running_version", "desired_version", "state", "stale"])
      .execute();
    return countAgents(
      state,
      rows.map((row) => ({
        runningVersion: row.running_version,
        desiredVersion: row.desired_version,
        state: row.state,
        stale: row.stale,
        count: Number(row.count),
      })),
    );
  }

  /**
   * Notes that a distributor's feed is alive, now. Its connected agents stay live while it is
   * heard from: it reports an agent only when something about it changes, and as disconnected
   * when the agent's stream closes.
   */
  async distributorHeard(id: string, region: string): Promise<void> {
    const lastHeard = this.#date();
    await this.#db
      .insertInto("distributors")
      .values({ id, region, last_heard: lastHeard })
      .onConflict((conflict) => conflict.column("id").doUpdateSet({ region, last_heard: lastHeard }))
      .execute();
  }

  /**
   * True for an agent whose stream is closed, or of which neither it (last_seen) nor its
   * distributor (distributorHeard) was heard within the stale limit: a distributor that went
   * silent cannot vouch for its agents.
   */
  #staleness() {
    const cutoff = new Date(this.#now() - this.#agentStaleAfterMs);
    return sql<boolean>`(not agents.connected or greatest(agents.last_seen, (
      select distributors.last_heard from distributors where distributors.id = agents.distributor_id
    )) < ${cutoff})`;
  }

  /**
   * Stores merged health samples. A distributor sending a (fleet, version, region, window) again,
   * after a reconnect, replaces its sample rather than counting it twice; another distributor's
   * sample of the same window is its own agents' and is kept beside it. Samples of unknown fleets
   * are skipped; resolves with how many were of known fleets.
   */
  async insertHealthSamples(samples: readonly HealthSampleRow[]): Promise<number> {
    const unique = new Map<string, HealthSampleRow>();
    for (const sample of samples) {
      const { fleet, version, region, distributorId, windowStart } = sample;
      unique.set(`${fleet}\0${version}\0${region}\0${distributorId}\0${windowStart.getTime()}`, sample);
    }
    const rows = await this.#ofKnownFleets([...unique.values()]);
    if (rows.length === 0) return 0;
    await this.#db
      .insertInto("health_samples")
      .values(
        rows.map((row) => ({
          fleet: row.fleet,
          version: row.version,
          region: row.region,
          distributor_id: row.distributorId,
          window_start: row.windowStart,
          window_end: row.windowEnd,
          requests: row.requests,
          errors_5xx: row.errors5xx,
          agents: row.agents,
          latency_bounds_ms: JSON.stringify(row.latency.boundsMs),
          latency_buckets: JSON.stringify(row.latency.counts),
          latency_sum_ms: row.latency.sumMs,
        })),
      )
      .onConflict((conflict) =>
        conflict
          .columns(["fleet", "version", "region", "distributor_id", "window_start"])
          .doUpdateSet((eb) => ({
            window_end: eb.ref("excluded.window_end"),
            requests: eb.ref("excluded.requests"),
            errors_5xx: eb.ref("excluded.errors_5xx"),
            agents: eb.ref("excluded.agents"),
            latency_bounds_ms: eb.ref("excluded.latency_bounds_ms"),
            latency_buckets: eb.ref("excluded.latency_buckets"),
            latency_sum_ms: eb.ref("excluded.latency_sum_ms"),
          })),
      )
      .execute();
    return rows.length;
  }

  /** Oldest window first. */
  async listHealthSamples(filter: HealthSampleFilter): Promise<HealthSampleRow[]> {
    let query = this.#db
      .selectFrom("health_samples")
      .selectAll()
      .where("fleet", "=", filter.fleet)
      .orderBy("window_start")
      .orderBy("version")
      .orderBy("region")
      .orderBy("distributor_id");
    if (filter.version !== undefined) query = query.where("version", "=", filter.version);
    if (filter.region !== undefined) query = query.where("region", "=", filter.region);
    if (filter.since !== undefined) query = query.where("window_start", ">=", filter.since);
    if (filter.until !== undefined) query = query.where("window_end", "<=", filter.until);
    const rows = await query.execute();
    return rows.map(toHealthSampleRow);
  }

  /**
   * The fleet's traffic per version over the windows that lie wholly within [since, until): all
   * regions and distributors summed (see health-summary.ts). A window that began before `since`
   * is left out, so a gate judging a stage never counts traffic from before it. Lowest version
   * first; empty when nothing was reported.
   */
  async healthSummary(fleet: string, since: Date, until: Date): Promise<HealthSummary[]> {
    return summarizeHealth(await this.listHealthSamples({ fleet, since, until }));
  }

  async #ofKnownFleets<T extends { readonly fleet: string }>(items: readonly T[]): Promise<T[]> {
    if (items.length === 0) return [];
    const names = [...new Set(items.map((item) => item.fleet))];
    const known = await this.#db.selectFrom("fleets").select("name").where("name", "in", names).execute();
    const knownNames = new Set(known.map((row) => row.name));
    return items.filter((item) => knownNames.has(item.fleet));
  }

  /**
   * Calls `fn` for every bundle created by any process on this database, once its transaction
   * has committed. Resolves once subscribed; the result unsubscribes.
   */
  onBundleCreated(fn: (event: BundleCreatedEvent) => void): Promise<() => Promise<void>> {
    return this.#database.listen(BUNDLE_CHANNEL, (payload) => {
      const event = parseBundleEvent(payload);
      if (event) fn(event);
    });
  }

  /** Every rollout created or changed, in any replica; the payload names it, read it for the rest. */
  onRolloutChanged(fn: (event: RolloutChangedEvent) => void): Promise<() => Promise<void>> {
    return this.#database.listen(ROLLOUT_CHANNEL, (payload) => {
      const event = parseRolloutEvent(payload);
      if (event) fn(event);
    });
  }

  /**
   * Calls `fn` for every fleet state change made by any process on this database, once its
   * transaction has committed: a hint to read the state, which may have moved on since.
   * Changes made while Postgres could not deliver them are not announced: `onMissed` is called
   * once it can again, for the subscriber to read every state. Resolves once subscribed; the
   * result unsubscribes.
   */
  onFleetStateChanged(
    fn: (event: FleetStateChangedEvent) => void,
    onMissed?: () => void,
  ): Promise<() => Promise<void>> {
    return this.#database.listen(
      FLEET_STATE_CHANNEL,
      (payload) => {
        const event = parseFleetStateEvent(payload);
        if (event) fn(event);
      },
      onMissed,
    );
  }

  /**
   * Stores `next` as the fleet's state after `current`, which the caller read holding the fleet's
   * lock, with its audit entry and its announcement — or refuses it, or writes nothing when it
   * equals `current`.
   */
  async #transition(
    trx: Transaction<Tables>,
    current: FleetState,
    next: FleetStateFields,
    audit: (state: FleetState) => AuditInput,
  ): Promise<FleetStateResult> {
    const { fleet } = current;
    const problem = inconsistency(next);
    // The second test only narrows the type: inconsistency() refuses a missing stable version.
    if (problem !== undefined || next.stableVersion === null) {
      throw new StoreError("invalid_fleet_state", `fleet "${fleet}": ${problem ?? "no stable version"}`);
    }
    for (const version of [next.stableVersion, next.candidateVersion]) {
      if (version !== null && !(await bundleExists(trx, fleet, version))) {
        throw new StoreError("unknown_version", `fleet "${fleet}" has no version ${version}`);
      }
    }
    const backwards = downgrade(current, next);
    if (backwards !== undefined) {
      throw new StoreError(
        "downgrade",
        `fleet "${fleet}": ${backwards}, and agents refuse an older version: submit that config again (it becomes a new version) and use the new version`,
      );
    }
    if (sameFields(current, next)) return { status: "unchanged", state: current };
    const updatedAt = this.#date();
    const state: FleetState = { ...current, ...next, generation: current.generation + 1, updatedAt };
    const columns = {
      stable_version: next.stableVersion,
      candidate_version: next.candidateVersion,
      rollout_id: next.rolloutId,
      candidate_percent: next.candidatePercent,
      generation: state.generation,
      updated_at: updatedAt,
    };
    await trx
      .insertInto("fleet_states")
      .values({ fleet, ...columns })
      .onConflict((conflict) => conflict.column("fleet").doUpdateSet(columns))
      .execute();
    await this.#appendAudit(trx, audit(state));
    const event: FleetStateChangedEvent = { fleet, generation: state.generation };
    await this.#database.notify(FLEET_STATE_CHANNEL, JSON.stringify(event), trx);
    return { status: "changed", state };
  }

  async #appendAudit(trx: Transaction<Tables>, input: AuditInput): Promise<AuditRow> {
    // Readers go on; other appenders, in any process, wait until this transaction ends, so
    // the head read below is still the head when the entry is inserted.
    await sql`lock table audit_log in exclusive mode`.execute(trx);
    const head = await trx
      .selectFrom("audit_log")
      .select(["seq", "hash"])
      .orderBy("seq", "desc")
      .limit(1)
      .executeTakeFirst();
    const fields = {
      seq: head ? Number(head.seq) + 1 : 1,
      at: this.#date(),
      actor: input.actor,
      action: input.action,
      target: input.target,
      details: jsonDetails(input.details),
      prevHash: head?.hash ?? GENESIS_HASH,
    };
    const entry: AuditRow = { ...fields, hash: auditEntryHash(fields) };
    await trx
      .insertInto("audit_log")
      .values({
        seq: entry.seq,
        at: entry.at,
        actor: entry.actor,
        action: entry.action,
        target: entry.target,
        details: JSON.stringify(entry.details),
        prev_hash: entry.prevHash,
        hash: entry.hash,
      })
      .execute();
    return entry;
  }

  #date(): Date {
    return new Date(this.#now());
  }
}

/**
 * Takes the fleet row's lock for the rest of the transaction: submits and state changes of one
 * fleet, from any process, run one at a time. NO KEY UPDATE: it does not block inserts that
 * merely reference the fleet. Throws StoreError "unknown_fleet".
 */
async function lockFleet(trx: Transaction<Tables>, fleet: string): Promise<void> {
  const locked = await trx
    .selectFrom("fleets")
    .select("name")
    .where("name", "=", fleet)
    .forNoKeyUpdate()
    .executeTakeFirst();
  if (!locked) throw new StoreError("unknown_fleet", `unknown fleet "${fleet}"`);
}

async function readFleetState(executor: Executor, fleet: string): Promise<FleetState> {
  const row = await executor
    .selectFrom("fleet_states")
    .selectAll()
    .where("fleet", "=", fleet)
    .executeTakeFirst();
  return row ? toFleetState(row) : emptyFleetState(fleet);
}

async function bundleExists(executor: Executor, fleet: string, version: number): Promise<boolean> {
  const row = await executor
    .selectFrom("bundles")
    .select("version")
    .where("fleet", "=", fleet)
    .where("version", "=", version)
    .executeTakeFirst();
  return row !== undefined;
}

function stateChangeDetails(
  before: FleetState,
  after: FleetState,
  cause?: "first_bundle",
): Record<string, unknown> {
  return {
    generation: after.generation,
    from: stateDetails(before),
    to: stateDetails(after),
    ...(cause === undefined ? {} : { cause }),
  };
}

function clampLimit(limit: number | undefined, fallback: number): number {
  if (limit === undefined || !Number.isFinite(limit)) return fallback;
  return Math.min(Math.max(Math.trunc(limit), 1), 1000);
}

function parseBundleEvent(payload: string): BundleCreatedEvent | undefined {
  try {
    const value: unknown = JSON.parse(payload);
    if (typeof value !== "object" || value === null) return undefined;
    const { fleet, version } = value as Record<string, unknown>;
    if (typeof fleet !== "string" || typeof version !== "number") return undefined;
    return { fleet, version };
  } catch {
    return undefined;
  }
}
