/**
 * A rollout plan: the spec's `rollout:` block, validated by the config model (every error with
 * its path, `rollout.stages[1].fleet_percent`), with its defaults filled in, so the state
 * machine and the gates never deal with an absent field.
 */
import {
  type ConfigResult,
  type HealthGate,
  type RolloutPlan,
  validateDynamicConfig,
} from "../services/config/index.js";

export interface PlanStage {
  readonly name: string;
  /** Share of the fleet on the candidate, in percent points (0 < p ≤ 100). */
  readonly fleetPercent: number;
  /** How long the stage must run, with passing gates, before the next; 0 for the last stage. */
  readonly bakeMs: number;
  /** Candidate requests in the stage before a gate may judge it. */
  readonly minRequests: number;
}

export interface BurnRateRule {
  /** Rolls back when both windows burn the error budget faster than this multiple. */
  readonly threshold: number;
  /** Availability objective in percent points, e.g. 99.9: the budget is 0.1% of requests. */
  readonly objective: number;
  readonly shortWindowMs: number;
  readonly longWindowMs: number;
}

export interface Plan {
  readonly stages: readonly PlanStage[];
  readonly gates: readonly HealthGate[];
  readonly burnRate: BurnRateRule | undefined;
}

/** Used where the plan names none; the SRE workbook's page-level windows and a 99.9% SLO. */
export const PLAN_DEFAULTS = {
  minRequests: 100,
  objective: 99.9,
  shortWindowMs: 5 * 60_000,
  longWindowMs: 60 * 60_000,
} as const;

/** A fleet without its own default plan gets the spec's example. */
export const DEFAULT_PLAN_INPUT = {
  stages: [
    { name: "canary", fleet_percent: 1, bake_time: "5m" },
    { name: "small", fleet_percent: 10, bake_time: "10m" },
    { name: "half", fleet_percent: 50, bake_time: "15m" },
    { name: "all", fleet_percent: 100 },
  ],
  health_gates: [
    { metric: "error_rate", threshold: 0.01 },
    { metric: "p95_latency", threshold: "500ms" },
  ],
  auto_rollback: { error_budget_burn_rate: "10x" },
} as const;

/** Data (parsed YAML/JSON) → a plan, or every error with its path under `rollout`. */
export function parsePlan(data: unknown): ConfigResult<Plan> {
  const result = validateDynamicConfig({ rollout: data });
  if (!result.ok) return result;
  return { ok: true, value: resolvePlan(result.value.rollout as RolloutPlan) };
}

export function resolvePlan(plan: RolloutPlan): Plan {
  const minRequests = plan.min_requests ?? PLAN_DEFAULTS.minRequests;
  const rollback = plan.auto_rollback;
  return {
    stages: plan.stages.map((stage) => ({
      name: stage.name,
      fleetPercent: stage.fleet_percent,
      bakeMs: stage.bake_time ?? 0,
      minRequests: stage.min_requests ?? minRequests,
    })),
    gates: plan.health_gates ?? [],
    burnRate:
      rollback === undefined
        ? undefined
        : {
            threshold: rollback.error_budget_burn_rate,
            objective: rollback.slo?.objective ?? PLAN_DEFAULTS.objective,
            ...burnWindows(rollback.slo?.short_window, rollback.slo?.long_window),
          },
  };
}

/**
 * The workbook's pairs keep the short window 1/12 of the long one; a plan that names one
 * window gets the other in that proportion when the default would not stay on its side.
 */
function burnWindows(
  short: number | undefined,
  long: number | undefined,
): { shortWindowMs: number; longWindowMs: number } {
  const shortWindowMs = short ?? Math.min(PLAN_DEFAULTS.shortWindowMs, (long ?? Infinity) / 12);
  const longWindowMs = long ?? Math.max(PLAN_DEFAULTS.longWindowMs, shortWindowMs * 12);
  return { shortWindowMs, longWindowMs };
}
