import { describe, expect, it } from "vitest";
import {
  BREAKER_DEFAULTS,
  BreakerRegistry,
  type BreakerSettings,
  type BreakerState,
  breakerSettings,
  CircuitBreaker,
} from "./circuit-breaker.js";

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

const SETTINGS: BreakerSettings = {
  ...BREAKER_DEFAULTS,
  minRequests: 10,
  openDurationMs: 5_000,
  halfOpenRequests: 2,
};

function setup(settings: BreakerSettings = SETTINGS) {
  const c = clock();
  const transitions: [BreakerState, BreakerState, string][] = [];
  const breaker = new CircuitBreaker(settings, c.now, (from, to, reason) =>
    transitions.push([from, to, reason]),
  );
  /** Runs n requests to completion, `failures` of them failing first. */
  const run = (n: number, failures: number) => {
    for (let i = 0; i < n; i++) {
      expect(breaker.admit(0)).toBe("ok");
      breaker.done(i >= failures);
    }
  };
  return { clock: c, transitions, breaker, run };
}

function tripped() {
  const s = setup();
  s.run(10, 5);
  expect(s.breaker.state).toBe("open");
  return s;
}

describe("breakerSettings", () => {
  it("applies the defaults to an empty config", () => {
    expect(breakerSettings({})).toEqual(BREAKER_DEFAULTS);
    expect(BREAKER_DEFAULTS).toMatchObject({
      errorThresholdPercent: 50,
      minRequests: 20,
      openDurationMs: 30_000,
      windowMs: 10_000,
      halfOpenRequests: 3,
      maxConcurrentRequests: Number.POSITIVE_INFINITY,
      maxPendingRequests: Number.POSITIVE_INFINITY,
    });
  });

  it("takes every configured field", () => {
    expect(
      breakerSettings({
        error_threshold_percent: 25,
        min_requests: 5,
        open_duration: 1_000,
        window: 2_000,
        half_open_requests: 1,
        max_concurrent_requests: 7,
        max_pending_requests: 0,
      }),
    ).toEqual({
      errorThresholdPercent: 25,
      minRequests: 5,
      openDurationMs: 1_000,
      windowMs: 2_000,
      halfOpenRequests: 1,
      maxConcurrentRequests: 7,
      maxPendingRequests: 0,
    });
  });
});

