import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  BUCKETS,
  type CohortState,
  candidateThreshold,
  cohortBucket,
  desiredVersion,
  versionForBucket,
} from "./cohort.js";

const agents = Array.from({ length: 10_000 }, (_, i) => `agent-${i}`);
const rollout = (percent: number): CohortState => ({
  stableVersion: 4,
  candidateVersion: 5,
  rolloutId: "r-42",
  candidatePercent: percent,
});
const onCandidate = (state: CohortState) => new Set(agents.filter((a) => desiredVersion(state, a) === 5));

describe("cohortBucket", () => {
  it("is sha256(rollout_id + agent_id) read as a big-endian integer, mod 10000", () => {
    for (const [rolloutId, agentId] of [
      ["r-42", "agent-1"],
      ["", ""],
      ["rollout", "ägent-ü"],
    ] as const) {
      const hex = createHash("sha256")
        .update(rolloutId + agentId)
        .digest("hex");
      expect(cohortBucket(rolloutId, agentId)).toBe(Number(BigInt(`0x${hex}`) % BigInt(BUCKETS)));
    }
  });

  it("spreads agents evenly over the buckets", () => {
    const tenths = new Array(10).fill(0);
    for (const agent of agents) tenths[Math.floor(cohortBucket("r-42", agent) / 1000)]++;
    for (const count of tenths) expect(Math.abs(count - 1000)).toBeLessThan(150);
  });
});

describe("desiredVersion", () => {
  it("runs the stable version outside a rollout, and 0 before the fleet has one", () => {
    expect(desiredVersion({ ...rollout(50), candidateVersion: 0, rolloutId: "" }, "a")).toBe(4);
    expect(
      desiredVersion({ stableVersion: 0, candidateVersion: 0, rolloutId: "", candidatePercent: 0 }, "a"),
    ).toBe(0);
  });

  it("puts about the stage's share of agents on the candidate", () => {
    expect(onCandidate(rollout(0)).size).toBe(0);
    expect(Math.abs(onCandidate(rollout(10)).size - 1000)).toBeLessThan(100);
    expect(onCandidate(rollout(100)).size).toBe(10_000);
  });

  it("only grows the candidate cohort from stage to stage", () => {
    const stages = [1, 10, 50, 100].map((percent) => onCandidate(rollout(percent)));
    for (let i = 1; i < stages.length; i++) {
      for (const agent of stages[i - 1] as Set<string>) expect(stages[i]?.has(agent)).toBe(true);
    }
  });

  it("picks other agents for another rollout", () => {
    const first = onCandidate(rollout(10));
    const second = onCandidate({ ...rollout(10), rolloutId: "r-43" });
    const shared = [...first].filter((a) => second.has(a)).length;
    expect(shared).toBeLessThan(200);
  });
});

describe("candidateThreshold", () => {
  it("asks a caller that keeps buckets only during a rollout, for that rollout's id", () => {
    const asked: string[] = [];
    const bucket = (rolloutId: string): number => {
      asked.push(rolloutId);
      return 4_999;
    };
    const rollout: CohortState = {
      stableVersion: 1,
      candidateVersion: 2,
      rolloutId: "r7",
      candidatePercent: 50,
    };
    expect(versionForBucket({ ...rollout, candidateVersion: 0 }, bucket)).toBe(1);
    expect(versionForBucket({ ...rollout, candidatePercent: 0 }, bucket)).toBe(1);
    expect(asked).toEqual([]);
    expect(versionForBucket(rollout, bucket)).toBe(2);
    expect(versionForBucket({ ...rollout, candidatePercent: 49.99 }, bucket)).toBe(1);
    expect(asked).toEqual(["r7", "r7"]);
  });

  it("rounds, so every distributor gets the same integer", () => {
    expect(0.07 * 100).not.toBe(7);
    expect(candidateThreshold(0.07)).toBe(7);
    expect(candidateThreshold(12.5)).toBe(1250);
    expect(candidateThreshold(150)).toBe(BUCKETS);
    expect(candidateThreshold(-1)).toBe(0);
  });
});
