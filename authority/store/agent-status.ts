/**
 * The fleet-wide view of agents, pure: which agents count as stale and how a fleet's agents add
 * up per version. The store runs the queries (AuthorityStore#listAgents, #fleetStatus).
 */
import type { AgentState, FleetState } from "./rows.js";

/** How long an agent may go unheard before it is shown as stale, unless the store is told otherwise. */
export const DEFAULT_AGENT_STALE_AFTER_MS = 60_000;

export interface AgentFilter {
  readonly fleet?: string;
  readonly region?: string;
  readonly state?: AgentState;
  /** true: only stale agents; false: only live ones; absent: both. */
  readonly stale?: boolean;
}

/** One version of a fleet and its agents. */
export interface VersionCounts {
  /** Null for agents that serve no bundle yet. */
  readonly version: number | null;
  /** Live agents serving it. */
  readonly running: number;
  /** Live agents their distributor wants on it, by how far they got. */
  readonly acked: number;
  readonly pending: number;
  readonly nacked: number;
  /** Stale agents whose last report had them serving it. */
  readonly stale: number;
}

export interface FleetStatus {
  readonly state: FleetState;
  readonly agents: {
    readonly total: number;
    readonly stale: number;
    /** Newest version first, agents without a version last. */
    readonly byVersion: readonly VersionCounts[];
  };
}

/** A count of a fleet's agents sharing the same versions, state and staleness. */
export interface AgentGroup {
  readonly runningVersion: number | null;
  readonly desiredVersion: number | null;
  readonly state: AgentState;
  readonly stale: boolean;
  readonly count: number;
}

/**
 * Adds groups up per version. A stale agent counts only as stale: what it last reported may no
 * longer be true. A live agent counts as running the version it serves, and its state counts
 * under the version it is asked to run (the one it acked, awaits or refused).
 */
export function countAgents(state: FleetState, groups: readonly AgentGroup[]): FleetStatus {
  const versions = new Map<number | null, { -readonly [K in keyof VersionCounts]: VersionCounts[K] }>();
  const entry = (version: number | null) => {
    let counts = versions.get(version);
    if (counts === undefined) {
      counts = { version, running: 0, acked: 0, pending: 0, nacked: 0, stale: 0 };
      versions.set(version, counts);
    }
    return counts;
  };
  let total = 0;
  let stale = 0;
  for (const group of groups) {
    total += group.count;
    if (group.stale) {
      stale += group.count;
      entry(group.runningVersion).stale += group.count;
      continue;
    }
    entry(group.runningVersion).running += group.count;
    if (group.state !== "unknown")
      entry(group.desiredVersion ?? group.runningVersion)[group.state] += group.count;
  }
  const byVersion = [...versions.values()].sort((a, b) => (b.version ?? -1) - (a.version ?? -1));
  return { state, agents: { total, stale, byVersion } };
}
