import { afterEach, describe, expect, it, vi } from "vitest";
import type { Probe } from "./active-checker.js";
import { HealthRegistry } from "./health-registry.js";
import type { HealthSettings } from "./settings.js";

const PASSIVE: HealthSettings = {
  active: undefined,
  passive: { consecutiveFailures: 1, ejectionMs: 30_000 },
  outlier: undefined,
};

const ACTIVE: HealthSettings = {
  active: {
    intervalMs: 1_000,
    timeoutMs: 500,
    path: "/health",
    expectedStatus: { min: 200, max: 399 },
    jitterPercent: 0,
    healthyThreshold: 1,
    unhealthyThreshold: 1,
  },
  passive: undefined,
  outlier: undefined,
};

const noProbe = (): undefined => undefined;

afterEach(() => {
  vi.useRealTimers();
});

describe("HealthRegistry", () => {
  it("returns the same pool health for a pool id across swaps, with its endpoints' state", () => {
    const registry = new HealthRegistry({ now: () => 1_000 });
    const first = registry.healthFor("api", ["a:1", "b:1"], PASSIVE, noProbe);
    first.report(1, false);
    const second = registry.healthFor("api", ["b:1"], PASSIVE, noProbe);
    expect(second).toBe(first);
    expect(second.total).toBe(1);
    expect(second.isAvailable(0)).toBe(false);
    expect(registry.get("api")).toBe(first);
  });

  it("keeps only the retained pools and stops the checks of the others", async () => {
    vi.useFakeTimers();
    const probed: string[] = [];
    const probeFor = (pool: string) => (): Probe => async () => {
      probed.push(pool);
      return 200;
    };
    const registry = new HealthRegistry({ random: () => 0 });
    registry.healthFor("kept", ["a:1"], ACTIVE, probeFor("kept"));
    registry.healthFor("dropped", ["a:1"], ACTIVE, probeFor("dropped"));
    await vi.advanceTimersByTimeAsync(0);
    expect(probed.sort()).toEqual(["dropped", "kept"]);

    registry.retain(["kept"]);
    probed.length = 0;
    await vi.advanceTimersByTimeAsync(3_000);
    expect(probed).toEqual(["kept", "kept", "kept"]);
    expect(registry.list().map((pool) => pool.id)).toEqual(["kept"]);
    expect(registry.get("dropped")).toBeUndefined();

    registry.close();
    probed.length = 0;
    await vi.advanceTimersByTimeAsync(3_000);
    expect(probed).toEqual([]);
    expect(registry.list()).toEqual([]);
  });

  it("tells its listener the pool of every change", () => {
    const pools: string[] = [];
    const registry = new HealthRegistry({ now: () => 1_000, listener: (change) => pools.push(change.pool) });
    registry.healthFor("one", ["a:1"], PASSIVE, noProbe).report(0, false);
    registry.healthFor("two", ["a:1"], PASSIVE, noProbe).report(0, false);
    expect(pools).toEqual(["one", "two"]);
  });
});
