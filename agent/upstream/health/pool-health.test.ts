import { afterEach, describe, expect, it, vi } from "vitest";
import type { Probe } from "./active-checker.js";
import { type HealthChange, PoolHealth } from "./pool-health.js";
import type { ActiveSettings, HealthSettings, OutlierSettings } from "./settings.js";

const NOON = Date.UTC(2025, 0, 1, 12, 0, 0);

function fakeClock(start = NOON) {
  let t = start;
  return {
    now: () => t,
    advance(ms: number) {
      t += ms;
    },
  };
}

function settings(parts: Partial<HealthSettings>): HealthSettings {
  return { active: undefined, passive: undefined, outlier: undefined, ...parts };
}

function outlier(overrides: Partial<OutlierSettings> = {}): OutlierSettings {
  return {
    consecutiveFailures: 5,
    errorRatePercent: undefined,
    maxEjectionPercent: 10,
    intervalMs: 10_000,
    baseEjectionMs: 30_000,
    minRequests: 20,
    ...overrides,
  };
}

const PASSIVE = { consecutiveFailures: 5, ejectionMs: 30_000 };

function addresses(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `10.0.0.${i + 1}:8000`);
}

function fail(pool: PoolHealth, index: number, times: number): void {
  for (let i = 0; i < times; i++) pool.report(index, false);
}

function available(pool: PoolHealth): boolean[] {
  return Array.from({ length: pool.total }, (_, i) => pool.isAvailable(i));
}

describe("PoolHealth without health settings", () => {
  it("keeps every endpoint in rotation and says why", () => {
    const pool = new PoolHealth("p", addresses(2), settings({}));
    fail(pool, 0, 100);
    expect(available(pool)).toEqual([true, true]);
    expect(pool.healthyCount()).toBe(2);
    expect(pool.describe()[0]).toMatchObject({
      address: "10.0.0.1:8000",
      healthy: true,
      state: "healthy",
      reason: "in rotation: no health checks configured",
      consecutive_failures: 100,
      ejected_until: null,
    });
  });

  it("answers false for an index outside the pool", () => {
    const pool = new PoolHealth("p", addresses(1), settings({}));
    expect(pool.isAvailable(1)).toBe(false);
    expect(pool.isAvailable(-1)).toBe(false);
  });
});

describe("passive health", () => {
  it("ejects an endpoint after consecutive failures until the ejection duration has passed", () => {
    const clock = fakeClock();
    const pool = new PoolHealth("p", addresses(2), settings({ passive: PASSIVE }), undefined, clock);
    fail(pool, 0, 4);
    expect(pool.isAvailable(0)).toBe(true);
    pool.report(0, false);
    expect(available(pool)).toEqual([false, true]);
    expect(pool.describe()[0]).toMatchObject({
      healthy: false,
      state: "ejected",
      reason: "ejected: 5 consecutive failures, until 12:00:30Z",
      ejected_until: "2025-01-01T12:00:30.000Z",
    });
    clock.advance(29_999);
    expect(pool.isAvailable(0)).toBe(false);
    clock.advance(1);
    expect(pool.isAvailable(0)).toBe(true);
    expect(pool.describe()[0]?.state).toBe("healthy");
  });

  it("starts the count over after a success", () => {
    const pool = new PoolHealth("p", addresses(1), settings({ passive: PASSIVE }), undefined, fakeClock());
    fail(pool, 0, 4);
    pool.report(0, true);
    fail(pool, 0, 4);
    expect(pool.isAvailable(0)).toBe(true);
    pool.report(0, false);
    expect(pool.isAvailable(0)).toBe(false);
  });

  it("does not extend an ejection with failures of requests already in flight", () => {
    const clock = fakeClock();
    const pool = new PoolHealth("p", addresses(1), settings({ passive: PASSIVE }), undefined, clock);
    fail(pool, 0, 5);
    clock.advance(10_000);
    fail(pool, 0, 10);
    clock.advance(20_000);
    expect(pool.isAvailable(0)).toBe(true);
  });
});

