import { describe, expect, it } from "vitest";
import { HealthRecorder, LATENCY_BOUNDS_MS } from "./health-recorder.js";

function fakeClock(start: number): { now: () => number; advance: (ms: number) => void } {
  let time = start;
  return { now: () => time, advance: (ms) => (time += ms) };
}

describe("HealthRecorder", () => {
  it("counts requests, 5xx answers and latency buckets per version", () => {
    const clock = fakeClock(1_000);
    const recorder = new HealthRecorder(clock.now);
    recorder.record(7, 200, 3);
    recorder.record(7, 503, 5);
    recorder.record(7, 404, 6);
    recorder.record(8, 500, 9_999);
    clock.advance(5_000);
    const report = recorder.takeReport();
    expect(report.windowStartUnixMs).toBe(1_000);
    expect(report.windowEndUnixMs).toBe(6_000);
    const [seven, eight] = report.versions;
    expect(seven).toMatchObject({ version: 7, requests: 3, errors5xx: 1 });
    expect(seven?.latency?.boundsMs).toEqual(LATENCY_BOUNDS_MS);
    // 3 and 5 are within the first bound (inclusive), 6 in the second.
    expect(seven?.latency?.counts).toEqual([2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect(seven?.latency).toMatchObject({ sumMs: 14, count: 3 });
    expect(eight).toMatchObject({ version: 8, requests: 1, errors5xx: 1 });
    expect(eight?.latency?.counts.at(-1)).toBe(1);
  });

  it("tiles time: each window starts where the previous one ended, with fresh counters", () => {
    const clock = fakeClock(0);
    const recorder = new HealthRecorder(clock.now);
    recorder.record(1, 200, 1);
    clock.advance(100);
    const first = recorder.takeReport();
    recorder.record(1, 200, 1);
    recorder.record(1, 200, 1);
    clock.advance(250);
    const second = recorder.takeReport();
    expect(second.windowStartUnixMs).toBe(first.windowEndUnixMs);
    expect(second.windowEndUnixMs).toBe(350);
    expect(first.versions[0]?.requests).toBe(1);
    expect(second.versions[0]?.requests).toBe(2);
  });

  it("leaves out a version once it served nothing for a window", () => {
    const clock = fakeClock(0);
    const recorder = new HealthRecorder(clock.now);
    recorder.record(1, 200, 1);
    clock.advance(10);
    recorder.takeReport();
    recorder.record(2, 200, 1);
    clock.advance(10);
    expect(recorder.takeReport().versions.map((v) => v.version)).toEqual([2]);
    clock.advance(10);
    expect(recorder.takeReport().versions).toEqual([]);
  });

  it("reports an empty window when there was no traffic", () => {
    const clock = fakeClock(50);
    const recorder = new HealthRecorder(clock.now);
    clock.advance(5);
    expect(recorder.takeReport()).toEqual({ windowStartUnixMs: 50, windowEndUnixMs: 55, versions: [] });
  });
});
