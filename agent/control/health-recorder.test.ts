import { describe, expect, it } from "vitest";
import { HealthMergeError, HealthRecorder, LATENCY_BOUNDS_MS } from "./health-recorder.js";

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

  it("adds another recorder's counters to the current window, bucket by bucket", () => {
    const clock = fakeClock(0);
    const worker = new HealthRecorder(clock.now);
    worker.record(3, 200, 1);
    worker.record(3, 502, 30);
    worker.record(4, 200, 9_000);
    const primary = new HealthRecorder(clock.now);
    primary.record(3, 200, 7);
    primary.add(worker.takeReport().versions);
    worker.record(3, 500, 1);
    primary.add(worker.takeReport().versions);
    clock.advance(1_000);
    const [three, four] = primary.takeReport().versions;
    expect(three).toMatchObject({ version: 3, requests: 4, errors5xx: 2 });
    expect(three?.latency).toMatchObject({ sumMs: 39, count: 4, counts: [2, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0] });
    expect(four).toMatchObject({ version: 4, requests: 1, errors5xx: 0 });
    expect(four?.latency?.counts.at(-1)).toBe(1);
    // Taken counters are gone from the worker: sending them again cannot count them twice.
    expect(worker.takeReport().versions).toEqual([]);
  });

  it("refuses, adding nothing, counters whose latency bounds differ", () => {
    const clock = fakeClock(0);
    const recorder = new HealthRecorder(clock.now);
    const counts = new Array<number>(LATENCY_BOUNDS_MS.length + 1).fill(0);
    const good = {
      version: 1,
      requests: 1,
      errors5xx: 0,
      latency: { boundsMs: [...LATENCY_BOUNDS_MS], counts: [1, ...counts.slice(1)], sumMs: 1, count: 1 },
    };
    const other = {
      ...good,
      version: 2,
      latency: { ...good.latency, boundsMs: LATENCY_BOUNDS_MS.map((b) => b * 2) },
    };
    let caught: unknown;
    try {
      recorder.add([good, other]);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(HealthMergeError);
    expect((caught as HealthMergeError).code).toBe("latency_bounds_differ");
    clock.advance(10);
    expect(recorder.takeReport().versions).toEqual([]);
  });
});
