/**
 * The submit pipeline: config text or data → validate → governance → canonical form and
 * content hash → (unchanged, or) next version signed with the active key and stored with its
 * audit entry, in one transaction. Invalid input is reported with every path and writes nothing;
 * an unchanged config is a no-op.
 */
import { BUNDLE_SCHEMA, type BundlePayload, type SigningKey, signBundle } from "../services/bundle/index.js";
import {
  type ConfigChange,
  type ConfigIssue,
  type ConfigResult,
  contentHash,
  type DynamicConfig,
  diffConfigs,
  parseDynamicConfig,
  validateDynamicConfig,
} from "../services/config/index.js";
import { ApiError } from "./errors.js";
import { checkGovernance, type GovernanceIssue, type GovernanceSettings } from "./governance.js";
import type { AuthorityStore, BundleRow } from "./store/index.js";

/** A config as the API receives it: YAML/JSON text, or already-parsed data. */
export type ConfigInput = { readonly text: string } | { readonly data: unknown };

export type CheckIssue = ConfigIssue | GovernanceIssue;

export type CheckResult =
  | { readonly ok: true; readonly config: DynamicConfig; readonly contentSha256: string }
  | { readonly ok: false; readonly errors: readonly CheckIssue[] };

export type SubmitResult =
  | { readonly status: "created" | "unchanged"; readonly bundle: BundleRow }
  | { readonly status: "invalid"; readonly errors: readonly CheckIssue[] };

export interface BundleServiceOptions {
  readonly store: AuthorityStore;
  readonly signingKey: SigningKey;
  readonly governance: GovernanceSettings;
}

/**
 * How often a submit re-checks governance after its fleet moved on between the check and the
 * version lock; only concurrent submits to one fleet get there, each retry means another
 * submit succeeded, so this bound is never the reason a lone operator fails.
 */
const MAX_ATTEMPTS = 100;

/** Thrown inside the store's transaction to roll it back when the parent is not the one checked. */
class StaleParent extends Error {}

export class BundleService {
  readonly #store: AuthorityStore;
  readonly #key: SigningKey;
  readonly #governance: GovernanceSettings;

  constructor(options: BundleServiceOptions) {
    this.#store = options.store;
    this.#key = options.signingKey;
    this.#governance = options.governance;
  }

  /** Validation and governance against `previous` (the fleet's latest config, if any); pure. */
  check(input: ConfigInput, previous: DynamicConfig | undefined): CheckResult {
    const parsed = parseInput(input);
    return parsed.ok ? this.#govern(parsed.value, previous) : { ok: false, errors: parsed.errors };
  }

  /** Everything a submit checks, without storing; with a fleet, governance sees its latest bundle. */
  async validate(input: ConfigInput, fleet?: string): Promise<CheckResult> {
    if (fleet !== undefined) await this.requireFleet(fleet);
    const latest = fleet === undefined ? undefined : await this.#latest(fleet);
    return this.check(input, latest?.config);
  }

