/**
 * Rollouts, their transitions and the controller's lease (migrations/0004_rollouts.ts). The
 * state machine decides (rollout-controller/state-machine.ts); this keeps what it decided.
 *
 * Every write of a rollout is a compare-and-set on its `revision`: an operator's command on
 * any replica and the controller's tick never overwrite each other unseen; the loser gets
 * StoreError "conflict" and reads again. The controller also passes its lease epoch, so a
 * leader that was deposed but has not noticed yet writes nothing ("stale_leader").
 */
import { type Kysely, type Selectable, sql, type Transaction } from "kysely";
import type { Plan } from "../../rollout-controller/plan.js";
import {
  FINISHED_PHASES,
  type Phase,
  type Rollout,
  type Step,
  type TransitionReason,
} from "../../rollout-controller/state-machine.js";
import { StoreError } from "./errors.js";
import type { AuditInput } from "./store.js";
import type { RolloutEventsTable, RolloutsTable, Tables } from "./tables.js";

/** A rollout as stored: the state machine's record plus the store's bookkeeping. */
export interface StoredRollout extends Rollout {
  readonly revision: number;
  readonly createdBy: string;
  readonly finishedAt: number | undefined;
  /** Whether the fleet state matches the rollout's phase and stage (see migrations/0004). */
  readonly applied: boolean;
  /** The bundle that brought the stable content back, once published. */
  readonly restoreVersion: number | undefined;
}

export interface RolloutEvent {
  readonly id: number;
  readonly rolloutId: string;
  readonly at: Date;
  readonly from: Phase;
  readonly to: Phase;
  readonly fromStage: number;
  readonly toStage: number;
  readonly reason: TransitionReason;
  readonly actor: string;
}

export interface RolloutFilter {
  readonly fleet?: string;
  /** Only pending, running and paused ones. */
  readonly live?: boolean;
  readonly limit?: number;
}

/** How the store appends to the audit chain inside a transaction. */
export type AppendAudit = (entry: AuditInput, trx: Transaction<Tables>) => Promise<unknown>;
/** How the store announces a change when `trx` commits (Database#notify). */
export type Announce = (channel: string, payload: string, trx: Transaction<Tables>) => Promise<void>;

/** The NOTIFY channel of rollout changes; payload `{"id", "fleet", "revision"}`. */
export const ROLLOUT_CHANNEL = "coherent_rollouts";

export interface RolloutChangedEvent {
  readonly id: string;
  readonly fleet: string;
  readonly revision: number;
}

const LIVE: readonly Phase[] = ["pending", "running", "paused"];
const UNIQUE_VIOLATION = "23505";

export class RolloutStore {
  readonly #db: Kysely<Tables>;
  readonly #audit: AppendAudit;
  readonly #announce: Announce;

  constructor(db: Kysely<Tables>, audit: AppendAudit, announce: Announce) {
    this.#db = db;
    this.#audit = audit;
    this.#announce = announce;
  }

