import { describe, expect, it } from "vitest";
import {
  ConcurrencyLimiter,
  LimiterRegistry,
  type LimiterSettings,
  limiterSettings,
  type SetTimer,
  type Waiter,
} from "./concurrency-limiter.js";

/** A fake clock with the timers that run on it. */
function fakeTime() {
  interface FakeTimer {
    at: number;
    callback: () => void;
    close(): void;
  }
  let t = 0;
  const timers = new Set<FakeTimer>();
  const setTimer: SetTimer = (callback, ms) => {
    const timer: FakeTimer = { at: t + ms, callback, close: () => timers.delete(timer) };
    timers.add(timer);
    return timer;
  };
  const advance = (ms: number) => {
    const end = t + ms;
    for (;;) {
      let next: FakeTimer | undefined;
      for (const timer of timers) if (timer.at <= end && (!next || timer.at < next.at)) next = timer;
      if (!next) break;
      timers.delete(next);
      t = next.at;
      next.callback();
    }
    t = end;
  };
  return { now: () => t, setTimer, advance, timers: () => timers.size };
}

function waiter(log: string[], name: string): Waiter {
  return { grant: () => log.push(`${name} granted`), reject: () => log.push(`${name} rejected`) };
}

const STATIC: LimiterSettings = {
  maxConcurrent: 2,
  queueSize: 3,
  queueTimeoutMs: 1_000,
  adaptive: false,
  minConcurrent: 1,
};

function setup(settings: LimiterSettings = STATIC) {
  const time = fakeTime();
  const limiter = new ConcurrencyLimiter(settings, time.now, time.setTimer);
  return { time, limiter, log: [] as string[] };
}

describe("limiterSettings", () => {
  it("applies the defaults", () => {
    expect(limiterSettings({ max_concurrent: 50 })).toEqual({
      maxConcurrent: 50,
      queueSize: 0,
      queueTimeoutMs: 1_000,
      adaptive: false,
      minConcurrent: 1,
    });
  });

  it("keeps min_concurrent at most max_concurrent", () => {
    const s = limiterSettings({ max_concurrent: 4, min_concurrent: 10, adaptive: true, queue_size: 7 });
    expect(s.minConcurrent).toBe(4);
    expect(s.queueSize).toBe(7);
    expect(s.adaptive).toBe(true);
  });
});

