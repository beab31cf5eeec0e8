/**
 * Rollouts as the API, the event stream and the dashboard show them (rollout-controller/
 * README.md): one shape, computed from the stored record, and the status view with what the
 * controller sees now — the same pure functions it judges with.
 */
import { latencyQuantile, type TrafficWindow } from "../../rollout-controller/health.js";
import { describeReason } from "../../rollout-controller/notifier.js";
import { observe, observedSince } from "../../rollout-controller/observe.js";
import type { Plan } from "../../rollout-controller/plan.js";
import { bakedMs, bakeRemainingMs, step } from "../../rollout-controller/state-machine.js";
import type { AuthorityStore, RolloutEvent, StoredRollout } from "../store/index.js";

/** A resolved plan in the API's snake_case, units in ms. */
export function planJson(plan: Plan) {
  return {
    stages: plan.stages.map((s) => ({
      name: s.name,
      fleet_percent: s.fleetPercent,
      bake_ms: s.bakeMs,
      min_requests: s.minRequests,
    })),
    health_gates: plan.gates,
    burn_rate: plan.burnRate
      ? {
          threshold: plan.burnRate.threshold,
          objective: plan.burnRate.objective,
          short_window_ms: plan.burnRate.shortWindowMs,
          long_window_ms: plan.burnRate.longWindowMs,
        }
      : null,
  };
}

export function rolloutJson(rollout: StoredRollout, now: number) {
  const plan = planJson(rollout.plan);
  const stage = rollout.plan.stages[rollout.stage];
  return {
    id: rollout.id,
    fleet: rollout.fleet,
    candidate_version: rollout.candidateVersion,
    stable_version: rollout.stableVersion,
    phase: rollout.phase,
    stage: {
      index: rollout.stage,
      name: stage?.name ?? null,
      fleet_percent: stage?.fleetPercent ?? null,
      count: rollout.plan.stages.length,
    },
    stages: plan.stages,
    bake: {
      required_ms: stage?.bakeMs ?? 0,
      done_ms: Math.min(stage?.bakeMs ?? 0, bakedMs(rollout, now)),
      remaining_ms: bakeRemainingMs(rollout, now),
    },
    reason: rollout.reason ? { ...rollout.reason, summary: describeReason(rollout.reason) } : null,
    created_by: rollout.createdBy,
    created_at: new Date(rollout.createdAt).toISOString(),
    updated_at: new Date(rollout.updatedAt).toISOString(),
    finished_at: rollout.finishedAt === undefined ? null : new Date(rollout.finishedAt).toISOString(),
    restore_version: rollout.restoreVersion ?? null,
    applied: rollout.applied,
    plan,
  };
}

export function rolloutEventJson(event: RolloutEvent) {
  return {
    at: event.at.toISOString(),
    from: event.from,
    to: event.to,
    from_stage: event.fromStage,
    to_stage: event.toStage,
    actor: event.actor,
    reason: event.reason,
    summary: describeReason(event.reason),
  };
}

function trafficJson(window: TrafficWindow) {
  return {
    requests: window.requests,
    errors_5xx: window.errors5xx,
    p95_ms: latencyQuantile(window.latency, 0.95) ?? null,
  };
}

/** The rollout, this moment's checks and traffic, its fleet's agents per version, its events. */
export async function rolloutStatusJson(store: AuthorityStore, rollout: StoredRollout, now: number) {
  const [samples, agents, status, events] = await Promise.all([
    store.listHealthSamples({ fleet: rollout.fleet, since: new Date(observedSince(rollout, now)) }),
    store.listAgents({ fleet: rollout.fleet }),
    store.fleetStatus(rollout.fleet),
    store.rollouts.events(rollout.id, 50),
  ]);
  const seen = observe(rollout, samples, agents, now);
  // Judged as a running rollout would be, without saving anything: what the next tick sees.
  const checks = rollout.phase === "running" ? step(rollout, seen).checks : [];
  return {
    rollout: rolloutJson(rollout, now),
    checks: checks.map((c) => ({
      check: c.check,
      bound: c.bound,
      verdict: c.verdict,
      observed: c.observed ?? null,
      threshold: c.threshold ?? null,
      window_ms: c.windowMs,
      summary: c.summary,
    })),
    traffic: { candidate: trafficJson(seen.candidate), stable: trafficJson(seen.stable) },
    agents: {
      total: status?.agents.total ?? 0,
      stale: status?.agents.stale ?? 0,
      by_version: status?.agents.byVersion ?? [],
    },
    events: events.map(rolloutEventJson),
  };
}
