/**
 * What the gates read: one cohort's traffic over a window, summed from the health samples
 * the agents reported (requests, 5xx answers, a latency histogram with fixed bounds), and the
 * measures derived from it.
 */
import { RolloutError, RolloutErrorCode } from "./errors.js";

export interface LatencyCounts {
  /** Inclusive upper bounds in ms, ascending; `counts` has one more entry, the overflow. */
  readonly boundsMs: readonly number[];
  readonly counts: readonly number[];
}

export interface TrafficWindow {
  readonly requests: number;
  readonly errors5xx: number;
  readonly latency: LatencyCounts;
  /** Distinct agents whose reports are in the sum (at most; a moved agent may count twice). */
  readonly agents: number;
}

export const NO_TRAFFIC: TrafficWindow = Object.freeze({
  requests: 0,
  errors5xx: 0,
  latency: Object.freeze({ boundsMs: Object.freeze([]), counts: Object.freeze([]) }),
  agents: 0,
});

/** 5xx answers per request; 0 without traffic (callers check `requests` first). */
export function errorRate(window: TrafficWindow): number {
  return window.requests === 0 ? 0 : window.errors5xx / window.requests;
}

/**
 * The latency below which `q` of the requests fell, interpolated linearly inside the bucket
 * that holds it, as Prometheus's histogram_quantile does; the highest bound when it falls in
 * the overflow bucket (the histogram knows no more). Undefined without observations.
 */
export function latencyQuantile(latency: LatencyCounts, q: number): number | undefined {
  let total = 0;
  for (const count of latency.counts) total += count;
  if (total === 0) return undefined;
  const rank = q * total;
  let below = 0;
  for (let i = 0; i < latency.counts.length; i++) {
    const count = latency.counts[i] as number;
    if (below + count >= rank && count > 0) {
      const upper = latency.boundsMs[i];
      if (upper === undefined) return latency.boundsMs[latency.boundsMs.length - 1];
      const lower = i === 0 ? 0 : (latency.boundsMs[i - 1] as number);
      return lower + (upper - lower) * ((rank - below) / count);
    }
    below += count;
  }
  return latency.boundsMs[latency.boundsMs.length - 1];
}

/** Bucket-by-bucket sum; windows with other bounds cannot be added and are refused. */
export function addTraffic(a: TrafficWindow, b: TrafficWindow): TrafficWindow {
  if (a.requests === 0 && a.latency.counts.length === 0) return b;
  if (b.requests === 0 && b.latency.counts.length === 0) return a;
  if (a.latency.boundsMs.join() !== b.latency.boundsMs.join())
    throw new RolloutError(
      RolloutErrorCode.LatencyBoundsDiffer,
      `latency bounds differ: [${a.latency.boundsMs}] and [${b.latency.boundsMs}]`,
    );
  return {
    requests: a.requests + b.requests,
    errors5xx: a.errors5xx + b.errors5xx,
    latency: {
      boundsMs: a.latency.boundsMs,
      counts: a.latency.counts.map((count, i) => count + (b.latency.counts[i] ?? 0)),
    },
    agents: a.agents + b.agents,
  };
}
