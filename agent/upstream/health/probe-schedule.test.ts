import { describe, expect, it } from "vitest";
import { firstProbeDelay, nextProbeDelay } from "./probe-schedule.js";

describe("probe schedule", () => {
  it("places the first probe anywhere within the first interval", () => {
    expect(firstProbeDelay(5_000, 0)).toBe(0);
    expect(firstProbeDelay(5_000, 0.5)).toBe(2_500);
    expect(firstProbeDelay(5_000, 0.999)).toBeCloseTo(4_995);
  });

  it("spreads each interval over interval × (1 ± jitter)", () => {
    expect(nextProbeDelay(5_000, 10, 0)).toBe(4_500);
    expect(nextProbeDelay(5_000, 10, 0.5)).toBe(5_000);
    expect(nextProbeDelay(5_000, 10, 0.999_999)).toBeCloseTo(5_500, 1);
  });

  it("keeps the interval exact without jitter", () => {
    expect(nextProbeDelay(5_000, 0, 0)).toBe(5_000);
    expect(nextProbeDelay(5_000, 0, 0.9)).toBe(5_000);
  });

  it("gives agents drawing different numbers different schedules, all within bounds", () => {
    const delays = Array.from({ length: 1_000 }, () => nextProbeDelay(1_000, 20, Math.random()));
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(800);
    expect(Math.max(...delays)).toBeLessThanOrEqual(1_200);
    // A uniform spread: both tails are reached, not only values near the interval.
    expect(delays.filter((d) => d < 900).length).toBeGreaterThan(100);
    expect(delays.filter((d) => d > 1_100).length).toBeGreaterThan(100);
  });
});
