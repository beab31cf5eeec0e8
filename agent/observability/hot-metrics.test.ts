import { AggregatorRegistry, Counter, Histogram, Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { HotCounter, HotHistogram } from "./hot-metrics.js";

const BUCKETS = [0.005, 0.01, 0.1, 1];

function pair() {
  const hot = new Registry();
  const reference = new Registry();
  const options = { name: "x_seconds", help: "h", labelNames: ["route"] as const, buckets: BUCKETS };
  return {
    hot,
    reference,
    hotHistogram: new HotHistogram({ ...options, registers: [hot] }),
    histogram: new Histogram({ ...options, registers: [reference] }),
    hotCounter: new HotCounter({
      name: "y_total",
      help: "h",
      labelNames: ["route", "status"],
      registers: [hot],
    }),
    counter: new Counter({
      name: "y_total",
      help: "h",
      labelNames: ["route", "status"] as const,
      registers: [reference],
    }),
  };
}

describe("hot metrics", () => {
  it("render exactly what prom-client renders for the same observations", async () => {
    const m = pair();
    const values = [0, 0.005, 0.0051, 0.02, 0.5, 1, 7, 0.003];
    const child = m.hotHistogram.labels({ route: "a" });
    for (const v of values) {
      child.observe(v);
      m.histogram.labels("a").observe(v);
    }
    m.hotHistogram.labels({ route: "b" }).observe(2);
    m.histogram.labels("b").observe(2);
    m.hotCounter.labels({ route: "a", status: "200" }).inc();
    m.hotCounter.labels({ route: "a", status: "200" }).inc(2);
    m.hotCounter.labels({ route: "a", status: "503" }).inc();
    m.counter.labels("a", "200").inc(3);
    m.counter.labels("a", "503").inc();
    expect(await m.hot.metrics()).toBe(await m.reference.metrics());
  });

  it("hand out one child per label set", () => {
    const m = pair();
    expect(m.hotCounter.labels({ route: "a", status: "200" })).toBe(
      m.hotCounter.labels({ route: "a", status: "200" }),
    );
    expect(m.hotCounter.labels({ route: "a", status: "200" })).not.toBe(
      m.hotCounter.labels({ route: "a", status: "201" }),
    );
  });

  it("drop the children a retain refuses, and only those", async () => {
    const registry = new Registry();
    const counter = new HotCounter({
      name: "c_total",
      help: "c",
      labelNames: ["route"],
      registers: [registry],
    });
    counter.labels({ route: "kept" }).inc();
    counter.labels({ route: "gone" }).inc(2);
    counter.retain((labels) => labels.route !== "gone");
    const text = await registry.metrics();
    expect(text).toContain('c_total{route="kept"} 1');
    expect(text).not.toContain("gone");
    counter.labels({ route: "gone" }).inc();
    expect(await registry.metrics()).toContain('c_total{route="gone"} 1');
  });

  it("sum across cluster workers like prom-client's own metrics", async () => {
    const workers = [pair(), pair()];
    workers[0]?.hotHistogram.labels({ route: "a" }).observe(0.05);
    workers[1]?.hotHistogram.labels({ route: "a" }).observe(3);
    workers[0]?.hotCounter.labels({ route: "a", status: "200" }).inc(4);
    workers[1]?.hotCounter.labels({ route: "a", status: "200" }).inc(1);
    const exported = await Promise.all(workers.map((w) => w.hot.getMetricsAsJSON()));
    // biome-ignore lint/suspicious/noExplicitAny: aggregate() is typed for prom-client's metric JSON, which this is.
    const text = await AggregatorRegistry.aggregate(exported as any).metrics();
    expect(text).toContain('y_total{route="a",status="200"} 5');
    expect(text).toContain('x_seconds_bucket{le="0.1",route="a"} 1');
    expect(text).toContain('x_seconds_bucket{le="+Inf",route="a"} 2');
    expect(text).toContain('x_seconds_sum{route="a"} 3.05');
  });
});
