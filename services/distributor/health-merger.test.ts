import { describe, expect, it } from "vitest";
import type { HealthReport } from "../../proto/coherent/v1/distribution.js";
import { HealthMerger } from "./health-merger.js";

function report(
  start: number,
  version: number,
  requests: number,
  errors: number,
  counts: number[],
): HealthReport {
  return {
    windowStartUnixMs: start,
    windowEndUnixMs: start + 5_000,
    versions: [
      {
        version,
        requests,
        errors5xx: errors,
        latency: { boundsMs: [10, 100], counts, sumMs: requests * 5, count: requests },
      },
    ],
  };
}

describe("HealthMerger", () => {
  it("sums reports per (fleet, version, region) and counts distinct agents", () => {
    const merger = new HealthMerger();
    merger.add("a", "edge", "eu", report(1_000, 7, 10, 1, [8, 2, 0]));
    merger.add("b", "edge", "eu", report(2_000, 7, 5, 0, [5, 0, 0]));
    merger.add("a", "edge", "eu", report(6_000, 7, 1, 0, [1, 0, 0]));
    merger.add("c", "edge", "eu", report(1_000, 8, 4, 4, [0, 0, 4]));
    merger.add("d", "edge", "us", report(1_000, 7, 3, 0, [3, 0, 0]));
    const samples = merger.drain();
    expect(samples).toHaveLength(3);
    expect(samples.find((s) => s.version === 7 && s.region === "eu")).toEqual({
      fleet: "edge",
      version: 7,
      region: "eu",
      windowStartUnixMs: 1_000,
      windowEndUnixMs: 11_000,
      requests: 16,
      errors5xx: 1,
      latency: { boundsMs: [10, 100], counts: [14, 2, 0], sumMs: 80, count: 16 },
      agents: 2,
    });
    expect(samples.find((s) => s.version === 8)).toMatchObject({ requests: 4, errors5xx: 4, agents: 1 });
    expect(merger.drain()).toEqual([]);
  });

  it("adds requests but not latency from a histogram with other bounds", () => {
    const merger = new HealthMerger();
    merger.add("a", "edge", "eu", report(0, 1, 2, 0, [2, 0, 0]));
    merger.add("b", "edge", "eu", {
      windowStartUnixMs: 0,
      windowEndUnixMs: 5_000,
      versions: [
        {
          version: 1,
          requests: 3,
          errors5xx: 0,
          latency: { boundsMs: [50], counts: [3, 0], sumMs: 9, count: 3 },
        },
      ],
    });
    const [sample] = merger.drain();
    expect(sample?.requests).toBe(5);
    expect(sample?.latency).toEqual({ boundsMs: [10, 100], counts: [2, 0, 0], sumMs: 10, count: 2 });
  });
});
