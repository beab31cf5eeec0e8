/**
 * Gate evaluation, pure: a stage's candidate traffic against the plan's health gates and the
 * stable cohort's traffic over the same window, and the error-budget burn rate over a short
 * and a long window. Each check gives a verdict with the value it saw and the bound it used,
 * which is what `rollout status`, the audit log and the notifications show.
 *
 * A check judges only with enough traffic: below the stage's `min_requests` the verdict is
 * "inconclusive", never "pass" (nothing promotes on silence) and never "fail" (two errors in
 * three requests roll nothing back).
 */
import type { HealthGate } from "../services/config/index.js";
import { errorRate, latencyQuantile, type TrafficWindow } from "./health.js";
import type { BurnRateRule } from "./plan.js";

export type Verdict = "pass" | "fail" | "inconclusive";

export type CheckName = "error_rate" | "p95_latency" | "burn_rate";

export interface CheckResult {
  readonly check: CheckName;
  /** Which bound: the plan's absolute threshold, a multiple of the stable cohort's, or the SLO. */
  readonly bound: "absolute" | "relative_to_stable" | "burn_short" | "burn_long";
  readonly verdict: Verdict;
  /** The candidate's value: a ratio, ms, or a burn-rate multiple; undefined without traffic. */
  readonly observed: number | undefined;
  /** The limit it was held to; undefined when it could not be computed (no baseline yet). */
  readonly threshold: number | undefined;
  /** Width of the window the value comes from, ms. */
  readonly windowMs: number;
  /** One line for people: "error rate 3.20% > 1.00% (absolute, 500 requests)". */
  readonly summary: string;
}

export interface GateInput {
  readonly gates: readonly HealthGate[];
  /** Candidate traffic since the stage started. */
  readonly candidate: TrafficWindow;
  /** Stable traffic over the same window. */
  readonly stable: TrafficWindow;
  readonly windowMs: number;
  readonly minRequests: number;
}

export function evaluateGates(input: GateInput): CheckResult[] {
  const results: CheckResult[] = [];
  for (const gate of input.gates) {
    if (gate.threshold !== undefined) results.push(judge(input, gate.metric, "absolute", gate.threshold));
    if (gate.relative_to_stable !== undefined)
      results.push(judge(input, gate.metric, "relative_to_stable", gate.relative_to_stable));
  }
  return results;
}

/** What a metric is for one cohort, and how it reads. */
const METRICS = {
  error_rate: {
    measure: (window: TrafficWindow) => (window.requests === 0 ? undefined : errorRate(window)),
    show: (value: number) => `${(value * 100).toFixed(2)}%`,
    label: "error rate",
  },
  p95_latency: {
    measure: (window: TrafficWindow) => latencyQuantile(window.latency, 0.95),
    show: (value: number) => `${value.toFixed(1)}ms`,
    label: "p95 latency",
  },
} as const;

function judge(
  input: GateInput,
  metric: HealthGate["metric"],
  bound: "absolute" | "relative_to_stable",
  limit: number,
): CheckResult {
  const { measure, show, label } = METRICS[metric];
  const candidate = input.candidate;
  const observed = measure(candidate);
  const result = (verdict: Verdict, threshold: number | undefined, why: string): CheckResult => ({
    check: metric,
    bound,
    verdict,
    observed,
    threshold,
    windowMs: input.windowMs,
    summary: `${label} ${why} (${bound === "absolute" ? "absolute" : `${limit}x stable`}, ${candidate.requests} requests)`,
  });
  if (candidate.requests < input.minRequests || observed === undefined)
    return result(
      "inconclusive",
      bound === "absolute" ? limit : undefined,
      `inconclusive: ${candidate.requests} of ${input.minRequests} requests needed`,
    );

  let threshold = limit;
  if (bound === "relative_to_stable") {
    const baseline = measure(input.stable);
    if (input.stable.requests < input.minRequests || baseline === undefined)
      return result(
        "inconclusive",
        undefined,
        `inconclusive: the stable cohort has ${input.stable.requests} of ${input.minRequests} requests needed`,
      );
    // A stable cohort without errors is no zero baseline: one error of the candidate's own
    // traffic is the least it is measured against, so `limit` errors never fail the gate.
    const floor = metric === "error_rate" ? 1 / candidate.requests : 0;
    threshold = limit * Math.max(baseline, floor);
  }
  return observed > threshold
    ? result("fail", threshold, `${show(observed)} > ${show(threshold)}`)
    : result("pass", threshold, `${show(observed)} <= ${show(threshold)}`);
}

export interface BurnInput {
  readonly rule: BurnRateRule;
  /** Candidate traffic over the last short window (clipped at the rollout's start). */
  readonly short: TrafficWindow;
  /** Candidate traffic over the last long window (clipped at the rollout's start). */
  readonly long: TrafficWindow;
  readonly minRequests: number;
}

/** How many times faster than the SLO allows the window spends the error budget. */
export function burnRate(window: TrafficWindow, objective: number): number {
  return errorRate(window) / (1 - objective / 100);
}

/**
 * The SRE workbook's multi-window alert: the budget burns too fast only when the long window
 * (a real trend) and the short one (still happening now) both exceed the threshold. Returns
 * one result per window; the rule trips when both fail.
 */
export function evaluateBurnRate(input: BurnInput): [CheckResult, CheckResult] {
  const { rule } = input;
  const one = (
    bound: "burn_short" | "burn_long",
    window: TrafficWindow,
    windowMs: number,
    needed: number,
  ) => {
    const observed = window.requests === 0 ? undefined : burnRate(window, rule.objective);
    const name = bound === "burn_short" ? "short" : "long";
    const base = { check: "burn_rate" as const, bound, observed, threshold: rule.threshold, windowMs };
    if (observed === undefined || window.requests < needed)
      return {
        ...base,
        verdict: "inconclusive" as const,
        summary: `burn rate (${name} window) inconclusive: ${window.requests} of ${needed} requests needed`,
      };
    const fails = observed > rule.threshold;
    return {
      ...base,
      verdict: fails ? ("fail" as const) : ("pass" as const),
      summary: `burn rate (${name} window, SLO ${rule.objective}%) ${observed.toFixed(1)}x ${fails ? ">" : "<="} ${rule.threshold}x (${window.requests} requests)`,
    };
  };
  // The short window only confirms the long one's trend, so any traffic in it counts.
  return [
    one("burn_short", input.short, rule.shortWindowMs, 1),
    one("burn_long", input.long, rule.longWindowMs, input.minRequests),
  ];
}
