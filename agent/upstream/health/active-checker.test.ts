import { setTimeout as sleep } from "node:timers/promises";
import { Pool } from "undici";
import { afterEach, describe, expect, it, vi } from "vitest";
import { refusedAddress, startUpstream, type Upstream } from "../../../test/support/upstream.js";
import { ActiveChecker, type CheckResult, type Probe } from "./active-checker.js";
import { httpProbe } from "./http-probe.js";
import { type HealthChange, PoolHealth } from "./pool-health.js";
import type { ActiveSettings } from "./settings.js";

function active(overrides: Partial<ActiveSettings> = {}): ActiveSettings {
  return {
    intervalMs: 50,
    timeoutMs: 200,
    path: "/health",
    expectedStatus: { min: 200, max: 399 },
    jitterPercent: 10,
    healthyThreshold: 1,
    unhealthyThreshold: 2,
    ...overrides,
  };
}

async function until(condition: () => boolean, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(10);
  }
}

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function upstream(behaviour: Parameters<typeof startUpstream>[0] = {}): Promise<Upstream> {
  const started = await startUpstream(behaviour);
  cleanups.push(() => started.close());
  return started;
}

function dispatcherFor(origin: string): Pool {
  const pool = new Pool(origin);
  cleanups.push(() => pool.destroy());
  return pool;
}

function probeOf(target: Upstream, path = "/health"): Probe {
  return httpProbe(dispatcherFor(target.url), target.url, path);
}

function collectingChecker(settings: ActiveSettings): { checker: ActiveChecker; results: CheckResult[] } {
  const results: CheckResult[] = [];
  const checker = new ActiveChecker(settings, (_address, result) => results.push(result));
  cleanups.push(() => checker.close());
  return { checker, results };
}

describe("active checks against real upstreams", () => {
  it("turn a 503 endpoint unhealthy after unhealthy_threshold probes and back once it recovers", async () => {
    const failing = await upstream({ status: 503 });
    const steady = await upstream();
    const changes: HealthChange[] = [];
    let requestsAtChange = 0;
    const targets = [failing, steady];
    const pool = new PoolHealth(
      "p",
      targets.map((t) => t.address),
      { active: active(), passive: undefined, outlier: undefined },
      (index) => probeOf(targets[index]!),
      {
        listener: (change) => {
          changes.push(change);
          requestsAtChange = failing.requests.length;
        },
      },
    );
    cleanups.push(() => pool.close());
    expect(pool.healthyCount()).toBe(2);

    await until(() => !pool.isAvailable(0));
    expect(requestsAtChange).toBe(2);
    expect(changes[0]).toMatchObject({
      address: failing.address,
      from: "healthy",
      to: "unhealthy",
      reason: "active check failed: status 503 (expected 200-399), 2 in a row",
    });
    expect(failing.requests.every((r) => r.method === "GET" && r.path === "/health")).toBe(true);
    expect(pool.isAvailable(1)).toBe(true);

    failing.setBehaviour({});
    await until(() => pool.isAvailable(0));
    expect(changes.map((c) => c.to)).toEqual(["unhealthy", "healthy"]);
    expect(pool.describe()[0]?.reason).toBe("in rotation: active check passed: status 200");
  });

  it("time out a hanging endpoint without stacking probes on it", async () => {
    const hanging = await upstream({ hang: true });
    const { checker, results } = collectingChecker(active({ timeoutMs: 250, jitterPercent: 0 }));
    checker.sync(new Map([[hanging.address, probeOf(hanging)]]));
    await until(() => results.length > 0);
    expect(results[0]).toEqual({ ok: false, detail: "timeout after 250 ms" });
    await sleep(400);
    // One probe every 50 ms would be a dozen; a probe still running skips its turns instead.
    expect(hanging.requests.length).toBeLessThanOrEqual(4);
    expect(results.every((r) => r.detail === "timeout after 250 ms")).toBe(true);
  });

  it("report a refused connection", async () => {
    const address = await refusedAddress();
    const origin = `http://${address}`;
    const { checker, results } = collectingChecker(active());
    checker.sync(new Map([[address, httpProbe(dispatcherFor(origin), origin, "/health")]]));
    await until(() => results.length > 0);
    expect(results[0]).toEqual({ ok: false, detail: "connection refused" });
  });

  it("read each answer to its end, so probes reuse one connection", async () => {
    const target = await upstream({ body: "x".repeat(10_000) });
    const { checker, results } = collectingChecker(active());
    checker.sync(new Map([[target.address, probeOf(target, "/ready")]]));
    await until(() => results.length >= 3);
    expect(results.slice(0, 3)).toEqual([
      { ok: true, detail: "status 200" },
      { ok: true, detail: "status 200" },
      { ok: true, detail: "status 200" },
    ]);
    expect(target.requests.map((r) => r.path).slice(0, 3)).toEqual(["/ready", "/ready", "/ready"]);
    expect(target.connections).toBe(1);
  });

  it("stop on close, dropping the answer of a probe in flight", async () => {
    const target = await upstream({ delayMs: 100 });
    const { checker, results } = collectingChecker(active({ timeoutMs: 500 }));
    checker.sync(new Map([[target.address, probeOf(target)]]));
    await target.waitForRequests(1);
    checker.close();
    await sleep(250);
    expect(results).toEqual([]);
    expect(target.requests.length).toBe(1);
  });

  it("stop probing an endpoint that leaves the pool", async () => {
    const leaving = await upstream();
    const staying = await upstream();
    const { checker } = collectingChecker(active());
    checker.sync(
      new Map([
        [leaving.address, probeOf(leaving)],
        [staying.address, probeOf(staying)],
      ]),
    );
    await leaving.waitForRequests(1);
    checker.sync(new Map([[staying.address, probeOf(staying)]]));
    const seen = leaving.requests.length;
    const before = staying.requests.length;
    await sleep(200);
    expect(leaving.requests.length).toBe(seen);
    expect(staying.requests.length).toBeGreaterThan(before);
  });
});

