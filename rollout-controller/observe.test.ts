import { describe, expect, it } from "vitest";
import { LATENCY_BOUNDS_MS } from "../agent/control/health-recorder.js";
import type { AgentRow, HealthSampleRow } from "../authority/store/index.js";
import { observe, observedSince } from "./observe.js";
import { newRollout, type Rollout } from "./state-machine.js";
import { plan } from "./test-support.js";

const T0 = 1_000_000;
const PLAN = plan({
  stages: [{ name: "all", fleet_percent: 100, bake_time: "1m" }],
  auto_rollback: {
    error_budget_burn_rate: 10,
    slo: { objective: 99, short_window: "10s", long_window: "120s" },
  },
});

function sample(
  version: number,
  end: number,
  requests: number,
  errors = 0,
  distributorId = "d1",
): HealthSampleRow {
  const counts = new Array<number>(LATENCY_BOUNDS_MS.length + 1).fill(0);
  counts[3] = requests;
  return {
    fleet: "edge",
    version,
    region: "eu",
    distributorId,
    windowStart: new Date(end - 5_000),
    windowEnd: new Date(end),
    requests,
    errors5xx: errors,
    agents: 1,
    latency: { boundsMs: LATENCY_BOUNDS_MS, counts, sumMs: requests * 30 },
  };
}

function agent(id: string, nackVersion: number | undefined, lastSeen: number, path = "routes[0]"): AgentRow {
  return {
    id,
    fleet: "edge",
    region: "eu",
    distributorId: "d1",
    runningVersion: 1,
    desiredVersion: 2,
    state: nackVersion === undefined ? "acked" : "nacked",
    nack:
      nackVersion === undefined
        ? null
        : { version: nackVersion, errors: [{ path, message: "bad", code: "x" }] },
    labels: {},
    connected: true,
    lastSeen: new Date(lastSeen),
    updatedAt: new Date(lastSeen),
    stale: false,
  };
}

describe("observe", () => {
  // Created at T0; its stage started 200 s later.
  const rollout: Rollout = {
    ...newRollout({ id: "r", fleet: "edge", candidateVersion: 2, stableVersion: 1, plan: PLAN, now: T0 }),
    phase: "running",
    stageStartedAt: T0 + 200_000,
  };

  it("sums the stage's window per cohort, both distributors counted, nothing from before the stage", () => {
    const now = T0 + 300_000;
    const seen = observe(
      rollout,
      [
        sample(2, T0 + 199_000, 1_000, 1_000), // ended before the stage: not the stage's
        sample(2, T0 + 250_000, 100, 1),
        sample(2, T0 + 250_000, 50, 0, "d2"),
        sample(1, T0 + 250_000, 900, 9),
      ],
      [],
      now,
    );
    expect(seen.candidate).toMatchObject({ requests: 150, errors5xx: 1, agents: 2 });
    expect(seen.stable).toMatchObject({ requests: 900, errors5xx: 9 });
    expect(seen.candidate.latency.counts[3]).toBe(150);
  });

  it("reads the burn windows back from now, never before the rollout began", () => {
    const now = T0 + 300_000;
    const seen = observe(
      rollout,
      [sample(2, now - 5_000, 10, 1), sample(2, now - 60_000, 20, 2), sample(2, now - 200_000, 40, 4)],
      [],
      now,
    );
    expect(seen.burnShort.requests).toBe(10);
    expect(seen.burnLong.requests).toBe(30);
    expect(observedSince(rollout, now)).toBe(T0 + 180_000);
    const young = { ...rollout, stageStartedAt: T0 };
    expect(observedSince(young, T0 + 10_000)).toBe(T0);
  });

  it("counts the agents that refused the candidate and names the latest with its first error", () => {
    const seen = observe(
      rollout,
      [],
      [
        agent("a", 2, T0 + 5),
        agent("b", 2, T0 + 9, "pools[1].endpoints"),
        agent("c", 1, T0 + 20),
        agent("d", undefined, T0),
      ],
      T0 + 30,
    );
    expect(seen.nacks).toEqual({ count: 2, agentId: "b", detail: "pools[1].endpoints: bad" });
  });
});
