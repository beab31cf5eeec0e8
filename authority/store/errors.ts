/** The store's error codes, defined once; callers branch on `code`, never on message text. */
export const STORE_ERROR_CODES = [
  /** createFleet with a name that is taken. */
  "fleet_exists",
  /** A bundle submitted for a fleet that was never created. */
  "unknown_fleet",
  /** A fleet state naming a version the fleet does not have. */
  "unknown_version",
  /** A fleet state that is not consistent (see fleet-state.ts#inconsistency); nothing was written. */
  "invalid_fleet_state",
  /**
   * A fleet state change that would hand some agents a version below one they may run, which
   * they refuse: a rollback is the old content submitted again as a new version.
   */
  "downgrade",
  /** openDatabase options that cannot work (no url or data dir, a schema name that is not an identifier). */
  "invalid_options",
  /** A rollout started for a fleet that has one pending, running or paused. */
  "rollout_active",
  /** A rollout written with a revision that is no longer current: read it again. */
  "conflict",
  /** A controller's write after its leadership ended (the lease has a newer epoch). */
  "stale_leader",
  /** A migration failed; `cause` holds the database error and nothing after it was applied. */
  "migration_failed",
] as const;

export type StoreErrorCode = (typeof STORE_ERROR_CODES)[number];

export class StoreError extends Error {
  override readonly name = "StoreError";

  constructor(
    readonly code: StoreErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
