import { describe, expect, it } from "vitest";
import { RolloutError } from "./errors.js";
import type { TrafficWindow } from "./health.js";
import {
  bakeRemainingMs,
  type Command,
  command,
  fleetTarget,
  newRollout,
  type Observation,
  type Phase,
  type Rollout,
  step,
} from "./state-machine.js";
import { plan, traffic } from "./test-support.js";

const PLAN = plan({
  min_requests: 100,
  stages: [
    { name: "canary", fleet_percent: 1, bake_time: "60s" },
    { name: "half", fleet_percent: 50, bake_time: "60s" },
    { name: "all", fleet_percent: 100 },
  ],
  health_gates: [
    { metric: "error_rate", threshold: 0.01 },
    { metric: "p95_latency", threshold: "500ms" },
  ],
  auto_rollback: {
    error_budget_burn_rate: 10,
    slo: { objective: 99.9, short_window: "10s", long_window: "120s" },
  },
});

const T0 = 1_000_000;

function fresh(): Rollout {
  return newRollout({ id: "r1", fleet: "edge", candidateVersion: 7, stableVersion: 6, plan: PLAN, now: T0 });
}

function seen(now: number, candidate: TrafficWindow, extra: Partial<Observation> = {}): Observation {
  return {
    now,
    candidate,
    stable: traffic(10_000),
    burnShort: candidate,
    burnLong: candidate,
    nacks: { count: 0 },
    cohortAgents: 1,
    ...extra,
  };
}

const healthy = traffic(1_000, 2, 40);

/** A rollout started at T0 and, when `stage` > 0, promoted through the stages before it. */
function runningAt(stage: number): Rollout {
  let rollout = step(fresh(), seen(T0, healthy)).rollout;
  for (let i = 0; i < stage; i++) rollout = step(rollout, seen(T0 + (i + 1) * 60_000, healthy)).rollout;
  return rollout;
}

