/**
 * Between the feed's wire messages and the store's records: what goes down (bundles, fleet
 * states) and what comes up (agent statuses, health samples).
 */
import {
  AgentState,
  type AgentStatus,
  type AuthorityDownstream,
  type HealthSample,
} from "../../proto/coherent/v1/authority.js";
import type { AgentRow, BundleRow, FleetState, HealthSampleRow } from "../store/index.js";

export function bundleMessage(bundle: BundleRow): AuthorityDownstream {
  return {
    kind: {
      $case: "bundle",
      value: {
        fleet: bundle.fleet,
        version: bundle.version,
        contentSha256: bundle.contentSha256,
        signedBundle: Buffer.from(bundle.jws, "ascii"),
      },
    },
  };
}

/** The wire's zeros and empty strings stand for the store's nulls. */
export function fleetStateMessage(state: FleetState): AuthorityDownstream {
  return {
    kind: {
      $case: "fleetState",
      value: {
        fleet: state.fleet,
        stableVersion: state.stableVersion ?? 0,
        candidateVersion: state.candidateVersion ?? 0,
        rolloutId: state.rolloutId ?? "",
        candidatePercent: state.candidatePercent,
        generation: state.generation,
        updatedAtUnixMs: state.updatedAt?.getTime() ?? 0,
      },
    },
  };
}

export const SYNC_COMPLETE: AuthorityDownstream = { kind: { $case: "syncComplete", value: {} } };

export function heartbeatMessage(nowMs: number): AuthorityDownstream {
  return { kind: { $case: "heartbeat", value: { sentAtUnixMs: nowMs } } };
}

const STATE_NAMES: Readonly<Record<number, string>> = {
  [AgentState.AGENT_STATE_PENDING]: "pending",
  [AgentState.AGENT_STATE_ACKED]: "acked",
  [AgentState.AGENT_STATE_NACKED]: "nacked",
};

/**
 * A closed stream outranks the rollout state: an operator must see that the agent is gone.
 * A status without last_seen is stamped `nowMs`, when the authority heard of it.
 */
export function agentRow(status: AgentStatus, nowMs: number): AgentRow {
  return {
    id: status.agentId,
    fleet: status.fleet,
    region: status.region,
    version: status.runningVersion === 0 ? null : status.runningVersion,
    state: status.connected ? (STATE_NAMES[status.state] ?? "unknown") : "disconnected",
    lastSeen: new Date(status.lastSeenUnixMs === 0 ? nowMs : status.lastSeenUnixMs),
  };
}

export function healthSampleRow(sample: HealthSample): HealthSampleRow {
  return {
    fleet: sample.fleet,
    version: sample.version,
    region: sample.region,
    windowStart: new Date(sample.windowStartUnixMs),
    requests: sample.requests,
    errors5xx: sample.errors5xx,
    latencyBuckets: sample.latency?.counts ?? [],
  };
}
