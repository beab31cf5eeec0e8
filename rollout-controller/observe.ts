/**
 * From what the authority stores to what the state machine judges, pure: the health samples
 * of a fleet and its agents' statuses → the candidate's and the stable cohort's traffic over
 * the stage's window, the candidate's over the burn-rate windows, the candidate's NACKs, and
 * how many connected agents the stage's cohort holds.
 * The controller and the API's status view both use it, so an operator sees what the
 * controller judges.
 */
import { type HealthSummary, summarizeHealth } from "../authority/store/health-summary.js";
import type { AgentRow, HealthSampleRow } from "../authority/store/index.js";
import { candidateThreshold, cohortBucket } from "../services/distributor/cohort.js";
import { NO_TRAFFIC, type TrafficWindow } from "./health.js";
import type { Observation, Rollout } from "./state-machine.js";

/** How far back the samples must reach for `observe` at `now`. */
export function observedSince(rollout: Rollout, now: number): number {
  const burn = rollout.plan.burnRate;
  const longest = burn ? Math.max(burn.longWindowMs, burn.shortWindowMs) : 0;
  return Math.max(rollout.createdAt, Math.min(rollout.stageStartedAt, now - longest));
}

export function observe(
  rollout: Rollout,
  samples: readonly HealthSampleRow[],
  agents: readonly AgentRow[],
  now: number,
): Observation {
  const burn = rollout.plan.burnRate;
  const stage = within(samples, rollout.stageStartedAt, now);
  return {
    now,
    candidate: trafficOf(stage, rollout.candidateVersion),
    stable: trafficOf(stage, rollout.stableVersion),
    burnShort: burn
      ? trafficOf(
          within(samples, Math.max(rollout.createdAt, now - burn.shortWindowMs), now),
          rollout.candidateVersion,
        )
      : NO_TRAFFIC,
    burnLong: burn
      ? trafficOf(
          within(samples, Math.max(rollout.createdAt, now - burn.longWindowMs), now),
          rollout.candidateVersion,
        )
      : NO_TRAFFIC,
    nacks: nacksOf(agents, rollout.candidateVersion),
    cohortAgents: cohortAgents(rollout, agents),
  };
}

/** The connected agents the distributors give the candidate at the current stage (DESIGN.md, cohorts). */
function cohortAgents(rollout: Rollout, agents: readonly AgentRow[]): number {
  const stage = rollout.plan.stages[rollout.stage];
  if (!stage) return 0;
  const threshold = candidateThreshold(stage.fleetPercent);
  return agents.filter((agent) => agent.connected && cohortBucket(rollout.id, agent.id) < threshold).length;
}

/** Samples whose whole window lies in [since, until). */
function within(samples: readonly HealthSampleRow[], since: number, until: number): HealthSummary[] {
  return summarizeHealth(
    samples.filter((s) => s.windowStart.getTime() >= since && s.windowEnd.getTime() <= until),
  );
}

export function trafficOf(summaries: readonly HealthSummary[], version: number): TrafficWindow {
  const summary = summaries.find((s) => s.version === version);
  if (!summary) return NO_TRAFFIC;
  return {
    requests: summary.requests,
    errors5xx: summary.errors5xx,
    latency: summary.latency ?? NO_TRAFFIC.latency,
    agents: summary.agents,
  };
}

/** The agents that refused `version`, and the most recent of them with its first error. */
function nacksOf(agents: readonly AgentRow[], version: number): Observation["nacks"] {
  let count = 0;
  let latest: AgentRow | undefined;
  for (const agent of agents) {
    if (agent.nack?.version !== version) continue;
    count++;
    if (!latest || agent.lastSeen > latest.lastSeen) latest = agent;
  }
  if (!latest) return { count };
  const first = latest.nack?.errors[0];
  return {
    count,
    agentId: latest.id,
    ...(first ? { detail: first.path ? `${first.path}: ${first.message}` : first.message } : {}),
  };
}
