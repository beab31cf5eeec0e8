import { describe, expect, it } from "vitest";
import { Backoff } from "./backoff.js";

describe("Backoff", () => {
  it("doubles the jitter range per attempt up to the cap", () => {
    const backoff = new Backoff({ baseMs: 250, capMs: 30_000, random: () => 0.999_999 });
    const delays = Array.from({ length: 10 }, () => backoff.next());
    expect(delays).toEqual([249, 499, 999, 1999, 3999, 7999, 15_999, 29_999, 29_999, 29_999]);
  });

  it("draws the whole range from zero (full jitter)", () => {
    const backoff = new Backoff({ baseMs: 250, capMs: 30_000, random: () => 0 });
    expect([backoff.next(), backoff.next(), backoff.next()]).toEqual([0, 0, 0]);
  });

  it("starts again from the base after a reset", () => {
    const backoff = new Backoff({ baseMs: 100, capMs: 10_000, random: () => 0.5 });
    backoff.next();
    backoff.next();
    expect(backoff.next()).toBe(200);
    backoff.reset();
    expect(backoff.next()).toBe(50);
  });

  it("never overflows after many attempts", () => {
    const backoff = new Backoff({ baseMs: 250, capMs: 30_000, random: () => 0.5 });
    for (let i = 0; i < 5_000; i++) backoff.next();
    expect(backoff.next()).toBe(15_000);
  });
});
