import { describe, expect, it } from "vitest";
import type { Phase as RolloutPhase } from "../../rollout-controller/state-machine.js";
import { ApiError } from "../client.js";
import type { RolloutStatusJson } from "../rollout-view.js";
import { watchRollout } from "./rollout-watch.js";
import { CliError } from "./run.js";

function status(phase: RolloutPhase, acked = 1): RolloutStatusJson {
  return {
    rollout: {
      id: "r-1",
      fleet: "web",
      candidate_version: 2,
      stable_version: 1,
      phase,
      stage: { index: 0, name: "canary", fleet_percent: 10, count: 2 },
      stages: [],
      bake: { required_ms: 60_000, done_ms: 1_000, remaining_ms: 59_000 },
      reason: null,
      created_by: "alice",
      created_at: "2026-11-26T04:00:00.000Z",
      updated_at: `2026-11-26T04:00:0${phase === "running" ? 1 : 2}.000Z`,
      finished_at: null,
      restore_version: null,
      plan: { stages: [], health_gates: [], burn_rate: null },
    },
    checks: [],
    traffic: null,
    agents: { total: 2, by_version: [{ version: 2, acked, pending: 2 - acked, nacked: 0 }] },
    events: [],
  };
}

/** A stand-in for the terminal or the pipe the watch writes to. */
function target(isTTY: boolean) {
  let text = "";
  return {
    isTTY,
    columns: 80,
    write(chunk: string) {
      text += chunk;
      return true;
    },
    text: () => text,
  };
}

/** Answers one status per call, the last one again once the list runs out. */
function answers(...list: Array<RolloutStatusJson | Error>) {
  let calls = 0;
  return {
    fetch: async () => {
      const next = list[Math.min(calls, list.length - 1)] as RolloutStatusJson | Error;
      calls += 1;
      if (next instanceof Error) throw next;
      return next;
    },
    calls: () => calls,
  };
}

const base = { intervalMs: 1, color: false, now: () => Date.parse("2026-11-26T04:01:00Z") };

describe("watchRollout", () => {
  it("redraws a terminal in place, hiding the cursor, and returns when the rollout finishes", async () => {
    const out = target(true);
    const source = answers(status("running"), status("running", 2), status("succeeded", 2));
    const last = await watchRollout({
      ...base,
      fetch: source.fetch,
      format: "text",
      out,
      err: target(false),
      signal: new AbortController().signal,
    });
    expect(last?.rollout.phase).toBe("succeeded");
    expect(source.calls()).toBe(3);
    const text = out.text();
    expect(text.startsWith("\x1b[?25l")).toBe(true);
    expect(text.endsWith("\x1b[?25h")).toBe(true);
    const frame = text.split("\x1b[J")[0] ?? "";
    const height = frame.split("\n").length - 1;
    // Every frame after the first starts by going back up over the one before it.
    expect(text.split(`\x1b[${height}A\r`).length - 1).toBe(2);
    expect(text).toContain("\x1b[2Kstage 1/2 canary");
  });

  it("gives the cursor back and returns what it saw when stopped", async () => {
    const out = target(true);
    const stop = new AbortController();
    const watching = watchRollout({
      ...base,
      intervalMs: 60_000,
      fetch: answers(status("running")).fetch,
      format: "text",
      out,
      err: target(false),
      signal: stop.signal,
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    stop.abort();
    const last = await watching;
    expect(last?.rollout.phase).toBe("running");
    expect(out.text().endsWith("\x1b[?25h")).toBe(true);
  });

  it("prints piped text only when something changed, each status whole, no escape codes", async () => {
    const out = target(false);
    const source = answers(status("running"), status("running"), status("running", 2), status("aborted", 2));
    await watchRollout({
      ...base,
      fetch: source.fetch,
      format: "text",
      out,
      err: target(false),
      signal: new AbortController().signal,
    });
    const shown = out.text().split(/^(?=rollout r-1 )/m);
    expect(shown).toHaveLength(3);
    expect(shown.every((frame) => frame.endsWith("\n\n"))).toBe(true);
    expect(shown[2]).toContain("v1 → v2  aborted");
    expect(out.text()).not.toContain("\x1b");
  });

  it("prints one JSON document per line and change with --output json, even on a terminal", async () => {
    const out = target(true);
    await watchRollout({
      ...base,
      fetch: answers(status("running"), status("running"), status("rolled_back")).fetch,
      format: "json",
      out,
      err: target(false),
      signal: new AbortController().signal,
    });
    const lines = out.text().trimEnd().split("\n");
    expect(lines.map((line) => JSON.parse(line).rollout.phase)).toEqual(["running", "rolled_back"]);
  });

  it("polls at once on a change hint instead of waiting out the interval, and unsubscribes at the end", async () => {
    const source = answers(status("running"), status("succeeded"));
    let hint: (() => void) | undefined;
    let unsubscribed = false;
    const started = Date.now();
    const watching = watchRollout({
      ...base,
      intervalMs: 60_000,
      fetch: source.fetch,
      format: "json",
      out: target(false),
      err: target(false),
      signal: new AbortController().signal,
      subscribe: (changed) => {
        hint = changed;
        return () => {
          unsubscribed = true;
        };
      },
    });
    while (source.calls() < 1) await new Promise((resolve) => setTimeout(resolve, 5));
    hint?.();
    expect((await watching)?.rollout.phase).toBe("succeeded");
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(unsubscribed).toBe(true);
  });

  it("retries an authority it cannot reach, saying so once, and gives up on an error answer", async () => {
    const out = target(false);
    const err = target(false);
    const unreachable = new CliError("cannot reach the authority at http://127.0.0.1:1");
    const last = await watchRollout({
      ...base,
      fetch: answers(unreachable, unreachable, status("succeeded")).fetch,
      format: "json",
      out,
      err,
      signal: new AbortController().signal,
    });
    expect(last?.rollout.phase).toBe("succeeded");
    expect(err.text()).toBe("coherentctl: cannot reach the authority at http://127.0.0.1:1; retrying\n");

    const tty = target(true);
    const refused = new ApiError("no rollout r-1 (unknown_rollout)", 404, "unknown_rollout", {});
    await expect(
      watchRollout({
        ...base,
        fetch: answers(status("running"), refused).fetch,
        format: "text",
        out: tty,
        err,
        signal: new AbortController().signal,
      }),
    ).rejects.toBe(refused);
    expect(tty.text().endsWith("\x1b[?25h")).toBe(true);
  });
});
