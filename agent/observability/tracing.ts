/**
 * OpenTelemetry traces of the request path: a SERVER span per sampled request, a child per
 * phase (route, middleware, upstream_select, breaker, attempt, cache), W3C trace context in
 * from the client and out to the upstream, exported over OTLP/HTTP (JSON, the exporter's
 * default) through a bounded queue that drops rather than blocks.
 *
 * The request path checks `tracing.enabled` once and skips every call when it is false; when
 * it is true, `startRequest` returns undefined for a request that is not sampled, and the
 * request path skips the rest for that request. Nothing here touches the OpenTelemetry globals
 * (tracer provider, propagator, context manager): spans are parented explicitly.
 *
 * Sampling defaults to 1% of new traces (DEFAULT_SAMPLE_RATIO): traces are for finding where a
 * slow or failed request spent its time, and a proxy at tens of thousands of requests a second
 * would otherwise export more spans than requests. A sampled incoming traceparent is always
 * honoured, whatever the ratio; for an unsampled request nothing is injected, so the upstream
 * gets the client's traceparent as forwarded.
 */
import type { IncomingHttpHeaders } from "node:http";
import {
  type Attributes,
  type AttributeValue,
  type Context,
  defaultTextMapGetter,
  defaultTextMapSetter,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { AlwaysOnSampler, ParentBasedSampler, TracerProvider } from "@opentelemetry/sdk-trace";
import { isKnownMethod, PHASE_SPANS, TRACER_NAME, TraceAttr, type TracePhase } from "./tracing-names.js";
import { BoundedBatchProcessor, type SpanDropReason, type TracingLogger } from "./tracing-processor.js";
import { Parent, parentState, sampleNewTrace } from "./tracing-sampling.js";

export { TraceAttr, type TracePhase } from "./tracing-names.js";
export type { SpanDropReason, TracingLogger } from "./tracing-processor.js";

export const DEFAULT_SAMPLE_RATIO = 0.01;

export interface TracingSettings {
  /** OTLP/HTTP traces URL; a URL without a path gets the standard `/v1/traces`. None: disabled. */
  readonly endpoint: string | undefined;
  /** Share (0-1) of new traces sampled; DEFAULT_SAMPLE_RATIO when not set. */
  readonly sampleRatio?: number;
  readonly serviceName: string;
  /** Tells workers and hosts apart in the collector (`service.instance.id`). */
  readonly serviceInstanceId?: string;
  /** Spans waiting for export at most; past it spans are dropped. Default 2048. */
  readonly maxQueueSize?: number;
  /** Default 512. */
  readonly maxExportBatchSize?: number;
  /** How long a partial batch waits before it is sent. Default 1000 ms. */
  readonly scheduledDelayMs?: number;
  /** Default 5000 ms. */
  readonly exportTimeoutMs?: number;
  /** How long shutdown() waits for the last spans to be sent. Default 5000 ms. */
  readonly shutdownTimeoutMs?: number;
}

export interface TracingDeps {
  readonly logger: TracingLogger;
  /** Spans lost: for proxy_trace_spans_dropped_total{reason}. Called with counts, never blocks. */
  readonly onDropped?: (count: number, reason: SpanDropReason) => void;
  /** Draws for the sampling ratio; Math.random by default. */
  readonly random?: () => number;
}

export interface Tracing {
  /** False when no endpoint is set: every method is a no-op and the request path skips them. */
  readonly enabled: boolean;
  /**
   * At a request's arrival: continues the trace of the incoming `traceparent`/`tracestate` (or
   * starts one) with the request's SERVER span. Undefined when the request is not sampled.
   * `path` is the normalized path, `host` the request's host without port. `startTime`
   * (performance.now() at arrival) lets a caller that decides after routing start the span
   * when the request really arrived.
   */
  startRequest(
    headers: IncomingHttpHeaders,
    method: string,
    path: string,
    host: string,
    requestId: string,
    startTime?: number,
  ): RequestTrace | undefined;
  /** Sends what is queued, waiting at most shutdownTimeoutMs; later requests are not traced. */
  shutdown(): Promise<void>;
}

export interface RequestTrace {
  /** A child span of the request for one phase; the caller ends it. `startTime` as startRequest's. */
  child(phase: TracePhase, attributes?: Attributes, startTime?: number): ChildSpan;
  setAttribute(key: string, value: AttributeValue): void;
  /**
   * Writes `traceparent` (and `tracestate`) into the upstream request's headers, replacing any
   * forwarded from the client. The parent is the attempt span started last — call it right after
   * child("attempt") — or the request's span before any attempt.
   */
  inject(headers: Record<string, string | string[]>): void;
  /**
   * When the response is done. A 5xx status or an error marks the span failed, with `error.type`
   * from the error's `category` (the proxy's errors), `code` (Node's) or name.
   */
  end(status: number, route: string | undefined, error?: unknown): void;
}

export interface ChildSpan {
  setAttribute(key: string, value: AttributeValue): void;
  /** An error marks the span failed, as RequestTrace.end does. */
  end(error?: unknown): void;
}

const DEFAULTS = {
  maxQueueSize: 2048,
  maxExportBatchSize: 512,
  scheduledDelayMs: 1000,
  exportTimeoutMs: 5000,
  shutdownTimeoutMs: 5000,
} as const;

/**
 * Two exports in flight at most: the processor sends one at a time, and one more may still be
 * finishing after the processor gave up on it.
 */
const EXPORTER_CONCURRENCY = 2;

export const DISABLED_TRACING: Tracing = {
  enabled: false,
  startRequest: () => undefined,
  shutdown: () => Promise.resolve(),
};

const propagator = new W3CTraceContextPropagator();

export function createTracing(settings: TracingSettings, deps: TracingDeps): Tracing {
  if (settings.endpoint === undefined) return DISABLED_TRACING;
  return new OtelTracing(settings, settings.endpoint, deps);
}

class OtelTracing implements Tracing {
  readonly enabled = true;
  readonly #tracer: Tracer;
  readonly #processor: BoundedBatchProcessor;
  readonly #ratio: number;
  readonly #random: () => number;
  readonly #shutdownTimeoutMs: number;
  readonly #logger: TracingLogger;
  #shutdown: Promise<void> | undefined;

  constructor(settings: TracingSettings, endpoint: string, deps: TracingDeps) {
    const exportTimeoutMs = settings.exportTimeoutMs ?? DEFAULTS.exportTimeoutMs;
    const exporter = new OTLPTraceExporter({
      url: tracesUrl(endpoint),
      timeoutMillis: exportTimeoutMs,
      concurrencyLimit: EXPORTER_CONCURRENCY,
    });
    const onDropped = deps.onDropped ?? (() => {});
    this.#processor = new BoundedBatchProcessor(
      exporter,
      {
        maxQueueSize: settings.maxQueueSize ?? DEFAULTS.maxQueueSize,
        maxExportBatchSize: settings.maxExportBatchSize ?? DEFAULTS.maxExportBatchSize,
        scheduledDelayMs: settings.scheduledDelayMs ?? DEFAULTS.scheduledDelayMs,
        exportTimeoutMs,
      },
      { logger: deps.logger, onDropped },
    );
    const resource: Attributes = { "service.name": settings.serviceName };
    if (settings.serviceInstanceId !== undefined)
      resource["service.instance.id"] = settings.serviceInstanceId;
    const provider = new TracerProvider({
      resource: resourceFromAttributes(resource),
      // The decision is taken in startRequest; this only carries it from the request's span to
      // its children.
      sampler: new ParentBasedSampler({ root: new AlwaysOnSampler() }),
      spanProcessors: [this.#processor],
    });
    this.#tracer = provider.getTracer(TRACER_NAME);
    this.#ratio = settings.sampleRatio ?? DEFAULT_SAMPLE_RATIO;
    this.#random = deps.random ?? Math.random;
    this.#shutdownTimeoutMs = settings.shutdownTimeoutMs ?? DEFAULTS.shutdownTimeoutMs;
    this.#logger = deps.logger;
  }

  startRequest(
    headers: IncomingHttpHeaders,
    method: string,
    path: string,
    host: string,
    requestId: string,
    startTime?: number,
  ): RequestTrace | undefined {
    if (this.#shutdown !== undefined) return undefined;
    const parent = parentState(headers.traceparent);
    if (parent === Parent.Unsampled) return undefined;
    if (parent === Parent.Absent && !sampleNewTrace(this.#ratio, this.#random)) return undefined;
    const parentContext =
      parent === Parent.Sampled
        ? propagator.extract(ROOT_CONTEXT, headers, defaultTextMapGetter)
        : ROOT_CONTEXT;
    const known = isKnownMethod(method);
    const attributes: Attributes = {
      [TraceAttr.method]: known ? method : "_OTHER",
      [TraceAttr.path]: path,
      [TraceAttr.serverAddress]: host,
      [TraceAttr.requestId]: requestId,
    };
    if (!known) attributes[TraceAttr.methodOriginal] = method;
    const span = this.#tracer.startSpan(
      known ? method : "HTTP",
      { kind: SpanKind.SERVER, attributes, startTime },
      parentContext,
    );
    return new SampledRequest(this.#tracer, span);
  }

  shutdown(): Promise<void> {
    this.#shutdown ??= this.#close();
    return this.#shutdown;
  }

  async #close(): Promise<void> {
    const flushed = this.#processor.shutdown().then(
      () => true,
      (error: unknown) => {
        this.#logger.warn({ err: error }, "trace flush at shutdown failed");
        return true;
      },
    );
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((resolve) => {
      timer = setTimeout(resolve, this.#shutdownTimeoutMs, false);
    });
    const done = await Promise.race([flushed, timedOut]);
    clearTimeout(timer);
    if (!done) {
      this.#logger.warn(
        { timeoutMs: this.#shutdownTimeoutMs },
        "trace flush at shutdown timed out: unsent spans are lost",
      );
    }
  }
}

class SampledRequest implements RequestTrace {
  readonly #tracer: Tracer;
  readonly #span: Span;
  /** Holds the request's span: the parent of every phase. */
  readonly #context: Context;
  #attempt: Span | undefined;

  constructor(tracer: Tracer, span: Span) {
    this.#tracer = tracer;
    this.#span = span;
    this.#context = trace.setSpan(ROOT_CONTEXT, span);
  }

  child(phase: TracePhase, attributes?: Attributes, startTime?: number): ChildSpan {
    const spec = PHASE_SPANS[phase];
    const span = this.#tracer.startSpan(spec.name, { kind: spec.kind, attributes, startTime }, this.#context);
    if (phase === "attempt") this.#attempt = span;
    return new PhaseSpan(span);
  }

  setAttribute(key: string, value: AttributeValue): void {
    this.#span.setAttribute(key, value);
  }

  inject(headers: Record<string, string | string[]>): void {
    const parent = this.#attempt === undefined ? this.#context : trace.setSpan(ROOT_CONTEXT, this.#attempt);
    propagator.inject(parent, headers, defaultTextMapSetter);
  }

  end(status: number, route: string | undefined, error?: unknown): void {
    this.#span.setAttribute(TraceAttr.statusCode, status);
    if (route !== undefined) this.#span.setAttribute(TraceAttr.route, route);
    // A server's 4xx is the client's doing; the conventions mark only 5xx as the server failing,
    // with the status as error.type when there is no better one.
    if (error !== undefined) markFailed(this.#span, errorType(error));
    else if (status >= 500) markFailed(this.#span, String(status));
    this.#span.end();
  }
}

class PhaseSpan implements ChildSpan {
  readonly #span: Span;

  constructor(span: Span) {
    this.#span = span;
  }

  setAttribute(key: string, value: AttributeValue): void {
    this.#span.setAttribute(key, value);
  }

  end(error?: unknown): void {
    if (error !== undefined) markFailed(this.#span, errorType(error));
    this.#span.end();
  }
}

function markFailed(span: Span, type: string): void {
  span.setAttribute(TraceAttr.errorType, type);
  span.setStatus({ code: SpanStatusCode.ERROR });
}

/** A low-cardinality name for an error: never its message, which may carry request data. */
function errorType(error: unknown): string {
  if (typeof error === "string") return error;
  if (typeof error === "object" && error !== null) {
    if ("category" in error && typeof error.category === "string") return error.category;
    if ("code" in error && typeof error.code === "string") return error.code;
    if (error instanceof Error) return error.name;
  }
  return "_OTHER";
}

/** The OTLP/HTTP convention: a bare collector address gets the signal's path. */
function tracesUrl(endpoint: string): string {
  const url = new URL(endpoint);
  if (url.pathname === "/" || url.pathname === "") url.pathname = "/v1/traces";
  return url.href;
}