describe("CircuitBreaker", () => {
  it("stays closed below min_requests however many fail", () => {
    const { breaker, run } = setup();
    run(9, 9);
    expect(breaker.state).toBe("closed");
    expect(breaker.errorPercent()).toBe(100);
  });

  it("stays closed below the error threshold", () => {
    const { breaker, run } = setup();
    run(51, 0);
    run(49, 49);
    expect(breaker.errorPercent()).toBe(49);
    expect(breaker.state).toBe("closed");
    expect(breaker.trips).toBe(0);
  });

  it("trips open at the threshold once min_requests ended, and says why", () => {
    const { breaker, run, transitions } = setup();
    run(10, 0);
    run(9, 9);
    expect(breaker.state).toBe("closed");
    run(1, 1);
    expect(breaker.state).toBe("open");
    expect(breaker.trips).toBe(1);
    expect(transitions).toEqual([["closed", "open", "error rate 50% >= 50% over 10s (20 requests)"]]);
  });

  it("does not trip when the failures are older than the window", () => {
    const { breaker, run, clock } = setup();
    run(8, 8);
    clock.advance(10_000);
    run(10, 4);
    expect(breaker.state).toBe("closed");
    expect(breaker.errorPercent()).toBe(40);
  });

  it("does not trip at a 0% threshold without a failure", () => {
    const { breaker, run } = setup({ ...SETTINGS, errorThresholdPercent: 0 });
    run(50, 0);
    expect(breaker.state).toBe("closed");
    run(1, 1);
    expect(breaker.state).toBe("open");
  });

  it("refuses every request while open", () => {
    const { breaker, clock } = tripped();
    expect(breaker.admit(0)).toBe("open");
    clock.advance(4_999);
    expect(breaker.admit(0)).toBe("open");
    expect(breaker.state).toBe("open");
    expect(breaker.inFlight).toBe(0);
  });

  it("turns half-open on the first request after open_duration and lets half_open_requests probes through", () => {
    const { breaker, clock, transitions } = tripped();
    clock.advance(5_000);
    expect(breaker.state).toBe("open");
    expect(breaker.admit(0)).toBe("ok");
    expect(breaker.state).toBe("half_open");
    expect(breaker.admit(0)).toBe("ok");
    expect(breaker.admit(0)).toBe("open");
    expect(breaker.inFlight).toBe(2);
    expect(transitions[1]).toEqual(["open", "half_open", "open for 5s"]);
  });

  it("closes with a fresh window when every probe succeeds", () => {
    const { breaker, clock, transitions, run } = tripped();
    clock.advance(5_000);
    breaker.admit(0);
    breaker.admit(0);
    breaker.done(true);
    expect(breaker.state).toBe("half_open");
    breaker.done(true);
    expect(breaker.state).toBe("closed");
    expect(transitions[2]).toEqual(["half_open", "closed", "2 probes succeeded"]);
    expect(breaker.errorPercent()).toBe(0);
    // The failures before the trip no longer count: 4 of 10 stays under the threshold.
    run(10, 4);
    expect(breaker.state).toBe("closed");
  });

  it("opens again when a probe fails, counting a trip and restarting open_duration", () => {
    const { breaker, clock, transitions } = tripped();
    clock.advance(5_000);
    breaker.admit(0);
    breaker.admit(0);
    breaker.done(true);
    breaker.done(false);
    expect(breaker.state).toBe("open");
    expect(breaker.trips).toBe(2);
    expect(transitions[2]).toEqual(["half_open", "open", "probe failed after 1 of 2 succeeded"]);
    clock.advance(4_999);
    expect(breaker.admit(0)).toBe("open");
    clock.advance(1);
    expect(breaker.admit(0)).toBe("ok");
    expect(breaker.state).toBe("half_open");
  });

  it("ignores outcomes of requests that end while it is open", () => {
    const { breaker, run } = setup();
    expect(breaker.admit(0)).toBe("ok");
    run(10, 5);
    expect(breaker.state).toBe("open");
    breaker.done(true);
    expect(breaker.state).toBe("open");
    expect(breaker.inFlight).toBe(0);
  });

  it("refuses max_pending when the pending count reaches the limit", () => {
    const { breaker } = setup({ ...SETTINGS, maxPendingRequests: 2 });
    expect(breaker.admit(1)).toBe("ok");
    expect(breaker.admit(2)).toBe("max_pending");
    expect(breaker.inFlight).toBe(1);
  });

  it("refuses any pending request with max_pending_requests 0", () => {
    const { breaker } = setup({ ...SETTINGS, maxPendingRequests: 0 });
    expect(breaker.admit(0)).toBe("max_pending");
  });

  it("refuses max_concurrent while the in-flight limit is reached, and admits again after done", () => {
    const { breaker } = setup({ ...SETTINGS, maxConcurrentRequests: 2 });
    expect(breaker.admit(0)).toBe("ok");
    expect(breaker.admit(0)).toBe("ok");
    expect(breaker.admit(0)).toBe("max_concurrent");
    breaker.done(true);
    expect(breaker.admit(0)).toBe("ok");
  });

  it("does not count a probe refused for concurrency", () => {
    const s = setup({ ...SETTINGS, maxConcurrentRequests: 1 });
    s.run(10, 5);
    s.clock.advance(5_000);
    expect(s.breaker.admit(0)).toBe("ok");
    expect(s.breaker.admit(0)).toBe("max_concurrent");
    s.breaker.done(true);
    expect(s.breaker.admit(0)).toBe("ok");
    s.breaker.done(true);
    expect(s.breaker.state).toBe("closed");
  });

  it("gives an abandoned admission back without recording it, probe slot included", () => {
    const s = tripped();
    s.clock.advance(5_000);
    expect(s.breaker.admit(0)).toBe("ok");
    expect(s.breaker.admit(0)).toBe("ok");
    expect(s.breaker.admit(0)).toBe("open");
    s.breaker.abandon();
    expect(s.breaker.inFlight).toBe(1);
    expect(s.breaker.admit(0)).toBe("ok");
    expect(s.breaker.state).toBe("half_open");
  });

  it("keeps its state and counts across an update", () => {
    const { breaker, run } = setup();
    run(10, 4);
    breaker.update({ ...SETTINGS, errorThresholdPercent: 40, minRequests: 11 });
    expect(breaker.errorPercent()).toBe(40);
    run(1, 0);
    expect(breaker.state).toBe("closed");
    run(1, 1);
    expect(breaker.state).toBe("open");
    breaker.update(SETTINGS);
    expect(breaker.state).toBe("open");
    expect(breaker.trips).toBe(1);
  });
});

describe("BreakerRegistry", () => {
  it("returns the same breaker for a key, with the new settings", () => {
    const registry = new BreakerRegistry();
    const a = registry.breakerFor("pool:a", SETTINGS);
    const again = registry.breakerFor("pool:a", { ...SETTINGS, maxConcurrentRequests: 1 });
    expect(again).toBe(a);
    expect(a.admit(0)).toBe("ok");
    expect(a.admit(0)).toBe("max_concurrent");
  });

  it("reports transitions with the breaker's key", () => {
    const c = clock();
    const seen: string[] = [];
    const registry = new BreakerRegistry((key, from, to) => seen.push(`${key} ${from}->${to}`), c.now);
    const b = registry.breakerFor("route:r", SETTINGS);
    for (let i = 0; i < 10; i++) {
      b.admit(0);
      b.done(false);
    }
    expect(seen).toEqual(["route:r closed->open"]);
  });

  it("lists every breaker's status and drops those not retained", () => {
    const c = clock();
    const registry = new BreakerRegistry(undefined, c.now);
    const a = registry.breakerFor("pool:a", SETTINGS);
    registry.breakerFor("pool:b", SETTINGS);
    a.admit(0);
    a.done(false);
    a.admit(0);
    expect(registry.list()).toEqual([
      { key: "pool:a", state: "closed", trips: 0, inFlight: 1, errorPercent: 100 },
      { key: "pool:b", state: "closed", trips: 0, inFlight: 0, errorPercent: 0 },
    ]);
    registry.retain(new Set(["pool:b"]));
    expect(registry.list().map((s) => s.key)).toEqual(["pool:b"]);
    expect(registry.breakerFor("pool:a", SETTINGS)).not.toBe(a);
  });
});
