/**
 * The bounded queue between the request path and the trace collector. A span's end() either
 * appends it to the queue or, when the queue is full, counts it as dropped: it never waits, and
 * the memory held is at most `maxQueueSize` spans plus the batch being exported.
 *
 * Why not the SDK's BatchSpanProcessor (sdk-trace 2.12.1), which also drops on a full queue:
 * - it tells of drops only through `diag` log lines (or an experimental meter), and the agent
 *   must count them for proxy_trace_spans_dropped_total;
 * - the span that fills a batch exports it from inside its own end(), so one request pays for
 *   serializing 512 spans;
 * - an export that times out is abandoned and the next one starts, so a hung collector gathers
 *   concurrent requests up to the exporter's limit.
 * Here exports run on their own turn of the event loop, one at a time, each bounded by
 * `exportTimeoutMs`; a failed batch is dropped, never retried from the queue.
 */
import { TraceFlags } from "@opentelemetry/api";
import { type ExportResult, ExportResultCode } from "@opentelemetry/core";
import type { ReadableSpan, SpanExporter, SpanProcessor } from "@opentelemetry/sdk-trace";
import type { Logger } from "../../services/telemetry/logger.js";

export interface BatchOptions {
  readonly maxQueueSize: number;
  readonly maxExportBatchSize: number;
  /** How long a batch smaller than maxExportBatchSize waits for more spans. */
  readonly scheduledDelayMs: number;
  /** Past this an export counts as failed, whatever the exporter is still doing. */
  readonly exportTimeoutMs: number;
}

/** queue_full: dropped at end() because the queue was full; export_failed: in a failed batch. */
export type SpanDropReason = "queue_full" | "export_failed";

export type TracingLogger = Pick<Logger, "info" | "warn">;

export interface DropReporting {
  readonly logger: TracingLogger;
  readonly onDropped: (count: number, reason: SpanDropReason) => void;
}

export class BoundedBatchProcessor implements SpanProcessor {
  readonly #exporter: SpanExporter;
  readonly #options: BatchOptions;
  readonly #report: DropReporting;
  #queue: ReadableSpan[] = [];
  #inFlight: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #immediate: NodeJS.Immediate | undefined;
  #closed = false;
  #shutdown: Promise<void> | undefined;
  /** Drops and failures are logged once per streak; the counts go to onDropped. */
  #dropping = false;
  #failing = false;

  constructor(exporter: SpanExporter, options: BatchOptions, report: DropReporting) {
    this.#exporter = exporter;
    this.#options = {
      ...options,
      maxExportBatchSize: Math.min(options.maxExportBatchSize, options.maxQueueSize),
    };
    this.#report = report;
  }

  onStart(): void {}

  onEnd(span: ReadableSpan): void {
    if (this.#closed || (span.spanContext().traceFlags & TraceFlags.SAMPLED) === 0) return;
    if (this.#queue.length >= this.#options.maxQueueSize) {
      this.#report.onDropped(1, "queue_full");
      if (!this.#dropping) {
        this.#dropping = true;
        this.#report.logger.warn(
          { maxQueueSize: this.#options.maxQueueSize },
          "trace queue full: spans are dropped until the collector catches up",
        );
      }
      return;
    }
    this.#dropping = false;
    this.#queue.push(span);
    if (this.#inFlight === undefined) this.#schedule();
  }

  /** Resolves when every span queued so far has been exported or dropped. */
  async forceFlush(): Promise<void> {
    while (this.#inFlight !== undefined || this.#queue.length > 0) await this.#exportNext();
  }

  /** Spans ended after this are ignored; unbounded in time — the caller bounds it. */
  shutdown(): Promise<void> {
    this.#shutdown ??= this.#close();
    return this.#shutdown;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    await this.forceFlush();
    await this.#exporter.shutdown();
  }

  readonly #onSchedule = (): void => {
    void this.#exportNext();
  };

  /** A full batch goes on the next turn of the event loop, a partial one after the delay. */
  #schedule(): void {
    if (this.#immediate !== undefined) return;
    if (this.#queue.length >= this.#options.maxExportBatchSize) {
      this.#clearTimer();
      this.#immediate = setImmediate(this.#onSchedule);
    } else if (this.#timer === undefined) {
      this.#timer = setTimeout(this.#onSchedule, this.#options.scheduledDelayMs);
      this.#timer.unref();
    }
  }

  #clearTimer(): void {
    if (this.#timer === undefined) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #exportNext(): Promise<void> {
    this.#clearTimer();
    if (this.#immediate !== undefined) {
      clearImmediate(this.#immediate);
      this.#immediate = undefined;
    }
    if (this.#inFlight !== undefined) return this.#inFlight;
    if (this.#queue.length === 0) return Promise.resolve();
    const batch = this.#take();
    const inFlight = this.#send(batch).then(() => {
      this.#inFlight = undefined;
      if (!this.#closed && this.#queue.length > 0) this.#schedule();
    });
    this.#inFlight = inFlight;
    return inFlight;
  }

  #take(): ReadableSpan[] {
    if (this.#queue.length <= this.#options.maxExportBatchSize) {
      const batch = this.#queue;
      this.#queue = [];
      return batch;
    }
    return this.#queue.splice(0, this.#options.maxExportBatchSize);
  }

  /** Resolves, never rejects, once the exporter answers or the timeout passes, whichever first. */
  #send(batch: ReadableSpan[]): Promise<void> {
    return new Promise((resolve) => {
      let settled = false;
      const settle = (ok: boolean, error?: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(guard);
        this.#exported(ok, batch.length, error);
        resolve();
      };
      // The exporter's own timeout is socket inactivity: a collector that trickles bytes never
      // trips it, this does.
      const guard = setTimeout(
        () => settle(false, new Error(`trace export took longer than ${this.#options.exportTimeoutMs} ms`)),
        this.#options.exportTimeoutMs,
      );
      guard.unref();
      try {
        this.#exporter.export(batch, (result: ExportResult) =>
          settle(result.code === ExportResultCode.SUCCESS, result.error),
        );
      } catch (error) {
        settle(false, error);
      }
    });
  }

  #exported(ok: boolean, count: number, error: unknown): void {
    if (ok) {
      if (this.#failing) {
        this.#failing = false;
        this.#report.logger.info("trace export recovered");
      }
      return;
    }
    this.#report.onDropped(count, "export_failed");
    if (!this.#failing) {
      this.#failing = true;
      this.#report.logger.warn(
        { err: error, spans: count },
        "trace export failed: spans are dropped until the collector answers",
      );
    }
  }
}
