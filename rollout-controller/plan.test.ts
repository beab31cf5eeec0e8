import { describe, expect, it } from "vitest";
import { DEFAULT_PLAN_INPUT, PLAN_DEFAULTS, parsePlan } from "./plan.js";

describe("parsePlan", () => {
  it("resolves the spec's example with units and defaults", () => {
    const parsed = parsePlan(DEFAULT_PLAN_INPUT);
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(parsed.value.stages.map((s) => [s.name, s.fleetPercent, s.bakeMs, s.minRequests])).toEqual([
      ["canary", 1, 300_000, PLAN_DEFAULTS.minRequests],
      ["small", 10, 600_000, PLAN_DEFAULTS.minRequests],
      ["half", 50, 900_000, PLAN_DEFAULTS.minRequests],
      ["all", 100, 0, PLAN_DEFAULTS.minRequests],
    ]);
    expect(parsed.value.gates).toEqual([
      { metric: "error_rate", threshold: 0.01 },
      { metric: "p95_latency", threshold: 500 },
    ]);
    expect(parsed.value.burnRate).toEqual({
      threshold: 10,
      objective: 99.9,
      shortWindowMs: 300_000,
      longWindowMs: 3_600_000,
    });
  });

  it("gives every error of a plan's meaning with its path", () => {
    const parsed = parsePlan({
      stages: [
        { name: "a", fleet_percent: 10 },
        { name: "a", fleet_percent: 5 },
      ],
      health_gates: [{ metric: "error_rate" }],
    });
    expect(parsed.ok).toBe(false);
    if (parsed.ok) return;
    expect(parsed.errors.map((e) => [e.code, e.path])).toEqual([
      ["duplicate_id", "rollout.stages[1].name"],
      ["invalid_value", "rollout.stages[1].fleet_percent"],
      ["invalid_value", "rollout.stages[1].fleet_percent"],
      ["missing_field", "rollout.health_gates[0]"],
    ]);
  });

  it("gives every error of its shape with its path", () => {
    const parsed = parsePlan({
      stages: [{ name: "a", fleet_percent: 101, bake_time: "soon", wait: 1 }],
    });
    expect(parsed.ok).toBe(false);
    if (parsed.ok) return;
    expect(parsed.errors.map((e) => e.path).sort()).toEqual([
      "rollout.stages[0].bake_time",
      "rollout.stages[0].fleet_percent",
      "rollout.stages[0].wait",
    ]);
  });

  it("keeps a stage's own min_requests over the plan's", () => {
    const parsed = parsePlan({
      min_requests: 50,
      stages: [
        { name: "one", fleet_percent: 5, min_requests: 7 },
        { name: "all", fleet_percent: 100 },
      ],
    });
    expect(parsed.ok && parsed.value.stages.map((s) => s.minRequests)).toEqual([7, 50]);
  });

  it("keeps the burn windows in the workbook's 1:12 proportion when only one is named", () => {
    const short = parsePlan({
      stages: [{ name: "all", fleet_percent: 100 }],
      auto_rollback: { error_budget_burn_rate: "5x", slo: { objective: 99, short_window: "2h" } },
    });
    expect(short.ok && short.value.burnRate).toMatchObject({
      shortWindowMs: 7_200_000,
      longWindowMs: 86_400_000,
    });
    const long = parsePlan({
      stages: [{ name: "all", fleet_percent: 100 }],
      auto_rollback: { error_budget_burn_rate: 5, slo: { objective: 99, long_window: "12s" } },
    });
    expect(long.ok && long.value.burnRate).toMatchObject({ shortWindowMs: 1_000, longWindowMs: 12_000 });
  });
});
