import { describe, expect, it } from "vitest";
import {
  type CheckJson,
  fitWidth,
  formatDuration,
  type RolloutEventJson,
  type RolloutJson,
  type RolloutStatusJson,
  renderRollout,
  rolloutSummary,
  visibleLength,
} from "./rollout-view.js";

const NOW = Date.parse("2026-11-26T04:10:00Z");

const STAGES = [
  { name: "canary", fleet_percent: 1, bake_ms: 300_000, min_requests: 100 },
  { name: "small", fleet_percent: 10, bake_ms: 600_000, min_requests: 100 },
  { name: "half", fleet_percent: 50, bake_ms: 900_000, min_requests: 100 },
  { name: "all", fleet_percent: 100, bake_ms: 0, min_requests: 100 },
];

function rollout(overrides: Partial<RolloutJson> = {}): RolloutJson {
  return {
    id: "r-edge-7-k3x9",
    fleet: "edge",
    candidate_version: 7,
    stable_version: 6,
    phase: "running",
    stage: { index: 1, name: "small", fleet_percent: 10, count: 4 },
    stages: STAGES,
    bake: { required_ms: 600_000, done_ms: 120_000, remaining_ms: 480_000 },
    reason: { kind: "bake_complete", summary: "baked with every gate passing" },
    created_by: "alice",
    created_at: "2026-11-26T04:00:00.000Z",
    updated_at: "2026-11-26T04:08:00.000Z",
    finished_at: null,
    restore_version: null,
    plan: { stages: STAGES, health_gates: [], burn_rate: null },
    ...overrides,
  };
}

function check(overrides: Partial<CheckJson> & Pick<CheckJson, "check">): CheckJson {
  return {
    bound: "absolute",
    verdict: "pass",
    observed: null,
    threshold: null,
    window_ms: 120_000,
    summary: "",
    ...overrides,
  };
}

function event(at: string, from: RolloutEventJson["from"], to: RolloutEventJson["to"], summary: string) {
  return {
    at,
    from,
    to,
    from_stage: 0,
    to_stage: 0,
    actor: "rollout-controller",
    reason: { kind: "x" },
    summary,
  };
}

function status(overrides: Partial<RolloutStatusJson> = {}): RolloutStatusJson {
  return {
    rollout: rollout(),
    checks: [
      check({ check: "error_rate", observed: 0.002, threshold: 0.01 }),
      check({ check: "p95_latency", observed: 42.1, threshold: 500 }),
    ],
    traffic: {
      candidate: { requests: 5120, errors_5xx: 10, p95_ms: 42.1 },
      stable: { requests: 90210, errors_5xx: 101, p95_ms: 40.3 },
    },
    agents: {
      total: 40,
      by_version: [
        { version: 7, acked: 3, pending: 1, nacked: 0 },
        { version: 6, acked: 36, pending: 0, nacked: 0 },
      ],
    },
    events: [
      event("2026-11-26T04:00:01.000Z", "pending", "running", "started"),
      {
        ...event("2026-11-26T04:08:00.000Z", "running", "running", "baked with every gate passing"),
        to_stage: 1,
      },
    ],
    ...overrides,
  };
}

const view = (s: RolloutStatusJson, width = Number.POSITIVE_INFINITY) =>
  renderRollout(s, { now: NOW, width }).join("\n");

