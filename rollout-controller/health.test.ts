import { describe, expect, it } from "vitest";
import { RolloutError } from "./errors.js";
import { addTraffic, errorRate, latencyQuantile, NO_TRAFFIC } from "./health.js";
import { traffic } from "./test-support.js";

describe("traffic windows", () => {
  it("interpolates a quantile inside its bucket, as histogram_quantile does", () => {
    // 100 requests in (10, 25]: the 95th falls 95% of the way through the bucket.
    expect(latencyQuantile(traffic(100, 0, 20).latency, 0.95)).toBeCloseTo(10 + 15 * 0.95);
    const mixed = addTraffic(traffic(90, 0, 4), traffic(10, 0, 400));
    // 90 under 5 ms, 10 in (250, 500]: the 95th is half-way through the slow bucket.
    expect(latencyQuantile(mixed.latency, 0.95)).toBeCloseTo(375);
    expect(latencyQuantile(mixed.latency, 0.5)).toBeLessThanOrEqual(5);
  });

  it("answers the highest bound for latencies past it, and nothing without observations", () => {
    expect(latencyQuantile(traffic(10, 0, 60_000).latency, 0.95)).toBe(5000);
    expect(latencyQuantile(NO_TRAFFIC.latency, 0.95)).toBeUndefined();
  });

  it("adds windows bucket by bucket and refuses other bounds", () => {
    const sum = addTraffic(addTraffic(NO_TRAFFIC, traffic(10, 1, 20, 2)), traffic(30, 2, 20, 1));
    expect(sum).toMatchObject({ requests: 40, errors5xx: 3, agents: 3 });
    expect(sum.latency.counts[2]).toBe(40);
    expect(errorRate(sum)).toBeCloseTo(0.075);
    const other = { ...traffic(1), latency: { boundsMs: [1, 2], counts: [1, 0, 0] } };
    expect(() => addTraffic(traffic(1), other)).toThrow(RolloutError);
  });
});
