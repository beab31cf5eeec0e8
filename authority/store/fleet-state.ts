/**
 * The rules a fleet state obeys, pure: what a change may set, which states are consistent, and
 * which transitions no agent can follow. The store applies them inside its transaction; the
 * database's checks (migrations/0002_fleet_states.ts) repeat the consistency rules.
 */
import type { FleetState } from "./rows.js";

/** The NOTIFY channel of fleet state changes; payload `{"fleet":…,"generation":…}`. */
export const FLEET_STATE_CHANNEL = "coherent_fleet_states";

/** What distributors apply: everything in a state but its bookkeeping. */
export type FleetStateFields = Pick<
  FleetState,
  "stableVersion" | "candidateVersion" | "rolloutId" | "candidatePercent"
>;

/**
 * A change as setFleetState takes it: fields left out keep their value. The result must be
 * consistent as a whole, so ending a rollout sets candidateVersion and rolloutId to null and
 * candidatePercent to 0 together.
 */
export interface FleetStateChange {
  readonly stableVersion?: number;
  readonly candidateVersion?: number | null;
  readonly rolloutId?: string | null;
  readonly candidatePercent?: number;
}

export type FleetStateResult =
  | { readonly status: "changed"; readonly state: FleetState }
  /** The change would leave the state as it is: nothing was written, audited or announced. */
  | { readonly status: "unchanged"; readonly state: FleetState };

export interface FleetStateChangedEvent {
  readonly fleet: string;
  readonly generation: number;
}

/** The state of a fleet that has no bundle yet. */
export function emptyFleetState(fleet: string): FleetState {
  return {
    fleet,
    stableVersion: null,
    candidateVersion: null,
    rolloutId: null,
    candidatePercent: 0,
    generation: 0,
    updatedAt: null,
  };
}

export function applyChange(current: FleetStateFields, change: FleetStateChange): FleetStateFields {
  return {
    stableVersion: change.stableVersion ?? current.stableVersion,
    candidateVersion:
      change.candidateVersion === undefined ? current.candidateVersion : change.candidateVersion,
    rolloutId: change.rolloutId === undefined ? current.rolloutId : change.rolloutId,
    candidatePercent: change.candidatePercent ?? current.candidatePercent,
  };
}

/** The state an emergency promote leaves: `version` for everyone, no rollout. */
export function promoted(version: number): FleetStateFields {
  return { stableVersion: version, candidateVersion: null, rolloutId: null, candidatePercent: 0 };
}

/** Why `next` is not a state distributors can apply; undefined when it is. */
export function inconsistency(next: FleetStateFields): string | undefined {
  const { stableVersion, candidateVersion, rolloutId, candidatePercent } = next;
  if (stableVersion === null) return "a fleet state needs a stable version";
  if (!isVersion(stableVersion)) return `stable version ${stableVersion} is not a positive integer`;
  if (candidateVersion !== null && !isVersion(candidateVersion)) {
    return `candidate version ${candidateVersion} is not a positive integer`;
  }
  if (!Number.isFinite(candidatePercent) || candidatePercent < 0 || candidatePercent > 100) {
    return `candidate percent ${candidatePercent} is not between 0 and 100`;
  }
  if (rolloutId === "") return "a rollout id is not empty: use null for no rollout";
  if ((candidateVersion === null) !== (rolloutId === null)) {
    return "a candidate version and a rollout id go together: set both, or both to null";
  }
  if (candidateVersion === null && candidatePercent !== 0) {
    return `candidate percent is ${candidatePercent} without a candidate version: it must be 0`;
  }
  if (candidateVersion !== null && candidateVersion <= stableVersion) {
    return `candidate version ${candidateVersion} is not above the stable version ${stableVersion}`;
  }
  return undefined;
}

/**
 * Why going from `current` to `next` would hand some agent a version below one it may run now,
 * which agents refuse (a rollback is a new, higher version); undefined when none goes back.
 * An agent keeps its cohort only while the rollout id stays and the percent does not shrink
 * (buckets are stable); every other agent of the old cohort falls to the new stable version.
 */
export function downgrade(current: FleetStateFields, next: FleetStateFields): string | undefined {
  const stable = next.stableVersion ?? 0;
  if (current.stableVersion !== null && stable < current.stableVersion) {
    return `version ${stable} is below the stable version ${current.stableVersion}, which agents run`;
  }
  if (current.candidateVersion === null) return undefined;
  const cohortKept =
    next.candidateVersion !== null &&
    next.rolloutId === current.rolloutId &&
    next.candidatePercent >= current.candidatePercent;
  if (cohortKept) {
    return next.candidateVersion !== null && next.candidateVersion < current.candidateVersion
      ? `candidate version ${next.candidateVersion} is below ${current.candidateVersion}, which the rollout's agents run`
      : undefined;
  }
  return stable < current.candidateVersion
    ? `version ${stable} is below the candidate version ${current.candidateVersion}, which agents of rollout ${current.rolloutId} run`
    : undefined;
}

export function sameFields(a: FleetStateFields, b: FleetStateFields): boolean {
  return (
    a.stableVersion === b.stableVersion &&
    a.candidateVersion === b.candidateVersion &&
    a.rolloutId === b.rolloutId &&
    a.candidatePercent === b.candidatePercent
  );
}

/** The fields as the audit log and the API name them. */
export function stateDetails(fields: FleetStateFields): Record<string, unknown> {
  return {
    stable_version: fields.stableVersion,
    candidate_version: fields.candidateVersion,
    rollout_id: fields.rolloutId,
    candidate_percent: fields.candidatePercent,
  };
}

export function parseFleetStateEvent(payload: string): FleetStateChangedEvent | undefined {
  try {
    const value: unknown = JSON.parse(payload);
    if (typeof value !== "object" || value === null) return undefined;
    const { fleet, generation } = value as Record<string, unknown>;
    if (typeof fleet !== "string" || typeof generation !== "number") return undefined;
    return { fleet, generation };
  } catch {
    return undefined;
  }
}

/** Versions are Postgres integers. */
const MAX_VERSION = 2 ** 31 - 1;

function isVersion(value: number): boolean {
  return Number.isInteger(value) && value >= 1 && value <= MAX_VERSION;
}
