/** Traffic windows and plans for the controller's tests, built from a few numbers. */
import { LATENCY_BOUNDS_MS } from "../agent/control/health-recorder.js";
import type { TrafficWindow } from "./health.js";
import { type Plan, parsePlan } from "./plan.js";

/**
 * `requests` answers, `errors` of them 5xx, all of them taking about `latencyMs` (counted in
 * the bucket that holds it).
 */
export function traffic(requests: number, errors = 0, latencyMs = 20, agents = 1): TrafficWindow {
  const counts = new Array<number>(LATENCY_BOUNDS_MS.length + 1).fill(0);
  const bucket = LATENCY_BOUNDS_MS.findIndex((bound) => latencyMs <= bound);
  counts[bucket === -1 ? LATENCY_BOUNDS_MS.length : bucket] = requests;
  return { requests, errors5xx: errors, latency: { boundsMs: LATENCY_BOUNDS_MS, counts }, agents };
}

/** A plan from its `rollout:` data; throws with every error when it is invalid. */
export function plan(data: unknown): Plan {
  const parsed = parsePlan(data);
  if (!parsed.ok) throw new Error(parsed.errors.map((e) => `${e.path}: ${e.message}`).join("; "));
  return parsed.value;
}
