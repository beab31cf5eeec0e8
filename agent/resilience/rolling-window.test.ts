import { describe, expect, it } from "vitest";
import { RollingWindow } from "./rolling-window.js";

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe("RollingWindow", () => {
  it("counts requests and failures and their error percent", () => {
    const c = clock();
    const w = new RollingWindow(10_000, c.now);
    expect(w.errorPercent()).toBe(0);
    w.record(true);
    w.record(false);
    w.record(false);
    w.record(true);
    expect(w.requests).toBe(4);
    expect(w.failures).toBe(2);
    expect(w.errorPercent()).toBe(50);
  });

  it("forgets outcomes one slot at a time as they leave the window", () => {
    const c = clock();
    const w = new RollingWindow(10_000, c.now);
    w.record(false);
    c.advance(5_000);
    w.record(true);
    c.advance(4_999);
    expect(w.requests).toBe(2);
    c.advance(1);
    expect(w.requests).toBe(1);
    expect(w.failures).toBe(0);
    c.advance(5_000);
    expect(w.requests).toBe(0);
  });

  it("empties completely after a gap longer than the window", () => {
    const c = clock();
    const w = new RollingWindow(1_000, c.now);
    for (let i = 0; i < 50; i++) w.record(i % 2 === 0);
    c.advance(123_456);
    expect(w.requests).toBe(0);
    expect(w.failures).toBe(0);
    w.record(false);
    expect(w.errorPercent()).toBe(100);
  });

  it("starts afresh on reset", () => {
    const c = clock();
    const w = new RollingWindow(10_000, c.now);
    w.record(false);
    w.reset();
    expect(w.requests).toBe(0);
    w.record(true);
    expect(w.errorPercent()).toBe(0);
  });

  it("keeps its counts when the window length changes and uses the new length from then on", () => {
    const c = clock();
    const w = new RollingWindow(10_000, c.now);
    w.record(false);
    w.windowMs = 1_000;
    expect(w.windowMs).toBe(1_000);
    expect(w.failures).toBe(1);
    c.advance(1_000);
    expect(w.failures).toBe(0);
  });
});
