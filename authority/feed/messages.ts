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
import type { AgentReport, BundleRow, FleetState, HealthSampleRow } from "../store/index.js";

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

const STATE_NAMES: Readonly<Record<number, AgentReport["state"]>> = {
  [AgentState.AGENT_STATE_PENDING]: "pending",
  [AgentState.AGENT_STATE_ACKED]: "acked",
  [AgentState.AGENT_STATE_NACKED]: "nacked",
};

/**
 * The wire's zeros stand for the store's nulls. A status without last_seen is stamped `nowMs`,
 * when the authority heard of it; one without a distributor id is the reporting distributor's.
 */
export function agentReport(status: AgentStatus, distributorId: string, nowMs: number): AgentReport {
  return {
    id: status.agentId,
    fleet: status.fleet,
    region: status.region,
    distributorId: status.distributorId === "" ? distributorId : status.distributorId,
    runningVersion: status.runningVersion === 0 ? null : status.runningVersion,
    desiredVersion: status.desiredVersion === 0 ? null : status.desiredVersion,
    state: STATE_NAMES[status.state] ?? "unknown",
    nack:
      status.nackVersion === 0
        ? null
        : {
            version: status.nackVersion,
            errors: status.nackErrors.map(({ path, message, code }) => ({ path, message, code })),
          },
    labels: { ...status.labels },
    connected: status.connected,
    lastSeen: new Date(status.lastSeenUnixMs === 0 ? nowMs : status.lastSeenUnixMs),
  };
}

/** A sample is one distributor's: the proto leaves that to the stream it came on. */
export function healthSampleRow(sample: HealthSample, distributorId: string): HealthSampleRow {
  return {
    fleet: sample.fleet,
    version: sample.version,
    region: sample.region,
    distributorId,
    windowStart: new Date(sample.windowStartUnixMs),
    windowEnd: new Date(sample.windowEndUnixMs),
    requests: sample.requests,
    errors5xx: sample.errors5xx,
    agents: sample.agents,
    latency: {
      boundsMs: sample.latency?.boundsMs ?? [],
      counts: sample.latency?.counts ?? [],
      sumMs: sample.latency?.sumMs ?? 0,
    },
  };
}