describe("the probe schedule of the checker", () => {
  it("starts each endpoint at its own random offset, then every jittered interval", async () => {
    vi.useFakeTimers();
    const started: number[] = [];
    const probe: Probe = async () => {
      started.push(Date.now());
      return 200;
    };
    const draws = [0.5, 0.25, 1 - 1e-9];
    let draw = 0;
    const t0 = Date.now();
    const checker = new ActiveChecker(
      active({ intervalMs: 1_000, jitterPercent: 20 }),
      () => {},
      () => draws[draw++ % draws.length]!,
    );
    cleanups.push(() => checker.close());
    checker.sync(new Map([["a:1", probe]]));
    await vi.advanceTimersByTimeAsync(499);
    expect(started).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    // first at 0.5 × interval; next after interval × (1 + (2 × 0.25 − 1) × 20%) = 900 ms.
    await vi.advanceTimersByTimeAsync(900);
    expect(started.map((t) => t - t0)).toEqual([500, 1_400]);
  });

  it("restarts the schedules when the interval changes", async () => {
    vi.useFakeTimers();
    let probes = 0;
    const probe: Probe = async () => {
      probes++;
      return 200;
    };
    const checker = new ActiveChecker(
      active({ intervalMs: 60_000 }),
      () => {},
      () => 0.5,
    );
    cleanups.push(() => checker.close());
    checker.sync(new Map([["a:1", probe]]));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(probes).toBe(0);
    checker.settings = active({ intervalMs: 1_000 });
    await vi.advanceTimersByTimeAsync(500);
    expect(probes).toBe(1);
  });

  it("turns a probe's status outside the expected range into a failure", async () => {
    vi.useFakeTimers();
    const { checker, results } = collectingChecker(active({ expectedStatus: { min: 204, max: 204 } }));
    checker.sync(new Map([["a:1", async () => 200]]));
    await vi.advanceTimersByTimeAsync(50);
    expect(results[0]).toEqual({ ok: false, detail: "status 200 (expected 204)" });
  });
});