  #changed(row: { id: string; fleet: string; revision: number }, trx: Transaction<Tables>): Promise<void> {
    const event: RolloutChangedEvent = { id: row.id, fleet: row.fleet, revision: row.revision };
    return this.#announce(ROLLOUT_CHANNEL, JSON.stringify(event), trx);
  }

  /** Stores a new (pending) rollout; StoreError "rollout_active" when the fleet has a live one. */
  async create(rollout: Rollout, actor: string): Promise<StoredRollout> {
    try {
      return await this.#db.transaction().execute(async (trx) => {
        const row = await trx
          .insertInto("rollouts")
          .values({
            ...columns(rollout),
            id: rollout.id,
            fleet: rollout.fleet,
            created_by: actor,
            created_at: new Date(rollout.createdAt),
            revision: 1,
            applied: false,
          })
          .returningAll()
          .executeTakeFirstOrThrow();
        await this.#audit(
          {
            actor,
            action: "rollout.create",
            target: `fleet:${rollout.fleet}`,
            details: {
              rollout_id: rollout.id,
              candidate_version: rollout.candidateVersion,
              stable_version: rollout.stableVersion,
              stages: rollout.plan.stages.map((s) => `${s.name}:${s.fleetPercent}%`),
            },
          },
          trx,
        );
        await this.#changed(row, trx);
        return fromRow(row);
      });
    } catch (error) {
      if ((error as { code?: string }).code === UNIQUE_VIOLATION)
        throw new StoreError("rollout_active", `fleet "${rollout.fleet}" already has a rollout in progress`);
      throw error;
    }
  }

  async get(id: string): Promise<StoredRollout | undefined> {
    const row = await this.#db.selectFrom("rollouts").selectAll().where("id", "=", id).executeTakeFirst();
    return row && fromRow(row);
  }

  /** Newest first. */
  async list(filter: RolloutFilter = {}): Promise<StoredRollout[]> {
    let query = this.#db.selectFrom("rollouts").selectAll();
    if (filter.fleet !== undefined) query = query.where("fleet", "=", filter.fleet);
    if (filter.live) query = query.where("phase", "in", LIVE);
    const rows = await query
      .orderBy("created_at", "desc")
      .orderBy("id", "desc")
      .limit(filter.limit ?? 100)
      .execute();
    return rows.map(fromRow);
  }

  /** What the controller has to do: live rollouts and finished ones not yet applied. */
  async pendingWork(): Promise<StoredRollout[]> {
    const rows = await this.#db
      .selectFrom("rollouts")
      .selectAll()
      .where((eb) => eb.or([eb("phase", "in", LIVE), eb("applied", "=", false)]))
      .orderBy("created_at")
      .execute();
    return rows.map(fromRow);
  }

  /** Oldest first; the newest `limit` when given. */
  async events(rolloutId: string, limit = 1000): Promise<RolloutEvent[]> {
    const rows = await this.#db
      .selectFrom("rollout_events")
      .selectAll()
      .where("rollout_id", "=", rolloutId)
      .orderBy("id", "desc")
      .limit(limit)
      .execute();
    return rows.reverse().map(eventFromRow);
  }

  /**
   * Stores a step's transition: the rollout, an event and an audit entry, together.
   * StoreError "conflict" when the rollout changed since `before` was read; "stale_leader"
   * when `epoch` is given and is no longer the lease's.
   */
  async save(before: StoredRollout, step: Step, actor: string, epoch?: number): Promise<StoredRollout> {
    const transition = step.transition;
    if (!transition) return before;
    const after = step.rollout;
    return this.#db.transaction().execute(async (trx) => {
      if (epoch !== undefined) await requireEpoch(trx, epoch);
      const row = await trx
        .updateTable("rollouts")
        .set({
          ...columns(after),
          revision: before.revision + 1,
          applied: false,
          finished_at: FINISHED_PHASES.has(after.phase) ? new Date(transition.at) : null,
        })
        .where("id", "=", before.id)
        .where("revision", "=", before.revision)
        .returningAll()
        .executeTakeFirst();
      if (!row)
        throw new StoreError(
          "conflict",
          `rollout ${before.id} changed meanwhile (revision ${before.revision}): read it again`,
        );
      await trx
        .insertInto("rollout_events")
        .values({
          rollout_id: before.id,
          at: new Date(transition.at),
          from_phase: transition.from,
          to_phase: transition.to,
          from_stage: transition.fromStage,
          to_stage: transition.toStage,
          reason: JSON.stringify(transition.reason),
          actor,
        })
        .execute();
      await this.#audit(
        {
          actor,
          action: `rollout.${transition.to === transition.from ? "update" : transition.to}`,
          target: `fleet:${after.fleet}`,
          details: {
            rollout_id: after.id,
            from: transition.from,
            to: transition.to,
            from_stage: after.plan.stages[transition.fromStage]?.name ?? null,
            to_stage: after.plan.stages[transition.toStage]?.name ?? null,
            reason: transition.reason,
          },
        },
        trx,
      );
      await this.#changed(row, trx);
      return fromRow(row);
    });
  }

  /** Records the bundle that restored the stable content; keeps the first one recorded. */
  async setRestoreVersion(id: string, version: number, epoch?: number): Promise<void> {
    await this.#db.transaction().execute(async (trx) => {
      if (epoch !== undefined) await requireEpoch(trx, epoch);
      await trx
        .updateTable("rollouts")
        .set({ restore_version: version })
        .where("id", "=", id)
        .where("restore_version", "is", null)
        .execute();
    });
  }

  /** The fleet state matches `revision`; false when the rollout moved on meanwhile. */
  async markApplied(id: string, revision: number, epoch?: number): Promise<boolean> {
    return this.#db.transaction().execute(async (trx) => {
      if (epoch !== undefined) await requireEpoch(trx, epoch);
      const result = await trx
        .updateTable("rollouts")
        .set({ applied: true })
        .where("id", "=", id)
        .where("revision", "=", revision)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    });
  }

  /** A new leadership: the next epoch, which the leader passes to its writes. */
  async acquireEpoch(holder: string): Promise<number> {
    const acquiredAt = new Date();
    const row = await this.#db
      .insertInto("controller_lease")
      .values({ id: 1, epoch: 1, holder, acquired_at: acquiredAt })
      .onConflict((c) =>
        c
          .column("id")
          .doUpdateSet({ epoch: sql<number>`controller_lease.epoch + 1`, holder, acquired_at: acquiredAt }),
      )
      .returning("epoch")
      .executeTakeFirstOrThrow();
    return Number(row.epoch);
  }

  /** Throws StoreError "stale_leader" inside `trx` unless `epoch` is the lease's. */
  requireEpoch(trx: Transaction<Tables>, epoch: number): Promise<void> {
    return requireEpoch(trx, epoch);
  }

  async defaultPlan(fleet: string): Promise<Plan | undefined> {
    const row = await this.#db
      .selectFrom("fleets")
      .select("default_plan")
      .where("name", "=", fleet)
      .executeTakeFirst();
    if (!row) throw new StoreError("unknown_fleet", `unknown fleet "${fleet}"`);
    return (row.default_plan ?? undefined) as Plan | undefined;
  }

  /** Sets (or, with undefined, clears) the fleet's default plan; audited. */
  async setDefaultPlan(fleet: string, plan: Plan | undefined, actor: string): Promise<void> {
    await this.#db.transaction().execute(async (trx) => {
      const updated = await trx
        .updateTable("fleets")
        .set({ default_plan: plan === undefined ? null : JSON.stringify(plan) })
        .where("name", "=", fleet)
        .executeTakeFirst();
      if (Number(updated.numUpdatedRows) === 0)
        throw new StoreError("unknown_fleet", `unknown fleet "${fleet}"`);
      await this.#audit(
        {
          actor,
          action: "fleet.default_plan",
          target: `fleet:${fleet}`,
          details: { stages: plan?.stages.map((s) => `${s.name}:${s.fleetPercent}%`) ?? null },
        },
        trx,
      );
    });
  }
}