describe("renderRollout", () => {
  it("shows a rollout mid-bake: stage n/N, a bar at the stage's share, bake time left", () => {
    const text = view(status());
    expect(text).toContain("rollout r-edge-7-k3x9  fleet edge  v6 → v7  running");
    expect(text).toMatch(
      /^stage 2\/4 small {2}\[(█+)(░+)\] {2}10% of agents {2}bake 2m00s of 10m00s, 8m00s left$/m,
    );
    const bar = /\[(█*)(░*)\]/.exec(text);
    expect(bar?.[1]?.length).toBe(3);
    expect(bar?.[2]?.length).toBe(27);
    expect(text).toContain("reason: baked with every gate passing");
  });

  it("lists agents per version with acked, pending and nacked, naming candidate and stable", () => {
    const text = view(status());
    expect(text).toContain("agents: 40");
    expect(text).toMatch(/^VERSION +ACKED +PENDING +NACKED$/m);
    expect(text).toMatch(/^v7 \(candidate\) +3 +1 +0$/m);
    expect(text).toMatch(/^v6 \(stable\) +36 +0 +0$/m);
  });

  it("shows each gate's value against its threshold with a verdict mark", () => {
    const text = view(status());
    expect(text).toMatch(/^error_rate +0\.20% +1\.00% +✓ pass$/m);
    expect(text).toMatch(/^p95_latency +42\.1ms +500ms +✓ pass$/m);
    expect(text).toContain(
      "traffic: candidate 5120 requests, 10 5xx, p95 42.1ms; stable 90210 requests, 101 5xx, p95 40.3ms",
    );
  });

  it("marks an inconclusive gate with ? and a gate without traffic or baseline with -", () => {
    const text = view(
      status({
        checks: [
          check({ check: "error_rate", verdict: "inconclusive", observed: null, threshold: 0.01 }),
          check({
            check: "p95_latency",
            bound: "relative_to_stable",
            verdict: "inconclusive",
            observed: 41,
            threshold: null,
          }),
          check({ check: "burn_rate", bound: "burn_short", verdict: "pass", observed: 1.5, threshold: 10 }),
        ],
      }),
    );
    expect(text).toMatch(/^error_rate +- +1\.00% +\? inconclusive$/m);
    expect(text).toMatch(/^p95_latency \(vs stable\) +41ms +- +\? inconclusive$/m);
    expect(text).toMatch(/^burn_rate \(short window\) +1\.5x +10x +✓ pass$/m);
  });

  it("shows a rolled-back rollout with its reason, the failed gate, and no share on the candidate", () => {
    const text = view(
      status({
        rollout: rollout({
          phase: "rolled_back",
          reason: { kind: "check_failed", summary: "error rate 3.20% > 1.00% (absolute, 500 requests)" },
          finished_at: "2026-11-26T04:09:00.000Z",
          restore_version: 8,
        }),
        checks: [check({ check: "error_rate", verdict: "fail", observed: 0.032, threshold: 0.01 })],
        events: [
          event("2026-11-26T04:00:01.000Z", "pending", "running", "started"),
          event("2026-11-26T04:09:00.000Z", "running", "rolled_back", "error rate 3.20% > 1.00%"),
        ],
      }),
    );
    expect(text).toContain("v6 → v7  rolled_back");
    expect(text).toMatch(/\[░{30}\] {2}0% of agents$/m);
    expect(text).not.toContain("bake");
    expect(text).toContain("rolled back: v6's content restored as v8");
    expect(text).toContain("reason: error rate 3.20% > 1.00% (absolute, 500 requests)");
    expect(text).toMatch(/^error_rate +3\.20% +1\.00% +✗ fail$/m);
    expect(text).toContain(
      "04:09:00 (1m00s ago)  running → rolled_back  error rate 3.20% > 1.00%  by rollout-controller",
    );
  });

  it("says a paused rollout's bake clock stands still, and who paused it once", () => {
    const paused = {
      ...event("2026-11-26T04:09:30.000Z", "running", "paused", "pause by alice"),
      actor: "alice",
    };
    const text = view(status({ rollout: rollout({ phase: "paused" }), events: [paused] }));
    expect(text).toContain("bake 2m00s of 10m00s (paused)");
    expect(text).toMatch(/^ {2}04:09:30 \(30s ago\) {2}running → paused {2}pause by alice$/m);
  });

  it("shows only the last five events, oldest first", () => {
    const events = Array.from({ length: 8 }, (_, i) =>
      event(`2026-11-26T04:0${i}:00.000Z`, "running", "paused", `event ${i}`),
    );
    const text = view(status({ events }));
    expect(text).not.toContain("event 2");
    const shown = [...text.matchAll(/event (\d)/g)].map((m) => m[1]);
    expect(shown).toEqual(["3", "4", "5", "6", "7"]);
  });

  it("fits a narrow terminal: no line wider than it, the bar shrunk, the key facts kept", () => {
    for (const width of [40, 60]) {
      const lines = renderRollout(status(), { now: NOW, width });
      for (const line of lines) expect(visibleLength(line)).toBeLessThanOrEqual(width);
      const text = lines.join("\n");
      expect(text).toContain("stage 2/4 small  [");
      // Too narrow for the bake time beside the bar: it gets a line of its own.
      expect(lines).toContain("bake 2m00s of 10m00s, 8m00s left");
      expect(text).toMatch(/^v7 \(candidate\) +3 +1 +0$/m);
      expect(text).toMatch(/^error_rate +0\.20% +1\.00% +✓ pass$/m);
    }
    const narrow = renderRollout(status(), { now: NOW, width: 40 });
    expect(narrow.find((line) => line.startsWith("stage"))).toMatch(/\[[█░]{10}\]/);
  });

  it("colours the phase and the verdicts only when asked, without counting the codes as width", () => {
    const plain = renderRollout(status(), { now: NOW, width: 60 });
    expect(plain.join("\n")).not.toContain("\x1b[");
    const coloured = renderRollout(status(), { now: NOW, width: 60, color: true });
    expect(coloured.join("\n")).toContain("\x1b[32m✓ pass\x1b[0m");
    expect(coloured.map(visibleLength)).toEqual(plain.map(visibleLength));
  });
});

describe("fitWidth", () => {
  it("keeps a line that fits and cuts one that does not with an ellipsis", () => {
    expect(fitWidth("abcdef", 6)).toBe("abcdef");
    expect(fitWidth("abcdefgh", 6)).toBe("abcde…");
    expect(fitWidth("\x1b[31mabcdefgh\x1b[0m", 6)).toBe("\x1b[31mabcde\x1b[0m…\x1b[0m");
    expect(visibleLength(fitWidth("→→→→→→→→", 4))).toBe(4);
  });
});

describe("formatDuration and rolloutSummary", () => {
  it.each([
    [0, "0s"],
    [45_000, "45s"],
    [480_000, "8m00s"],
    [3_900_000, "1h05m"],
  ])("formats %d ms as %s", (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it("summarizes a live rollout with its stage and a finished one without", () => {
    expect(rolloutSummary(rollout({ phase: "paused" }))).toBe(
      "rollout r-edge-7-k3x9 (fleet edge, v6 → v7): paused at stage 2/4 small (10%)",
    );
    expect(rolloutSummary(rollout({ phase: "rolled_back" }))).toBe(
      "rollout r-edge-7-k3x9 (fleet edge, v6 → v7): rolled back",
    );
  });
});