describe("outlier detection", () => {
  it("ejects for base × ejections in a row, so a flapping endpoint stays out longer", () => {
    const clock = fakeClock();
    const pool = new PoolHealth("p", addresses(3), settings({ outlier: outlier() }), undefined, clock);
    const ejectionLength = (): number => {
      fail(pool, 0, 5);
      const start = clock.now();
      while (!pool.isAvailable(0)) clock.advance(1_000);
      return clock.now() - start;
    };
    expect(ejectionLength()).toBe(30_000);
    expect(ejectionLength()).toBe(60_000);
    fail(pool, 0, 5);
    expect(pool.describe()[0]).toMatchObject({
      state: "ejected",
      ejections: 3,
      reason: expect.stringContaining("outlier: 5 consecutive failures, ejection 3 in a row for 90 s"),
    });
  });

  it("forgives one ejection per interval the endpoint stays back in rotation", () => {
    const clock = fakeClock();
    const pool = new PoolHealth("p", addresses(3), settings({ outlier: outlier() }), undefined, clock);
    fail(pool, 0, 5);
    clock.advance(30_000);
    fail(pool, 0, 5);
    clock.advance(60_000);
    expect(pool.describe()[0]?.ejections).toBe(2);
    clock.advance(10_000);
    expect(pool.describe()[0]?.ejections).toBe(1);
    clock.advance(10_000);
    expect(pool.describe()[0]?.ejections).toBe(0);
    fail(pool, 0, 5);
    clock.advance(30_000);
    expect(pool.isAvailable(0)).toBe(true);
  });

  it("never ejects more than max_ejection_percent of the pool", () => {
    const clock = fakeClock();
    const pool = new PoolHealth("p", addresses(10), settings({ outlier: outlier() }), undefined, clock);
    for (let i = 0; i < 10; i++) fail(pool, i, 5);
    expect(pool.healthyCount()).toBe(9);
    expect(pool.isAvailable(0)).toBe(false);
    // Once the first ejection ends, the next failing endpoint may take its place.
    clock.advance(30_000);
    pool.report(1, false);
    expect(available(pool).slice(0, 3)).toEqual([true, false, true]);
  });

  it("may always eject one endpoint, however small the pool", () => {
    const pool = new PoolHealth("p", addresses(3), settings({ outlier: outlier() }), undefined, fakeClock());
    fail(pool, 0, 5);
    fail(pool, 1, 5);
    expect(available(pool)).toEqual([false, true, true]);
  });

  it("ejects up to the share the cap allows", () => {
    const pool = new PoolHealth(
      "p",
      addresses(4),
      settings({ outlier: outlier({ maxEjectionPercent: 50 }) }),
      undefined,
      fakeClock(),
    );
    for (let i = 0; i < 4; i++) fail(pool, i, 5);
    expect(available(pool)).toEqual([false, false, true, true]);
  });

  it("ejects endpoints whose error rate over an interval reaches the threshold", () => {
    const clock = fakeClock();
    const pool = new PoolHealth(
      "p",
      addresses(5),
      settings({ outlier: outlier({ errorRatePercent: 50, maxEjectionPercent: 100 }) }),
      undefined,
      clock,
    );
    const traffic = (index: number, requests: number, failures: number): void => {
      // Failures spread out, so the consecutive-failures rule stays out of it.
      for (let i = 0; i < requests; i++) pool.report(index, i % Math.ceil(requests / failures) !== 0);
    };
    traffic(0, 20, 10); // 50%: ejected
    traffic(1, 19, 10); // over 50%, but under min_requests
    traffic(2, 20, 4); // 20%
    expect(pool.healthyCount()).toBe(5);
    clock.advance(10_000);
    pool.report(4, true);
    expect(available(pool)).toEqual([false, true, true, true, true]);
    expect(pool.describe()[0]?.reason).toBe(
      "ejected: outlier: error rate 50% (10 of 20 requests, threshold 50%), ejection 1 in a row for 30 s, until 12:00:40Z",
    );
  });

  it("judges each interval on its own", () => {
    const clock = fakeClock();
    const pool = new PoolHealth(
      "p",
      addresses(2),
      settings({ outlier: outlier({ errorRatePercent: 50 }) }),
      undefined,
      clock,
    );
    for (let i = 0; i < 10; i++) pool.report(0, i % 2 === 0);
    clock.advance(10_000);
    for (let i = 0; i < 10; i++) pool.report(0, i % 2 === 0);
    clock.advance(10_000);
    pool.report(1, true);
    expect(pool.isAvailable(0)).toBe(true);
  });

  it("does not judge error rates unless a threshold is set", () => {
    const clock = fakeClock();
    const pool = new PoolHealth("p", addresses(2), settings({ outlier: outlier() }), undefined, clock);
    for (let i = 0; i < 100; i++) pool.report(0, i % 2 === 0);
    clock.advance(10_000);
    pool.report(0, true);
    expect(pool.isAvailable(0)).toBe(true);
  });
});

describe("the fail-open trickle", () => {
  it("lets one request a second through, rotating over the endpoints", () => {
    const clock = fakeClock();
    const pool = new PoolHealth("p", addresses(3), settings({ passive: PASSIVE }), undefined, clock);
    for (let i = 0; i < 3; i++) fail(pool, i, 5);
    expect(pool.healthyCount()).toBe(0);
    const picks: number[] = [];
    for (let tick = 0; tick < 8; tick++) {
      picks.push(pool.trickle(), pool.trickle());
      clock.advance(500);
    }
    expect(picks).toEqual([0, -1, -1, -1, 1, -1, -1, -1, 2, -1, -1, -1, 0, -1, -1, -1]);
  });

  it("has nothing to offer in an empty pool", () => {
    expect(new PoolHealth("p", [], settings({})).trickle()).toBe(-1);
  });
});