export function parseRolloutEvent(payload: string): RolloutChangedEvent | undefined {
  try {
    const value = JSON.parse(payload) as Partial<RolloutChangedEvent> | null;
    if (
      typeof value?.id !== "string" ||
      typeof value.fleet !== "string" ||
      typeof value.revision !== "number"
    )
      return undefined;
    return { id: value.id, fleet: value.fleet, revision: value.revision };
  } catch {
    return undefined;
  }
}

async function requireEpoch(trx: Transaction<Tables>, epoch: number): Promise<void> {
  // FOR SHARE: a new leader's acquireEpoch waits for this transaction, and this one sees its epoch.
  const lease = await sql<{
    epoch: string | number;
  }>`select epoch from controller_lease where id = 1 for share`.execute(trx);
  const current = Number(lease.rows[0]?.epoch ?? 0);
  if (current !== epoch)
    throw new StoreError(
      "stale_leader",
      `leadership ${epoch} has ended (the lease is at ${current}): another controller acts now`,
    );
}

/** The columns a transition changes. */
function columns(rollout: Rollout) {
  return {
    candidate_version: rollout.candidateVersion,
    stable_version: rollout.stableVersion,
    phase: rollout.phase,
    stage: rollout.stage,
    plan: JSON.stringify(rollout.plan),
    updated_at: new Date(rollout.updatedAt),
    stage_started_at: new Date(rollout.stageStartedAt),
    baked_ms: rollout.bakedMs,
    running_since: new Date(rollout.runningSince),
    accepted_nacks: rollout.acceptedNacks,
    reason: rollout.reason === undefined ? null : JSON.stringify(rollout.reason),
  };
}

function fromRow(row: Selectable<RolloutsTable>): StoredRollout {
  return {
    id: row.id,
    fleet: row.fleet,
    candidateVersion: row.candidate_version,
    stableVersion: row.stable_version ?? 0,
    plan: row.plan as Plan,
    phase: row.phase as Phase,
    stage: row.stage,
    stageStartedAt: row.stage_started_at.getTime(),
    bakedMs: Number(row.baked_ms),
    runningSince: row.running_since.getTime(),
    acceptedNacks: row.accepted_nacks,
    createdAt: row.created_at.getTime(),
    updatedAt: row.updated_at.getTime(),
    reason: (row.reason ?? undefined) as TransitionReason | undefined,
    revision: row.revision,
    createdBy: row.created_by,
    finishedAt: row.finished_at?.getTime(),
    applied: row.applied,
    restoreVersion: row.restore_version ?? undefined,
  };
}

function eventFromRow(row: Selectable<RolloutEventsTable>): RolloutEvent {
  return {
    id: Number(row.id),
    rolloutId: row.rollout_id,
    at: row.at,
    from: row.from_phase as Phase,
    to: row.to_phase as Phase,
    fromStage: row.from_stage,
    toStage: row.to_stage,
    reason: row.reason as TransitionReason,
    actor: row.actor,
  };
}
