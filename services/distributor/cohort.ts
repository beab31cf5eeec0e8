/**
 * Which version an agent of a fleet runs, from the fleet's state alone (DESIGN.md, Cohorts):
 * an agent's bucket in a rollout is sha256(rollout_id + agent_id) mod 10000, and it runs the
 * candidate when its bucket is below round(candidate_percent × 100). Buckets do not depend
 * on the percent, so the agents on the candidate only grow from stage to stage, and every
 * distributor — any replica, any region — computes the same answer without asking anyone.
 */
import { createHash } from "node:crypto";

export const BUCKETS = 10_000;

/** The parts of a fleet state (proto FleetState) the rule reads. */
export interface CohortState {
  /** 0: the fleet has no stable version yet. */
  readonly stableVersion: number;
  /** 0: no rollout in progress. */
  readonly candidateVersion: number;
  readonly rolloutId: string;
  /** 0..100; fractions allowed (0.5 = one agent in 200). */
  readonly candidatePercent: number;
}

/** The agent's bucket in a rollout, 0..9999: the sha256 digest, big-endian, mod 10000. */
export function cohortBucket(rolloutId: string, agentId: string): number {
  const digest = createHash("sha256")
    .update(rolloutId + agentId)
    .digest();
  // Horner's rule over the bytes keeps every step below 2^24: exact in a double, no BigInt.
  let remainder = 0;
  for (const byte of digest) remainder = (remainder * 256 + byte) % BUCKETS;
  return remainder;
}

/**
 * Buckets below this run the candidate. Rounded, so that every distributor gets the same
 * integer whatever its floating point does with the percent (0.07 × 100 = 7.000000000000001).
 */
export function candidateThreshold(candidatePercent: number): number {
  return Math.min(BUCKETS, Math.max(0, Math.round(candidatePercent * 100)));
}

/** The version the agent should run; 0 when the fleet has none yet. */
export function desiredVersion(state: CohortState, agentId: string): number {
  return versionForBucket(state, (rolloutId) => cohortBucket(rolloutId, agentId));
}

/**
 * desiredVersion for a caller that keeps agents' buckets: `bucket` is asked only when the
 * state has a rollout in progress, and only for its id. A bucket is a sha256, and a
 * distributor asks for every agent of a fleet at each stage, Ack and status report.
 */
export function versionForBucket(state: CohortState, bucket: (rolloutId: string) => number): number {
  const inRollout = state.candidateVersion > 0 && state.rolloutId !== "";
  if (!inRollout) return state.stableVersion;
  const threshold = candidateThreshold(state.candidatePercent);
  if (threshold === 0) return state.stableVersion;
  return bucket(state.rolloutId) < threshold ? state.candidateVersion : state.stableVersion;
}
