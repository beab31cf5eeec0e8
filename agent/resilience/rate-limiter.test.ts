import { describe, expect, it } from "vitest";
import {
  RateLimiter,
  RateLimiterRegistry,
  type RateLimitSettings,
  rateLimitSettings,
} from "./rate-limiter.js";

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

const TEN: RateLimitSettings = { requestsPerSecond: 10, burst: 5, key: undefined };

/** How many of n requests at this instant are allowed. */
function allowed(limiter: RateLimiter, n: number, key?: string): number {
  let count = 0;
  for (let i = 0; i < n; i++) if (limiter.take(key) === 0) count++;
  return count;
}

describe("rateLimitSettings", () => {
  it("defaults the burst to the rate rounded up", () => {
    expect(rateLimitSettings({ requests_per_second: 2.5 }, 1)).toEqual({
      requestsPerSecond: 2.5,
      burst: 3,
      key: undefined,
    });
  });

  it("gives each worker its share of the rate and the burst rounded up", () => {
    expect(rateLimitSettings({ requests_per_second: 100, burst: 25, key: "client_ip" }, 4)).toEqual({
      requestsPerSecond: 25,
      burst: 7,
      key: "client_ip",
    });
    expect(rateLimitSettings({ requests_per_second: 1 }, 8)).toEqual({
      requestsPerSecond: 0.125,
      burst: 1,
      key: undefined,
    });
  });
});

describe("RateLimiter", () => {
  it("allows the burst at once, then refills at the rate", () => {
    const c = clock();
    const limiter = new RateLimiter(TEN, c.now);
    expect(allowed(limiter, 20)).toBe(5);
    c.advance(99);
    expect(allowed(limiter, 1)).toBe(0);
    c.advance(1);
    expect(allowed(limiter, 5)).toBe(1);
    c.advance(1_000);
    expect(allowed(limiter, 20)).toBe(5);
  });

  it("sustains exactly the rate under steady pressure", () => {
    const c = clock();
    const limiter = new RateLimiter(TEN, c.now);
    let total = 0;
    for (let ms = 0; ms <= 10_000; ms += 10) {
      total += allowed(limiter, 3);
      c.advance(10);
    }
    // The burst at 0 ms, then one token every 100 ms up to 10 000 ms included.
    expect(total).toBe(5 + 100);
  });

  it("does not let refused requests use up tokens", () => {
    const c = clock();
    const limiter = new RateLimiter({ ...TEN, burst: 1 }, c.now);
    expect(limiter.take(undefined)).toBe(0);
    for (let i = 0; i < 100; i++) expect(limiter.take(undefined)).toBeGreaterThan(0);
    c.advance(100);
    expect(limiter.take(undefined)).toBe(0);
  });

  it("answers the whole seconds until the next token, at least 1", () => {
    const c = clock();
    const slow = new RateLimiter({ requestsPerSecond: 0.1, burst: 2, key: undefined }, c.now);
    expect(allowed(slow, 2)).toBe(2);
    expect(slow.take(undefined)).toBe(10);
    c.advance(500);
    expect(slow.take(undefined)).toBe(10);
    c.advance(500);
    expect(slow.take(undefined)).toBe(9);
    c.advance(8_999);
    expect(slow.take(undefined)).toBe(1);
    const fast = new RateLimiter({ requestsPerSecond: 1_000, burst: 1, key: undefined }, c.now);
    fast.take(undefined);
    expect(fast.take(undefined)).toBe(1);
  });

  it("keeps one bucket per key, apart from the route's", () => {
    const c = clock();
    const limiter = new RateLimiter({ ...TEN, key: "client_ip" }, c.now);
    expect(allowed(limiter, 10, "1.1.1.1")).toBe(5);
    expect(allowed(limiter, 10, "2.2.2.2")).toBe(5);
    expect(allowed(limiter, 10)).toBe(5);
    expect(limiter.keys).toBe(2);
    c.advance(100);
    expect(allowed(limiter, 10, "1.1.1.1")).toBe(1);
  });

  it("divides the configured rate among workers", () => {
    const c = clock();
    const limiter = new RateLimiter(rateLimitSettings({ requests_per_second: 100, burst: 100 }, 4), c.now);
    expect(allowed(limiter, 100)).toBe(25);
    c.advance(1_000);
    expect(allowed(limiter, 100)).toBe(25);
  });

  it("holds at most maxKeys keyed buckets, dropping full ones first", () => {
    const c = clock();
    const limiter = new RateLimiter({ ...TEN, key: "client_ip" }, c.now, 3);
    limiter.take("old");
    c.advance(1_000);
    allowed(limiter, 5, "busy-1");
    allowed(limiter, 5, "busy-2");
    // "old" has refilled: it is the one dropped, and the busy keys stay limited.
    expect(limiter.take("new")).toBe(0);
    expect(limiter.keys).toBe(3);
    expect(limiter.take("busy-1")).toBeGreaterThan(0);
    expect(limiter.take("busy-2")).toBeGreaterThan(0);
  });

  it("drops a full bucket before an older busy one", () => {
    const c = clock();
    const limiter = new RateLimiter({ ...TEN, key: "client_ip" }, c.now, 3);
    allowed(limiter, 5, "busy");
    limiter.take("idle");
    allowed(limiter, 5, "other");
    c.advance(200);
    expect(limiter.take("new")).toBe(0);
    expect(limiter.keys).toBe(3);
    // Two tokens refilled in 200 ms: "busy" kept its bucket rather than getting a fresh burst.
    expect(allowed(limiter, 10, "busy")).toBe(2);
  });

  it("drops the oldest bucket when none at the bound is full", () => {
    const c = clock();
    const limiter = new RateLimiter({ ...TEN, key: "client_ip" }, c.now, 2);
    allowed(limiter, 5, "a");
    allowed(limiter, 5, "b");
    expect(limiter.take("c")).toBe(0);
    expect(limiter.keys).toBe(2);
    expect(limiter.take("b")).toBeGreaterThan(0);
    expect(allowed(limiter, 10, "a")).toBe(5);
  });

  it("stays bounded under a flood of new keys", () => {
    const c = clock();
    const limiter = new RateLimiter({ ...TEN, key: "client_ip" }, c.now, 1_000);
    for (let i = 0; i < 20_000; i++) {
      limiter.take(`k${i}`);
      if (i % 100 === 0) c.advance(1);
    }
    expect(limiter.keys).toBe(1_000);
  });

  it("keeps buckets across an update, and drops keyed ones when the key changes", () => {
    const c = clock();
    const limiter = new RateLimiter({ ...TEN, key: "client_ip" }, c.now);
    allowed(limiter, 5, "a");
    limiter.update({ ...TEN, key: "client_ip", burst: 6 });
    expect(allowed(limiter, 5, "a")).toBe(1);
    limiter.update({ ...TEN, key: "header:x-user" });
    expect(limiter.keys).toBe(0);
    expect(allowed(limiter, 10, "a")).toBe(5);
  });
});

describe("RateLimiterRegistry", () => {
  it("keeps a route's buckets across calls and drops routes not retained", () => {
    const c = clock();
    const registry = new RateLimiterRegistry(c.now);
    const a = registry.limiterFor("a", TEN);
    allowed(a, 5);
    expect(registry.limiterFor("a", TEN)).toBe(a);
    expect(registry.limiterFor("a", TEN).take(undefined)).toBeGreaterThan(0);
    registry.retain(new Set(["b"]));
    const fresh = registry.limiterFor("a", TEN);
    expect(fresh).not.toBe(a);
    expect(fresh.take(undefined)).toBe(0);
  });
});