describe("rollout state machine", () => {
  it("starts a pending rollout at its first stage and publishes its percent", () => {
    const started = step(fresh(), seen(T0, traffic(0)));
    expect(started.transition).toMatchObject({
      from: "pending",
      to: "running",
      toStage: 0,
      reason: { kind: "started" },
    });
    expect(fleetTarget(started.rollout)).toEqual({ kind: "split", candidateVersion: 7, percent: 1 });
    expect(started.bakeRemainingMs).toBe(60_000);
  });

  it("walks 1% → 50% → 100% → succeeded on healthy traffic once each bake is over", () => {
    let rollout = step(fresh(), seen(T0, healthy)).rollout;
    const early = step(rollout, seen(T0 + 59_999, healthy));
    expect(early.transition).toBeUndefined();
    expect(early.bakeRemainingMs).toBe(1);
    expect(early.checks.map((c) => c.verdict)).toEqual(["pass", "pass", "pass", "pass"]);

    const percents: number[] = [];
    for (let i = 1; i <= 3; i++) {
      const next = step(rollout, seen(T0 + i * 60_000, healthy));
      expect(next.transition?.reason.kind).toBe("bake_complete");
      rollout = next.rollout;
      const target = fleetTarget(rollout);
      if (target.kind === "split") percents.push(target.percent);
    }
    expect(percents).toEqual([50, 100]);
    expect(rollout.phase).toBe("succeeded");
    expect(fleetTarget(rollout)).toEqual({ kind: "promote_candidate", version: 7 });
  });

  it("does not promote on too little traffic after the bake: inconclusive, shown as such", () => {
    const rollout = runningAt(0);
    for (const requests of [0, 99]) {
      const next = step(rollout, seen(T0 + 10 * 60_000, traffic(requests)));
      expect(next.transition).toBeUndefined();
      expect(next.rollout.phase).toBe("running");
      expect(
        next.checks.filter((c) => c.check !== "burn_rate").every((c) => c.verdict === "inconclusive"),
      ).toBe(true);
    }
    expect(step(rollout, seen(T0 + 10 * 60_000, traffic(100))).transition?.to).toBe("running");
  });

  it("moves a baked stage whose cohort holds no connected agent on, but never the last stage", () => {
    const rollout = runningAt(0);
    const empty = { cohortAgents: 0 };
    expect(step(rollout, seen(T0 + 59_999, traffic(0), empty)).transition).toBeUndefined();
    const moved = step(rollout, seen(T0 + 60_000, traffic(0), empty));
    expect(moved.transition).toMatchObject({ from: "running", to: "running", fromStage: 0, toStage: 1 });
    expect(moved.transition?.reason).toEqual({ kind: "empty_stage" });
    // An agent in the cohort and no traffic: it waits, as ever.
    expect(step(rollout, seen(T0 + 60_000, traffic(0), { cohortAgents: 1 })).transition).toBeUndefined();
    // A failing gate still rolls back, agents or not.
    expect(step(rollout, seen(T0 + 60_000, traffic(1_000, 300), empty)).rollout.phase).toBe("rolled_back");
    const last = runningAt(2);
    expect(step(last, seen(T0 + 10 * 60_000, traffic(0), empty)).transition).toBeUndefined();
  });

  it("promotes on traffic alone when the plan has no gates, but still not on silence", () => {
    const bare = newRollout({
      id: "r2",
      fleet: "edge",
      candidateVersion: 2,
      stableVersion: 1,
      plan: plan({ stages: [{ name: "all", fleet_percent: 100 }] }),
      now: T0,
    });
    const started = step(bare, seen(T0, traffic(0))).rollout;
    expect(step(started, seen(T0 + 1, traffic(0))).transition).toBeUndefined();
    expect(step(started, seen(T0 + 1, traffic(100))).rollout.phase).toBe("succeeded");
  });

  it.each([
    ["error rate", traffic(1_000, 30, 40), "error_rate", 0.03],
    ["p95 latency", traffic(1_000, 0, 2_000), "p95_latency", undefined],
  ] as const)("rolls back at once, mid-bake, when the %s gate fails", (_name, bad, check, observed) => {
    const next = step(runningAt(1), seen(T0 + 61_000, bad, { burnShort: healthy, burnLong: healthy }));
    expect(next.transition).toMatchObject({ from: "running", to: "rolled_back", fromStage: 1 });
    const reason = next.transition?.reason;
    expect(reason?.kind === "check_failed" && reason.check.check).toBe(check);
    if (observed !== undefined && reason?.kind === "check_failed")
      expect(reason.check.observed).toBeCloseTo(observed);
    expect(fleetTarget(next.rollout)).toEqual({ kind: "restore_stable", contentOf: 6 });
  });

  it("rolls back on burn rate only when both windows burn", () => {
    const burning = traffic(1_000, 20); // 2% errors = 20x a 99.9% budget
    const rollout = runningAt(0);
    const gatesOk = { candidate: healthy };
    const both = step(rollout, {
      ...seen(T0 + 1_000, healthy),
      ...gatesOk,
      burnShort: burning,
      burnLong: burning,
    });
    expect(both.transition?.to).toBe("rolled_back");
    const reason = both.transition?.reason;
    expect(reason?.kind === "check_failed" && reason.check).toMatchObject({
      check: "burn_rate",
      bound: "burn_long",
      windowMs: 120_000,
    });

    const blip = step(rollout, { ...seen(T0 + 1_000, healthy), burnShort: burning, burnLong: healthy });
    expect(blip.transition).toBeUndefined();
    const over = step(rollout, { ...seen(T0 + 1_000, healthy), burnShort: healthy, burnLong: burning });
    expect(over.transition).toBeUndefined();
  });

  it("halts on a NACK in the cohort, and a resume accepts the NACKs seen so far", () => {
    const nacked = step(
      runningAt(1),
      seen(T0 + 70_000, healthy, { nacks: { count: 1, agentId: "a-3", detail: "signature" } }),
    );
    expect(nacked.transition).toMatchObject({
      to: "paused",
      reason: { kind: "nack", nacks: 1, agentId: "a-3" },
    });
    expect(fleetTarget(nacked.rollout)).toEqual({ kind: "unchanged" });
    const resumed = command(nacked.rollout, { kind: "resume", nacks: 1 }, "sre", T0 + 80_000);
    expect(resumed.rollout).toMatchObject({ phase: "running", acceptedNacks: 1 });
    expect(
      step(resumed.rollout, seen(T0 + 81_000, healthy, { nacks: { count: 1 } })).transition,
    ).toBeUndefined();
    expect(step(resumed.rollout, seen(T0 + 81_000, healthy, { nacks: { count: 2 } })).transition?.to).toBe(
      "paused",
    );
  });

  it("does not count paused time as baking", () => {
    const rollout = runningAt(0); // stage 0 since T0, 60 s bake
    const paused = command(rollout, { kind: "pause" }, "sre", T0 + 20_000).rollout;
    expect(bakeRemainingMs(paused, T0 + 500_000)).toBe(40_000);
    const resumed = command(paused, { kind: "resume", nacks: 0 }, "sre", T0 + 500_000).rollout;
    expect(step(resumed, seen(T0 + 539_999, healthy)).transition).toBeUndefined();
    expect(step(resumed, seen(T0 + 540_000, healthy)).transition?.reason.kind).toBe("bake_complete");
    // A paused rollout is not judged: a failing gate changes nothing until it runs again.
    expect(step(paused, seen(T0 + 30_000, traffic(1_000, 900))).transition).toBeUndefined();
  });

  type Expect = Phase | "refused";
  const table: [
    Command,
    Record<"pending" | "running" | "paused" | "succeeded" | "rolled_back" | "aborted", Expect>,
  ][] = [
    [
      { kind: "pause" },
      {
        pending: "refused",
        running: "paused",
        paused: "refused",
        succeeded: "refused",
        rolled_back: "refused",
        aborted: "refused",
      },
    ],
    [
      { kind: "resume", nacks: 0 },
      {
        pending: "refused",
        running: "refused",
        paused: "running",
        succeeded: "refused",
        rolled_back: "refused",
        aborted: "refused",
      },
    ],
    [
      { kind: "promote", full: false },
      {
        pending: "running",
        running: "running",
        paused: "running",
        succeeded: "refused",
        rolled_back: "refused",
        aborted: "refused",
      },
    ],
    [
      { kind: "promote", full: true },
      {
        pending: "succeeded",
        running: "succeeded",
        paused: "succeeded",
        succeeded: "refused",
        rolled_back: "refused",
        aborted: "refused",
      },
    ],
    [
      { kind: "abort" },
      {
        pending: "aborted",
        running: "aborted",
        paused: "aborted",
        succeeded: "refused",
        rolled_back: "refused",
        aborted: "refused",
      },
    ],
    [
      { kind: "rollback" },
      {
        pending: "rolled_back",
        running: "rolled_back",
        paused: "rolled_back",
        succeeded: "rolled_back",
        rolled_back: "refused",
        aborted: "refused",
      },
    ],
  ];
  const inPhase = (phase: Phase): Rollout => {
    const running = runningAt(0);
    switch (phase) {
      case "pending":
        return fresh();
      case "running":
        return running;
      case "paused":
        return command(running, { kind: "pause" }, "sre", T0 + 1).rollout;
      case "succeeded":
        return command(running, { kind: "promote", full: true }, "sre", T0 + 1).rollout;
      case "rolled_back":
        return command(running, { kind: "rollback" }, "sre", T0 + 1).rollout;
      case "aborted":
        return command(running, { kind: "abort" }, "sre", T0 + 1).rollout;
    }
  };
  for (const [cmd, outcomes] of table) {
    for (const [phase, expected] of Object.entries(outcomes) as [Phase, Expect][]) {
      it(`${cmd.kind}${cmd.kind === "promote" && cmd.full ? " --full" : ""} on a ${phase} rollout → ${expected}`, () => {
        const before = inPhase(phase);
        if (expected === "refused") {
          expect(() => command(before, cmd, "sre", T0 + 2)).toThrow(RolloutError);
          return;
        }
        const result = command(before, cmd, "sre", T0 + 2);
        expect(result.rollout.phase).toBe(expected);
        expect(result.transition).toMatchObject({
          from: phase,
          to: expected,
          reason: { kind: "command", command: cmd.kind, actor: "sre" },
        });
      });
    }
  }

  it("promote moves one stage and skips the bake; from the last stage it succeeds", () => {
    const one = command(runningAt(0), { kind: "promote", full: false }, "sre", T0 + 1).rollout;
    expect([one.stage, one.phase, bakeRemainingMs(one, T0 + 1)]).toEqual([1, "running", 60_000]);
    const last = command(runningAt(2), { kind: "promote", full: false }, "sre", T0 + 200_000).rollout;
    expect(last.phase).toBe("succeeded");
  });

  it("undoes a succeeded rollout back to the stable it started from", () => {
    const done = command(runningAt(0), { kind: "promote", full: true }, "sre", T0 + 1).rollout;
    expect(fleetTarget(command(done, { kind: "rollback" }, "sre", T0 + 2).rollout)).toEqual({
      kind: "restore_stable",
      contentOf: 6,
    });
  });
});
