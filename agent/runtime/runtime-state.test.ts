import { describe, expect, it } from "vitest";
import type { CanaryRow } from "../traffic/canary-registry.js";
import type { EndpointHealthReport } from "../upstream/health/health-report.js";
import { mergeRuntimeStates, type RuntimeState } from "./runtime-state.js";

function endpoint(address: string, healthy: boolean, reason: string): EndpointHealthReport {
  return {
    address,
    healthy,
    state: healthy ? "healthy" : "ejected",
    reason,
    last_check: null,
    last_check_result: null,
    consecutive_failures: 0,
    ejected_until: null,
    ejections: 0,
  };
}

function canary(stable: number, canaryRequests: number, canaryErrors: number, braked = false): CanaryRow {
  return {
    route: "r",
    stable_pool: "v1",
    canary_pool: "v2",
    canary_weight: 10,
    stable_requests: stable,
    canary_requests: canaryRequests,
    braked,
    ...(braked ? { brake_reason: "canary error rate 50.0% exceeds stable" } : {}),
    canary_error_percent: canaryErrors,
    stable_error_percent: 0,
  };
}

const worker = (healthy: boolean, breaker: "closed" | "open", row: CanaryRow): RuntimeState => ({
  pools: [
    {
      pool: "p",
      endpoints: [
        endpoint("a:1", true, "ok"),
        endpoint("b:1", healthy, healthy ? "ok" : "ejected: 5 consecutive failures"),
      ],
    },
  ],
  breakers: [
    {
      pool: "p",
      state: breaker,
      trips: breaker === "open" ? 1 : 0,
      in_flight: 2,
      error_percent: breaker === "open" ? 60 : 5,
    },
  ],
  canaries: [row],
  limits: [
    {
      route: "r",
      overload: { limit: 10, in_flight: healthy ? 1 : 3, queued: 0 },
      rate_limit: { requests_per_second: 50, burst: 5, keys: 2 },
      retry_budget_tokens: 4,
    },
  ],
});

describe("mergeRuntimeStates", () => {
  it("returns a single worker's state as it is", () => {
    const one = worker(true, "closed", canary(10, 1, 0));
    expect(mergeRuntimeStates([one])).toBe(one);
  });

  it("takes the most cautious view across workers and adds the counts up", () => {
    const merged = mergeRuntimeStates([
      worker(true, "closed", canary(90, 10, 0)),
      worker(false, "open", canary(70, 30, 50, true)),
    ]);
    expect(merged.pools).toEqual([
      {
        pool: "p",
        endpoints: [endpoint("a:1", true, "ok"), endpoint("b:1", false, "ejected: 5 consecutive failures")],
      },
    ]);
    expect(merged.breakers).toEqual([
      { pool: "p", state: "open", trips: 1, in_flight: 4, error_percent: 60 },
    ]);
    expect(merged.canaries).toEqual([
      expect.objectContaining({
        braked: true,
        brake_reason: "canary error rate 50.0% exceeds stable",
        stable_requests: 160,
        canary_requests: 40,
        canary_error_percent: 37.5,
      }),
    ]);
    expect(merged.limits).toEqual([
      {
        route: "r",
        overload: { limit: 20, in_flight: 4, queued: 0 },
        rate_limit: { requests_per_second: 100, burst: 10, keys: 4 },
        retry_budget_tokens: 8,
      },
    ]);
  });

  it("is empty without workers", () => {
    expect(mergeRuntimeStates([])).toEqual({ pools: [], breakers: [], canaries: [], limits: [] });
  });
});