  async submit(
    fleet: string,
    input: ConfigInput,
    by: { readonly actor: string; readonly message?: string },
  ): Promise<SubmitResult> {
    await this.requireFleet(fleet);
    // Parsed once: only governance depends on the fleet's latest bundle, which a retry re-reads.
    const parsed = parseInput(input);
    if (!parsed.ok) return { status: "invalid", errors: parsed.errors };
    for (let attempt = 1; ; attempt++) {
      const latest = await this.#latest(fleet);
      const checked = this.#govern(parsed.value, latest?.config);
      if (!checked.ok) return { status: "invalid", errors: checked.errors };
      try {
        return await this.#store.submitBundle(
          fleet,
          checked.contentSha256,
          async (version, parent, createdAt) => {
            if (this.#governance.require_tls_kept && parent !== (latest?.version ?? null))
              throw new StaleParent();
            return this.#signed(
              {
                fleet,
                version,
                parent,
                createdAt,
                config: checked.config,
                contentSha256: checked.contentSha256,
              },
              by,
            );
          },
        );
      } catch (error) {
        if (!(error instanceof StaleParent)) throw error;
        if (attempt >= MAX_ATTEMPTS) {
          throw new ApiError("conflict", `fleet "${fleet}" kept changing during the submit: submit again`);
        }
      }
    }
  }

  /**
   * A rollback: the content of version `contentOf` again, as the fleet's next version with
   * `rollback_of` set, since agents refuse a version below one they ran. Governance is not
   * asked again: the content passed it once, and a rule added since must not block a rollback.
   * When the latest bundle already has that content (a retry), it is the answer.
   */
  async restore(
    fleet: string,
    contentOf: number,
    rollbackOf: number,
    by: { readonly actor: string },
  ): Promise<BundleRow> {
    const source = await this.bundle(fleet, contentOf);
    // Stored configs are canonical configs this service validated before writing them.
    const config = source.config as DynamicConfig;
    const result = await this.#store.submitBundle(fleet, source.contentSha256, (version, parent, createdAt) =>
      this.#signed(
        { fleet, version, parent, createdAt, config, contentSha256: source.contentSha256, rollbackOf },
        { ...by, message: `rollback of version ${rollbackOf} to the content of version ${contentOf}` },
      ),
    );
    return result.bundle;
  }

  /** A version's payload signed with the active key, and what the store keeps of it. */
  async #signed(
    bundle: {
      fleet: string;
      version: number;
      parent: number | null;
      createdAt: Date;
      config: DynamicConfig;
      contentSha256: string;
      rollbackOf?: number;
    },
    by: { readonly actor: string; readonly message?: string },
  ) {
    const { fleet, version, parent, contentSha256, rollbackOf } = bundle;
    const message = by.message === undefined ? {} : { message: by.message };
    const rollback = rollbackOf === undefined ? {} : { rollback_of: rollbackOf };
    const payload: BundlePayload = {
      schema: BUNDLE_SCHEMA,
      fleet,
      version,
      parent,
      created_at: bundle.createdAt.toISOString(),
      created_by: by.actor,
      content_sha256: contentSha256,
      config: bundle.config,
      ...rollback,
      ...message,
    };
    return {
      jws: await signBundle(payload, this.#key),
      config: bundle.config,
      createdBy: by.actor,
      ...message,
      ...(rollbackOf === undefined ? {} : { rollbackOf }),
      audit: {
        actor: by.actor,
        action: rollbackOf === undefined ? "bundle.submit" : "bundle.rollback",
        target: `fleet:${fleet}`,
        details: { version, parent, content_sha256: contentSha256, ...rollback, ...message },
      },
    };
  }

  /** The changes from version `from` to version `to` of a fleet, addressed by ids. */
  async diff(fleet: string, from: number, to: number): Promise<ConfigChange[]> {
    const [before, after] = await Promise.all([this.bundle(fleet, from), this.bundle(fleet, to)]);
    return diffConfigs(before.config, after.config);
  }

  /** One bundle, or unknown_fleet / unknown_version. */
  async bundle(fleet: string, version: number): Promise<BundleRow> {
    const row = await this.#store.getBundle(fleet, version);
    if (row) return row;
    await this.requireFleet(fleet);
    throw new ApiError("unknown_version", `fleet "${fleet}" has no version ${version}`);
  }

  async requireFleet(fleet: string): Promise<void> {
    if (!(await this.#store.getFleet(fleet))) throw new ApiError("unknown_fleet", `no fleet "${fleet}"`);
  }

  #govern(config: DynamicConfig, previous: DynamicConfig | undefined): CheckResult {
    const violations = checkGovernance(config, previous, this.#governance);
    if (violations.length > 0) return { ok: false, errors: violations };
    return { ok: true, config, contentSha256: contentHash(config) };
  }

  /** The fleet's latest bundle when governance compares with it; undefined when it does not. */
  async #latest(fleet: string): Promise<{ version: number; config: DynamicConfig } | undefined> {
    if (!this.#governance.require_tls_kept) return undefined;
    const row = await this.#store.latestBundle(fleet);
    // Stored configs are canonical configs this service validated before writing them.
    return row ? { version: row.version, config: row.config as DynamicConfig } : undefined;
  }
}

function parseInput(input: ConfigInput): ConfigResult<DynamicConfig> {
  return "text" in input ? parseDynamicConfig(input.text) : validateDynamicConfig(input.data);
}
