import { describe, expect, it } from "vitest";
import { formatIssue } from "../../services/config/index.js";
import { describePlan, readPlanText } from "./rollout-plan.js";

const BLOCK = `stages:
  - name: canary
    fleet_percent: 1
    bake_time: 5m
  - name: all
    fleet_percent: 100
health_gates:
  - metric: error_rate
    threshold: 0.01
  - metric: p95_latency
    threshold: 500ms
auto_rollback:
  error_budget_burn_rate: 10x
`;

const indent = (text: string) => text.replace(/^(?=.)/gm, "  ");

describe("readPlanText", () => {
  it("reads a rollout: block and its content alone alike, keeping the block as written", () => {
    const wrapped = readPlanText(`rollout:\n${indent(BLOCK)}`);
    const bare = readPlanText(BLOCK);
    if (!wrapped.ok || !bare.ok) throw new Error("both forms must be valid");
    expect(wrapped.value).toEqual(bare.value);
    expect(bare.value.block).toMatchObject({
      stages: [{ name: "canary", bake_time: "5m" }, { name: "all" }],
    });
    expect(bare.value.plan.stages.map((s) => [s.name, s.fleet_percent, s.bake_ms])).toEqual([
      ["canary", 1, 300_000],
      ["all", 100, 0],
    ]);
  });

  it("reads JSON too, and only the rollout: block of a whole config", () => {
    const json = readPlanText(JSON.stringify({ stages: [{ name: "all", fleet_percent: 100 }] }));
    const config = readPlanText(
      `routes: []\nrollout:\n  stages:\n    - name: all\n      fleet_percent: 100\n`,
    );
    expect(json.ok && json.value.plan.stages).toHaveLength(1);
    expect(config.ok && config.value.block).toEqual({ stages: [{ name: "all", fleet_percent: 100 }] });
  });

  it("reports every error with its path under rollout and its line, in either form", () => {
    const broken = BLOCK.replace("fleet_percent: 1\n", "fleet_percent: 150\n").replace(
      "bake_time",
      "bake_tme",
    );
    for (const [text, offset] of [
      [broken, 0],
      [`rollout:\n${indent(broken)}`, 1],
    ] as const) {
      const result = readPlanText(text);
      if (result.ok) throw new Error("must be invalid");
      expect(result.errors.map((issue) => formatIssue(issue, "plan.yaml"))).toEqual([
        `plan.yaml:${3 + offset}:${5 + offset * 2} rollout.stages[0].fleet_percent: a percentage must be between 0 and 100, got 150`,
        `plan.yaml:${4 + offset}:${5 + offset * 2} rollout.stages[0].bake_tme: unknown field "bake_tme" (did you mean "bake_time"?)`,
      ]);
    }
  });

  it("refuses an empty plan and one that is not a mapping", () => {
    const empty = readPlanText("rollout:\n");
    const list = readPlanText("- canary\n");
    expect(!empty.ok && empty.errors.map((e) => [e.code, e.path])).toEqual([["missing_field", "rollout"]]);
    expect(!list.ok && list.errors.map((e) => e.path)).toEqual(["rollout"]);
  });
});

describe("describePlan", () => {
  it("shows stages with their share and bake time, the gates and the rollback rule", () => {
    const read = readPlanText(BLOCK);
    if (!read.ok) throw new Error("must be valid");
    expect(describePlan(read.value.plan)).toBe(
      [
        "STAGE   AGENTS  BAKE   MIN REQUESTS",
        "canary  1%      5m00s  100",
        "all     100%    -      100",
        "gates: error_rate <= 1.00%, p95_latency <= 500ms",
        "auto rollback: error budget burning faster than 10x (SLO 99.9%, windows 5m00s and 1h00m)",
      ].join("\n"),
    );
  });
});
