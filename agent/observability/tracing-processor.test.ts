import { type ExportResult, ExportResultCode } from "@opentelemetry/core";
import {
  AlwaysOnSampler,
  type ReadableSpan,
  type SpanExporter,
  TracerProvider,
} from "@opentelemetry/sdk-trace";
import pino from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import { type BatchOptions, BoundedBatchProcessor, type SpanDropReason } from "./tracing-processor.js";

/** An exporter whose answers the test gives: every export waits until answer() is called. */
class HeldExporter implements SpanExporter {
  readonly batches: ReadableSpan[][] = [];
  readonly #callbacks: ((result: ExportResult) => void)[] = [];
  shutdowns = 0;

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.batches.push(spans);
    this.#callbacks.push(done);
  }

  answer(code: ExportResultCode): void {
    const done = this.#callbacks.shift();
    if (!done) throw new Error("no export is waiting");
    done(code === ExportResultCode.SUCCESS ? { code } : { code, error: new Error("collector said no") });
  }

  get waiting(): number {
    return this.#callbacks.length;
  }

  async shutdown(): Promise<void> {
    this.shutdowns++;
  }
}

const OPTIONS: BatchOptions = {
  maxQueueSize: 10,
  maxExportBatchSize: 4,
  scheduledDelayMs: 1000,
  exportTimeoutMs: 5000,
};

function setup(options: Partial<BatchOptions> = {}) {
  const exporter = new HeldExporter();
  const drops: Record<SpanDropReason, number> = { queue_full: 0, export_failed: 0 };
  const logs: { level: number; msg: string }[] = [];
  const logger = pino({ level: "info" }, { write: (line: string) => logs.push(JSON.parse(line)) });
  const processor = new BoundedBatchProcessor(
    exporter,
    { ...OPTIONS, ...options },
    {
      logger,
      onDropped: (count, reason) => {
        drops[reason] += count;
      },
    },
  );
  const tracer = new TracerProvider({
    sampler: new AlwaysOnSampler(),
    spanProcessors: [processor],
  }).getTracer("test");
  const endSpans = (count: number) => {
    for (let i = 0; i < count; i++) tracer.startSpan(`s${i}`).end();
  };
  return { exporter, drops, logs, processor, endSpans };
}

afterEach(() => {
  vi.useRealTimers();
});

describe("BoundedBatchProcessor", () => {
  it("never exports from inside a span's end, even when the span fills a batch", async () => {
    const t = setup();
    t.endSpans(4);
    expect(t.exporter.batches).toHaveLength(0);
    await new Promise((resolve) => setImmediate(resolve));
    expect(t.exporter.batches.map((b) => b.length)).toEqual([4]);
  });

  it("sends a partial batch after the scheduled delay", async () => {
    vi.useFakeTimers();
    const t = setup();
    t.endSpans(2);
    await vi.advanceTimersByTimeAsync(999);
    expect(t.exporter.batches).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(t.exporter.batches.map((b) => b.map((s) => s.name))).toEqual([["s0", "s1"]]);
  });

  it("keeps one export in flight and drops spans past the queue bound, counting them", async () => {
    const t = setup();
    t.endSpans(4);
    await new Promise((resolve) => setImmediate(resolve));
    expect(t.exporter.waiting).toBe(1);
    // The first batch is out of the queue; the queue takes 10 more, the other 5 are dropped.
    t.endSpans(15);
    await new Promise((resolve) => setImmediate(resolve));
    expect(t.exporter.waiting).toBe(1);
    expect(t.drops).toEqual({ queue_full: 5, export_failed: 0 });
    const warnings = t.logs.filter((l) => l.level === 40);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.msg).toMatch(/queue full/);

    t.exporter.answer(ExportResultCode.SUCCESS);
    await vi.waitFor(() => expect(t.exporter.batches).toHaveLength(2));
    expect(t.exporter.batches.map((b) => b.length)).toEqual([4, 4]);
  });

  it("counts the spans of a failed batch as dropped and logs once until exports recover", async () => {
    const t = setup();
    t.endSpans(4);
    await vi.waitFor(() => expect(t.exporter.waiting).toBe(1));
    t.exporter.answer(ExportResultCode.FAILED);
    t.endSpans(4);
    await vi.waitFor(() => expect(t.exporter.waiting).toBe(1));
    t.exporter.answer(ExportResultCode.FAILED);
    await vi.waitFor(() => expect(t.drops.export_failed).toBe(8));
    t.endSpans(4);
    await vi.waitFor(() => expect(t.exporter.waiting).toBe(1));
    t.exporter.answer(ExportResultCode.SUCCESS);
    await vi.waitFor(() => expect(t.logs.map((l) => l.msg)).toContain("trace export recovered"));
    expect(t.logs.filter((l) => /export failed/.test(l.msg))).toHaveLength(1);
    expect(t.drops.export_failed).toBe(8);
  });

  it("gives up on an export that outlasts exportTimeoutMs and sends the next batch", async () => {
    const t = setup({ exportTimeoutMs: 50 });
    t.endSpans(8);
    await vi.waitFor(() => expect(t.exporter.batches).toHaveLength(1));
    expect(t.drops.export_failed).toBe(0);
    // Well before the 1 s scheduled delay: the timeout, not the timer, let the next batch go.
    await vi.waitFor(() => expect(t.exporter.batches).toHaveLength(2), { timeout: 500 });
    expect(t.drops.export_failed).toBe(4);
    // A late answer to the abandoned export changes nothing.
    t.exporter.answer(ExportResultCode.SUCCESS);
    expect(t.drops.export_failed).toBe(4);
  });

  it("flushes every queued span on shutdown, then shuts the exporter down and ignores later spans", async () => {
    const t = setup();
    t.endSpans(10);
    const shutdown = t.processor.shutdown();
    for (let batch = 0; batch < 3; batch++) {
      await vi.waitFor(() => expect(t.exporter.waiting).toBe(1));
      t.exporter.answer(ExportResultCode.SUCCESS);
    }
    await shutdown;
    expect(t.exporter.batches.map((b) => b.length)).toEqual([4, 4, 2]);
    expect(t.exporter.shutdowns).toBe(1);
    t.endSpans(5);
    await new Promise((resolve) => setImmediate(resolve));
    expect(t.exporter.batches).toHaveLength(3);
    expect(t.drops).toEqual({ queue_full: 0, export_failed: 0 });
  });
});