describe("config swaps", () => {
  it("keeps the state of endpoints that stay, by address, and starts new ones healthy", () => {
    const clock = fakeClock();
    const [a, b, c] = addresses(3) as [string, string, string];
    const pool = new PoolHealth("p", [a, b], settings({ passive: PASSIVE }), undefined, clock);
    fail(pool, 1, 5);
    fail(pool, 0, 3);
    pool.update([c, b], settings({ passive: { consecutiveFailures: 5, ejectionMs: 60_000 } }));
    expect(pool.total).toBe(2);
    expect(available(pool)).toEqual([true, false]);
    expect(pool.describe().map((e) => e.address)).toEqual([c, b]);
    // The ejection in force keeps its end; the new duration applies to the next one.
    clock.advance(30_000);
    expect(pool.isAvailable(1)).toBe(true);
    fail(pool, 1, 5);
    clock.advance(59_999);
    expect(pool.isAvailable(1)).toBe(false);
  });

  it("lifts the ejections of a mechanism the new config turns off", () => {
    const changes: HealthChange[] = [];
    const pool = new PoolHealth("p", addresses(1), settings({ passive: PASSIVE }), undefined, {
      now: fakeClock().now,
      listener: (change) => changes.push(change),
    });
    fail(pool, 0, 5);
    pool.update(addresses(1), settings({}));
    expect(pool.isAvailable(0)).toBe(true);
    expect(changes.at(-1)).toMatchObject({
      from: "ejected",
      to: "healthy",
      reason: "config changed: ejection ended (5 consecutive failures)",
    });
  });
});

describe("the state-change listener", () => {
  it("hears ejections at once and their end when next looked at", () => {
    const clock = fakeClock();
    const changes: HealthChange[] = [];
    const pool = new PoolHealth("pool-1", addresses(2), settings({ passive: PASSIVE }), undefined, {
      now: clock.now,
      listener: (change) => changes.push(change),
    });
    fail(pool, 1, 5);
    expect(changes).toEqual([
      {
        pool: "pool-1",
        address: "10.0.0.2:8000",
        from: "healthy",
        to: "ejected",
        reason: "ejected: 5 consecutive failures, until 12:00:30Z",
      },
    ]);
    clock.advance(30_000);
    pool.healthyCount();
    pool.healthyCount();
    expect(changes.slice(1)).toEqual([
      {
        pool: "pool-1",
        address: "10.0.0.2:8000",
        from: "ejected",
        to: "healthy",
        reason: "ejection ended (5 consecutive failures)",
      },
    ]);
  });
});

describe("active checks", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  const ACTIVE: ActiveSettings = {
    intervalMs: 1_000,
    timeoutMs: 500,
    path: "/health",
    expectedStatus: { min: 200, max: 399 },
    jitterPercent: 0,
    healthyThreshold: 2,
    unhealthyThreshold: 2,
  };

  it("flips an endpoint after the thresholds of checks in a row, and says why", async () => {
    vi.useFakeTimers({ now: NOON });
    let status = 200;
    const probe: Probe = async () => status;
    const changes: HealthChange[] = [];
    const pool = new PoolHealth("p", addresses(1), settings({ active: ACTIVE }), () => probe, {
      random: () => 0,
      listener: (change) => changes.push(change),
    });
    expect(pool.describe()[0]?.reason).toBe("in rotation: first active check pending");
    await vi.advanceTimersByTimeAsync(0);
    expect(pool.describe()[0]).toMatchObject({
      reason: "in rotation: active check passed: status 200",
      last_check: "2025-01-01T12:00:00.000Z",
    });

    status = 503;
    await vi.advanceTimersByTimeAsync(1_000);
    expect(pool.isAvailable(0)).toBe(true);
    expect(pool.describe()[0]?.reason).toBe(
      "in rotation: active check failed: status 503 (expected 200-399), 1 of 2 in a row",
    );
    await vi.advanceTimersByTimeAsync(1_000);
    expect(pool.isAvailable(0)).toBe(false);
    expect(pool.describe()[0]).toMatchObject({
      state: "unhealthy",
      reason: "active check failed: status 503 (expected 200-399), 2 in a row",
    });

    status = 200;
    await vi.advanceTimersByTimeAsync(1_000);
    expect(pool.isAvailable(0)).toBe(false);
    expect(pool.describe()[0]?.reason).toBe(
      "recovering: active check passed (status 200), 1 of 2 in a row needed",
    );
    await vi.advanceTimersByTimeAsync(1_000);
    expect(pool.isAvailable(0)).toBe(true);
    expect(changes.map((c) => `${c.from}->${c.to}`)).toEqual(["healthy->unhealthy", "unhealthy->healthy"]);
    pool.close();
  });

  it("forgets the active verdict when the config drops active checks, and stops probing", async () => {
    vi.useFakeTimers({ now: NOON });
    let probes = 0;
    const probe: Probe = async () => {
      probes++;
      return 500;
    };
    const pool = new PoolHealth("p", addresses(1), settings({ active: ACTIVE }), () => probe, {
      random: () => 0,
    });
    await vi.advanceTimersByTimeAsync(1_000);
    expect(pool.isAvailable(0)).toBe(false);
    pool.update(addresses(1), settings({}));
    expect(pool.isAvailable(0)).toBe(true);
    const before = probes;
    await vi.advanceTimersByTimeAsync(5_000);
    expect(probes).toBe(before);
  });
});