describe("ConcurrencyLimiter", () => {
  it("admits up to max_concurrent on the fast path and again after a release", () => {
    const { limiter } = setup();
    expect(limiter.tryAcquire()).toBe(true);
    expect(limiter.tryAcquire()).toBe(true);
    expect(limiter.tryAcquire()).toBe(false);
    expect(limiter.inFlight).toBe(2);
    limiter.release(5, false);
    expect(limiter.tryAcquire()).toBe(true);
  });

  it("refuses to queue without a queue_size", () => {
    const { limiter, log } = setup({ ...STATIC, queueSize: 0 });
    expect(limiter.enqueue(waiter(log, "a"))).toBe(false);
    expect(limiter.queued).toBe(0);
  });

  it("refuses to queue beyond queue_size", () => {
    const { limiter, log } = setup();
    limiter.tryAcquire();
    limiter.tryAcquire();
    for (const name of ["a", "b", "c"]) expect(limiter.enqueue(waiter(log, name))).toBe(true);
    expect(limiter.enqueue(waiter(log, "d"))).toBe(false);
    expect(limiter.queued).toBe(3);
    expect(log).toEqual([]);
  });

  it("grants freed slots to waiters in FIFO order", () => {
    const { limiter, log } = setup();
    limiter.tryAcquire();
    limiter.tryAcquire();
    for (const name of ["a", "b", "c"]) limiter.enqueue(waiter(log, name));
    limiter.release(1, false);
    expect(log).toEqual(["a granted"]);
    limiter.release(1, false);
    limiter.release(1, false);
    expect(log).toEqual(["a granted", "b granted", "c granted"]);
    expect(limiter.inFlight).toBe(2);
    expect(limiter.queued).toBe(0);
  });

  it("keeps the fast path closed while others wait", () => {
    const { limiter, log } = setup({ ...STATIC, maxConcurrent: 1 });
    limiter.tryAcquire();
    limiter.enqueue(waiter(log, "a"));
    limiter.update({ ...STATIC, maxConcurrent: 3 });
    expect(log).toEqual(["a granted"]);
    expect(limiter.tryAcquire()).toBe(true);
    expect(limiter.tryAcquire()).toBe(false);
  });

  it("grants the next waiter too when a granted request ends at once", () => {
    const { limiter, log } = setup({ ...STATIC, maxConcurrent: 1 });
    limiter.tryAcquire();
    limiter.enqueue({
      grant: () => {
        log.push("a granted");
        limiter.release(0, true);
      },
      reject: () => log.push("a rejected"),
    });
    limiter.enqueue(waiter(log, "b"));
    limiter.release(1, false);
    expect(log).toEqual(["a granted", "b granted"]);
    expect(limiter.inFlight).toBe(1);
  });

  it("rejects a waiter after queue_timeout, each from its own enqueue time, with one timer", () => {
    const { limiter, log, time } = setup();
    limiter.tryAcquire();
    limiter.tryAcquire();
    limiter.enqueue(waiter(log, "a"));
    time.advance(300);
    limiter.enqueue(waiter(log, "b"));
    limiter.enqueue(waiter(log, "c"));
    expect(time.timers()).toBe(1);
    time.advance(699);
    expect(log).toEqual([]);
    time.advance(1);
    expect(log).toEqual(["a rejected"]);
    time.advance(299);
    expect(log).toEqual(["a rejected"]);
    time.advance(1);
    expect(log).toEqual(["a rejected", "b rejected", "c rejected"]);
    expect(limiter.queued).toBe(0);
    expect(time.timers()).toBe(0);
    expect(limiter.inFlight).toBe(2);
  });

  it("keeps earlier deadlines when a rejected waiter queues again at once", () => {
    const { limiter, log, time } = setup();
    limiter.tryAcquire();
    limiter.tryAcquire();
    limiter.enqueue({
      grant: () => log.push("a granted"),
      reject: () => {
        log.push("a rejected");
        limiter.enqueue(waiter(log, "c"));
      },
    });
    time.advance(500);
    limiter.enqueue(waiter(log, "b"));
    time.advance(500);
    expect(log).toEqual(["a rejected"]);
    time.advance(500);
    expect(log).toEqual(["a rejected", "b rejected"]);
    expect(time.timers()).toBe(1);
    time.advance(500);
    expect(log).toEqual(["a rejected", "b rejected", "c rejected"]);
    expect(time.timers()).toBe(0);
  });

  it("holds no timer once the queue empties by grants", () => {
    const { limiter, log, time } = setup();
    limiter.tryAcquire();
    limiter.tryAcquire();
    limiter.enqueue(waiter(log, "a"));
    limiter.release(1, false);
    expect(time.timers()).toBe(0);
    time.advance(5_000);
    expect(log).toEqual(["a granted"]);
  });

  it("never calls back a cancelled waiter, and drops the timer with the last one", () => {
    const { limiter, log, time } = setup();
    limiter.tryAcquire();
    limiter.tryAcquire();
    const a = waiter(log, "a");
    const b = waiter(log, "b");
    limiter.enqueue(a);
    limiter.enqueue(b);
    limiter.cancel(a);
    expect(limiter.queued).toBe(1);
    limiter.release(1, false);
    expect(log).toEqual(["b granted"]);
    limiter.enqueue(a);
    limiter.cancel(a);
    expect(time.timers()).toBe(0);
    time.advance(2_000);
    expect(log).toEqual(["b granted"]);
  });

  it("re-arms the timer for the next waiter after the head leaves early", () => {
    const { limiter, log, time } = setup();
    limiter.tryAcquire();
    limiter.tryAcquire();
    const a = waiter(log, "a");
    limiter.enqueue(a);
    time.advance(500);
    limiter.enqueue(waiter(log, "b"));
    limiter.cancel(a);
    time.advance(500);
    expect(log).toEqual([]);
    expect(time.timers()).toBe(1);
    time.advance(500);
    expect(log).toEqual(["b rejected"]);
  });

  it("applies a shorter queue_timeout to waiters already queued", () => {
    const { limiter, log, time } = setup();
    limiter.tryAcquire();
    limiter.tryAcquire();
    limiter.enqueue(waiter(log, "a"));
    limiter.enqueue(waiter(log, "b"));
    time.advance(200);
    limiter.update({ ...STATIC, queueTimeoutMs: 100 });
    expect(log).toEqual(["a rejected", "b rejected"]);
    expect(time.timers()).toBe(0);
  });

  it("keeps the limit at max_concurrent when not adaptive, whatever the latency", () => {
    const { limiter } = setup({ ...STATIC, maxConcurrent: 50 });
    saturate(limiter, 10, 50);
    saturate(limiter, 10_000, 200, true);
    expect(limiter.limit).toBe(50);
  });
});

/** Keeps the limiter full and ends one request at a time with this latency. */
function saturate(
  limiter: ConcurrencyLimiter,
  latencyMs: number,
  samples: number,
  dropped = false,
): number[] {
  const limits: number[] = [];
  for (let i = 0; i < samples; i++) {
    while (limiter.tryAcquire());
    limiter.release(latencyMs, dropped);
    limits.push(limiter.limit);
  }
  return limits;
}

