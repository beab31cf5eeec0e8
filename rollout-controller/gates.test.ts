import { describe, expect, it } from "vitest";
import { burnRate, evaluateBurnRate, evaluateGates } from "./gates.js";
import type { BurnRateRule } from "./plan.js";
import { traffic } from "./test-support.js";

const base = { windowMs: 60_000, minRequests: 100 };

describe("health gates", () => {
  it.each([
    ["passes under the absolute error rate", 1_000, 5, "pass", 0.005],
    ["fails over it", 1_000, 20, "fail", 0.02],
    ["is inconclusive on too little traffic, however bad", 99, 99, "inconclusive", 1],
    ["is inconclusive on no traffic", 0, 0, "inconclusive", undefined],
  ] as const)("error_rate %s", (_name, requests, errors, verdict, observed) => {
    const [result] = evaluateGates({
      ...base,
      gates: [{ metric: "error_rate", threshold: 0.01 }],
      candidate: traffic(requests, errors),
      stable: traffic(10_000),
    });
    expect(result).toMatchObject({ check: "error_rate", bound: "absolute", verdict, threshold: 0.01 });
    if (observed === undefined) expect(result?.observed).toBeUndefined();
    else expect(result?.observed).toBeCloseTo(observed);
  });

  it("judges p95 latency against an absolute bound, with the value in the summary", () => {
    const gates = [{ metric: "p95_latency" as const, threshold: 500 }];
    const slow = evaluateGates({ ...base, gates, candidate: traffic(200, 0, 2_000), stable: traffic(1) });
    expect(slow[0]).toMatchObject({ verdict: "fail", threshold: 500 });
    expect(slow[0]?.summary).toMatch(/p95 latency \d+\.\dms > 500\.0ms \(absolute, 200 requests\)/);
    const fast = evaluateGates({ ...base, gates, candidate: traffic(200, 0, 40), stable: traffic(1) });
    expect(fast[0]?.verdict).toBe("pass");
  });

  it("holds the candidate to a multiple of the stable cohort's value", () => {
    const gates = [{ metric: "p95_latency" as const, relative_to_stable: 2 }];
    const stable = traffic(5_000, 0, 40); // p95 in (25, 50]
    const twice = evaluateGates({ ...base, gates, candidate: traffic(500, 0, 400), stable });
    expect(twice[0]).toMatchObject({ bound: "relative_to_stable", verdict: "fail" });
    expect(twice[0]?.threshold).toBeCloseTo(2 * (25 + 25 * 0.95));
    const same = evaluateGates({ ...base, gates, candidate: traffic(500, 0, 40), stable });
    expect(same[0]?.verdict).toBe("pass");
  });

  it("is inconclusive on a relative bound while the stable cohort has too little traffic", () => {
    const [result] = evaluateGates({
      ...base,
      gates: [{ metric: "error_rate", relative_to_stable: 2 }],
      candidate: traffic(1_000, 500),
      stable: traffic(10),
    });
    expect(result).toMatchObject({ verdict: "inconclusive", threshold: undefined });
    expect(result?.summary).toContain("stable cohort has 10 of 100");
  });

  it("never fails a relative error gate on `limit` errors when the stable cohort had none", () => {
    const gates = [{ metric: "error_rate" as const, relative_to_stable: 2 }];
    const stable = traffic(10_000, 0);
    expect(evaluateGates({ ...base, gates, candidate: traffic(500, 2), stable })[0]?.verdict).toBe("pass");
    expect(evaluateGates({ ...base, gates, candidate: traffic(500, 3), stable })[0]?.verdict).toBe("fail");
  });

  it("checks both bounds of a gate that has both, each on its own", () => {
    const results = evaluateGates({
      ...base,
      gates: [{ metric: "error_rate", threshold: 0.05, relative_to_stable: 1.5 }],
      candidate: traffic(1_000, 30),
      stable: traffic(1_000, 10),
    });
    expect(results.map((r) => [r.bound, r.verdict])).toEqual([
      ["absolute", "pass"],
      ["relative_to_stable", "fail"],
    ]);
  });
});

describe("burn rate", () => {
  const rule: BurnRateRule = { threshold: 10, objective: 99.9, shortWindowMs: 5_000, longWindowMs: 60_000 };

  it("is the error rate over the error budget", () => {
    expect(burnRate(traffic(1_000, 1), 99.9)).toBeCloseTo(1);
    expect(burnRate(traffic(1_000, 20), 99)).toBeCloseTo(2);
  });

  it.each([
    ["both windows burn", traffic(100, 5), traffic(1_000, 20), ["fail", "fail"]],
    ["only the short window burns (a blip)", traffic(100, 5), traffic(1_000, 5), ["fail", "pass"]],
    ["only the long window burns (already over)", traffic(100, 0), traffic(1_000, 20), ["pass", "fail"]],
    ["the long window lacks traffic", traffic(10, 5), traffic(50, 20), ["fail", "inconclusive"]],
    ["the short window has none", traffic(0), traffic(1_000, 20), ["inconclusive", "fail"]],
  ] as const)("%s", (_name, short, long, verdicts) => {
    const results = evaluateBurnRate({ rule, short, long, minRequests: 100 });
    expect(results.map((r) => r.verdict)).toEqual(verdicts);
    expect(results.map((r) => r.windowMs)).toEqual([5_000, 60_000]);
  });
});