describe("ConcurrencyLimiter, adaptive", () => {
  const ADAPTIVE: LimiterSettings = { ...STATIC, maxConcurrent: 100, minConcurrent: 5, adaptive: true };

  it("starts at max_concurrent and holds it while latency stays at the baseline", () => {
    const { limiter } = setup(ADAPTIVE);
    expect(limiter.limit).toBe(100);
    saturate(limiter, 20, 200);
    expect(limiter.limit).toBe(100);
  });

  it("shrinks when latency rises well above the baseline and grows back when it falls", () => {
    const { limiter } = setup(ADAPTIVE);
    saturate(limiter, 20, 100);
    const shrinking = saturate(limiter, 200, 40);
    expect(shrinking.at(-1)).toBeLessThan(20);
    for (let i = 1; i < shrinking.length; i++) expect(shrinking[i]).toBeLessThanOrEqual(shrinking[i - 1]!);
    const low = limiter.limit;
    const growing = saturate(limiter, 20, 400);
    expect(growing[10]).toBeGreaterThan(low);
    expect(limiter.limit).toBe(100);
  });

  it("does not grow while less than half the limit is used", () => {
    const { limiter } = setup(ADAPTIVE);
    saturate(limiter, 20, 20);
    saturate(limiter, 400, 40);
    while (limiter.inFlight > 0) limiter.release(400, false);
    const low = limiter.limit;
    expect(low).toBeLessThan(50);
    for (let i = 0; i < 200; i++) {
      limiter.tryAcquire();
      limiter.release(20, false);
    }
    expect(limiter.limit).toBe(low);
  });

  it("cuts the limit by a tenth for each dropped request, down to min_concurrent", () => {
    const { limiter } = setup(ADAPTIVE);
    limiter.tryAcquire();
    limiter.release(0, true);
    expect(limiter.limit).toBe(90);
    limiter.tryAcquire();
    limiter.release(0, true);
    expect(limiter.limit).toBe(81);
    saturate(limiter, 0, 100, true);
    expect(limiter.limit).toBe(5);
  });

  it("never leaves [min_concurrent, max_concurrent] whatever it is fed", () => {
    const { limiter } = setup({ ...ADAPTIVE, maxConcurrent: 40, minConcurrent: 3 });
    let seed = 42;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let i = 0; i < 5_000; i++) {
      while (random() < 0.7 && limiter.tryAcquire());
      if (limiter.inFlight === 0) continue;
      limiter.release(random() < 0.5 ? random() * 5 : random() * 5_000, random() < 0.05);
      expect(limiter.limit).toBeGreaterThanOrEqual(3);
      expect(limiter.limit).toBeLessThanOrEqual(40);
    }
  });

  it("keeps the estimate within new bounds on update and drops to max_concurrent when no longer adaptive", () => {
    const { limiter } = setup(ADAPTIVE);
    limiter.update({ ...ADAPTIVE, maxConcurrent: 30 });
    expect(limiter.limit).toBe(30);
    saturate(limiter, 20, 20);
    saturate(limiter, 400, 40);
    limiter.update({ ...ADAPTIVE, minConcurrent: 25 });
    expect(limiter.limit).toBe(25);
    limiter.update({ ...ADAPTIVE, adaptive: false });
    expect(limiter.limit).toBe(100);
  });
});

describe("LimiterRegistry", () => {
  it("returns the same limiter for a route, with the new settings", () => {
    const time = fakeTime();
    const registry = new LimiterRegistry(time.now, time.setTimer);
    const a = registry.limiterFor("r", STATIC);
    expect(registry.limiterFor("r", { ...STATIC, maxConcurrent: 7 })).toBe(a);
    expect(a.limit).toBe(7);
  });

  it("lists limiters, and on dropping one lets its queue through and stops its timer", () => {
    const time = fakeTime();
    const registry = new LimiterRegistry(time.now, time.setTimer);
    const log: string[] = [];
    const a = registry.limiterFor("a", { ...STATIC, maxConcurrent: 1 });
    registry.limiterFor("b", STATIC);
    a.tryAcquire();
    a.enqueue(waiter(log, "w"));
    expect(registry.list()).toEqual([
      { route: "a", limit: 1, inFlight: 1, queued: 1 },
      { route: "b", limit: 2, inFlight: 0, queued: 0 },
    ]);
    registry.retain(new Set(["b"]));
    expect(log).toEqual(["w granted"]);
    expect(time.timers()).toBe(0);
    expect(registry.list().map((l) => l.route)).toEqual(["b"]);
  });
});
