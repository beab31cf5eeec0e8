import { once } from "node:events";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import pino from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ProxyError } from "../errors.js";
import {
  createTracing,
  DISABLED_TRACING,
  type SpanDropReason,
  TraceAttr,
  type Tracing,
  type TracingSettings,
} from "./tracing.js";

const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN_ID = "00f067aa0ba902b7";
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/;

/** OTLP span kinds as the JSON encoding writes them. */
const KIND_INTERNAL = 1;
const KIND_SERVER = 2;
const KIND_CLIENT = 3;
const STATUS_ERROR = 2;

interface ExportedSpan {
  readonly name: string;
  readonly kind: number;
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string | undefined;
  readonly status: number | undefined;
  readonly attributes: Record<string, unknown>;
  readonly resource: Record<string, unknown>;
}

interface OtlpAttribute {
  key: string;
  value: Record<string, unknown>;
}

interface OtlpBody {
  resourceSpans: {
    resource: { attributes: OtlpAttribute[] };
    scopeSpans: {
      spans: {
        name: string;
        kind: number;
        traceId: string;
        spanId: string;
        parentSpanId?: string;
        status?: { code?: number };
        attributes: OtlpAttribute[];
      }[];
    }[];
  }[];
}

function attributeMap(attributes: OtlpAttribute[]): Record<string, unknown> {
  const map: Record<string, unknown> = {};
  for (const { key, value } of attributes) map[key] = Object.values(value)[0];
  return map;
}

/** A collector on loopback that records what the exporter posts, or never answers when `hang`. */
class FakeCollector {
  readonly paths: string[] = [];
  readonly spans: ExportedSpan[] = [];
  readonly #server: Server;

  private constructor(server: Server) {
    this.#server = server;
  }

  static async start(mode: "answer" | "hang" = "answer"): Promise<FakeCollector> {
    const server = createServer();
    const collector = new FakeCollector(server);
    server.on("request", (req, res) => {
      collector.paths.push(`${req.method} ${req.url}`);
      if (mode === "hang") return;
      const chunks: Buffer[] = [];
      req.on("data", (chunk: Buffer) => chunks.push(chunk));
      req.on("end", () => {
        collector.#record(JSON.parse(Buffer.concat(chunks).toString("utf8")) as OtlpBody);
        res.writeHead(200, { "content-type": "application/json" }).end("{}");
      });
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    return collector;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  named(name: string): ExportedSpan[] {
    return this.spans.filter((span) => span.name === name);
  }

  one(name: string): ExportedSpan {
    const found = this.named(name);
    expect(found).toHaveLength(1);
    return found[0]!;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    this.#server.close();
    await once(this.#server, "close");
  }

  #record(body: OtlpBody): void {
    for (const resourceSpans of body.resourceSpans) {
      const resource = attributeMap(resourceSpans.resource.attributes);
      for (const scope of resourceSpans.scopeSpans) {
        for (const span of scope.spans) {
          this.spans.push({
            name: span.name,
            kind: span.kind,
            traceId: span.traceId,
            spanId: span.spanId,
            parentSpanId: span.parentSpanId || undefined,
            status: span.status?.code,
            attributes: attributeMap(span.attributes),
            resource,
          });
        }
      }
    }
  }
}

/** A port nothing listens on: bound once, then closed. */
async function deadEndpoint(): Promise<string> {
  const collector = await FakeCollector.start();
  const url = collector.url;
  await collector.close();
  return url;
}

const open: { tracing: Tracing; collector?: FakeCollector }[] = [];

afterEach(async () => {
  for (const { tracing, collector } of open.splice(0)) {
    await collector?.close();
    await tracing.shutdown();
  }
});

function setup(settings: Partial<TracingSettings> & { endpoint: string }, collector?: FakeCollector) {
  const drops: Record<SpanDropReason, number> = { queue_full: 0, export_failed: 0 };
  const logs: { level: number; msg: string }[] = [];
  const logger = pino({ level: "info" }, { write: (line: string) => logs.push(JSON.parse(line)) });
  const tracing = createTracing(
    { sampleRatio: 1, serviceName: "proxy-test", scheduledDelayMs: 20, ...settings },
    {
      logger,
      onDropped: (count, reason) => {
        drops[reason] += count;
      },
    },
  );
  open.push({ tracing, collector });
  return { tracing, drops, logs };
}

async function withCollector(settings: Partial<TracingSettings> = {}) {
  const collector = await FakeCollector.start();
  return { collector, ...setup({ endpoint: `${collector.url}/v1/traces`, ...settings }, collector) };
}

function request(tracing: Tracing, headers: IncomingHttpHeaders = {}, method = "GET") {
  return tracing.startRequest(headers, method, "/api/users", "shop.example.com", "req-1");
}

describe("tracing", () => {
  it("exports a server span per request with a child per phase and HTTP attributes", async () => {
    const { collector, tracing } = await withCollector({ serviceInstanceId: "worker-1" });
    const trace = request(tracing);
    expect(trace).toBeDefined();
    trace?.child("route", { [TraceAttr.route]: "users" }).end();
    trace?.child("middleware", { [TraceAttr.middleware]: "auth" }).end();
    trace?.child("upstream_select", { [TraceAttr.pool]: "users-pool" }).end();
    trace?.child("breaker", { [TraceAttr.breakerDecision]: "allow" }).end();
    const attempt = trace?.child("attempt", { [TraceAttr.resendCount]: 0 });
    attempt?.setAttribute(TraceAttr.statusCode, 200);
    attempt?.end();
    trace?.child("cache", { [TraceAttr.cacheResult]: "miss" }).end();
    trace?.end(200, "users");
    await tracing.shutdown();

    const server = collector.one("GET");
    expect(server.kind).toBe(KIND_SERVER);
    expect(server.parentSpanId).toBeUndefined();
    expect(server.status).not.toBe(STATUS_ERROR);
    expect(server.attributes).toEqual({
      "http.request.method": "GET",
      "url.path": "/api/users",
      "server.address": "shop.example.com",
      "coherent.request_id": "req-1",
      "http.response.status_code": 200,
      "coherent.route": "users",
    });
    expect(server.resource).toMatchObject({
      "service.name": "proxy-test",
      "service.instance.id": "worker-1",
    });

    const phases = collector.spans.filter((span) => span !== server);
    expect(phases.map((span) => span.name)).toEqual([
      "proxy.route",
      "proxy.middleware",
      "proxy.upstream_select",
      "proxy.breaker",
      "proxy.attempt",
      "proxy.cache",
    ]);
    for (const phase of phases) {
      expect(phase.traceId).toBe(server.traceId);
      expect(phase.parentSpanId).toBe(server.spanId);
    }
    const exportedAttempt = collector.one("proxy.attempt");
    expect(exportedAttempt.kind).toBe(KIND_CLIENT);
    expect(exportedAttempt.attributes).toEqual({
      "http.request.resend_count": 0,
      "http.response.status_code": 200,
    });
    expect(collector.one("proxy.breaker").kind).toBe(KIND_INTERNAL);
    expect(collector.one("proxy.cache").attributes).toEqual({ "coherent.cache.result": "miss" });
  });

  it("sends on its own after the scheduled delay, to /v1/traces of a bare collector address", async () => {
    const collector = await FakeCollector.start();
    const { tracing } = setup({ endpoint: collector.url }, collector);
    request(tracing)?.end(204, undefined);
    await vi.waitFor(() => expect(collector.spans).toHaveLength(1));
    expect(collector.paths).toEqual(["POST /v1/traces"]);
  });

  it("continues the trace of an incoming sampled traceparent and keeps its tracestate", async () => {
    const { collector, tracing } = await withCollector();
    const trace = request(tracing, {
      traceparent: `00-${TRACE_ID}-${PARENT_SPAN_ID}-01`,
      tracestate: "vendor=opaque",
    });
    const upstream: Record<string, string | string[]> = {};
    trace?.inject(upstream);
    trace?.end(200, "users");
    await tracing.shutdown();

    const server = collector.one("GET");
    expect(server.traceId).toBe(TRACE_ID);
    expect(server.parentSpanId).toBe(PARENT_SPAN_ID);
    expect(upstream.tracestate).toBe("vendor=opaque");
  });

  it("honours the parent's flag over the ratio: unsampled at ratio 1, sampled at ratio 0", async () => {
    const { collector, tracing } = await withCollector({ sampleRatio: 0 });
    expect(request(tracing, { traceparent: `00-${TRACE_ID}-${PARENT_SPAN_ID}-00` })).toBeUndefined();
    expect(request(tracing)).toBeUndefined();
    request(tracing, { traceparent: `00-${TRACE_ID}-${PARENT_SPAN_ID}-01` })?.end(200, undefined);
    await tracing.shutdown();
    expect(collector.spans.map((span) => span.traceId)).toEqual([TRACE_ID]);

    const always = (await withCollector({ sampleRatio: 1 })).tracing;
    expect(request(always, { traceparent: `00-${TRACE_ID}-${PARENT_SPAN_ID}-00` })).toBeUndefined();
  });

  it("starts a new trace in place of a malformed traceparent", async () => {
    const { collector, tracing } = await withCollector();
    request(tracing, { traceparent: `00-${TRACE_ID.toUpperCase()}-${PARENT_SPAN_ID}-01` })?.end(
      200,
      undefined,
    );
    await tracing.shutdown();
    const server = collector.one("GET");
    expect(server.traceId).not.toBe(TRACE_ID);
    expect(server.parentSpanId).toBeUndefined();
  });

  it("samples new traces by the ratio, one draw per request", async () => {
    const draws = [0.1, 0.5, 0.29, 0.3];
    const collector = await FakeCollector.start();
    const tracing = createTracing(
      { endpoint: collector.url, sampleRatio: 0.3, serviceName: "proxy-test" },
      { logger: pino({ level: "silent" }), random: () => draws.shift() ?? 1 },
    );
    open.push({ tracing, collector });
    const sampled = [0, 1, 2, 3].map(() => request(tracing) !== undefined);
    expect(sampled).toEqual([true, false, true, false]);
    expect(draws).toEqual([]);
  });

  it("exports nothing at sample ratio 0", async () => {
    const { collector, tracing } = await withCollector({ sampleRatio: 0 });
    for (let i = 0; i < 100; i++) expect(request(tracing)).toBeUndefined();
    await tracing.shutdown();
    expect(collector.paths).toEqual([]);
  });

  it("injects a traceparent whose parent is the attempt started last, replacing the client's", async () => {
    const { collector, tracing } = await withCollector();
    const trace = request(tracing, { traceparent: `00-${TRACE_ID}-${PARENT_SPAN_ID}-01` });
    const beforeAttempt: Record<string, string | string[]> = {};
    trace?.inject(beforeAttempt);
    const first = trace?.child("attempt", { [TraceAttr.resendCount]: 0 });
    const firstHeaders: Record<string, string | string[]> = {
      traceparent: `00-${TRACE_ID}-${PARENT_SPAN_ID}-01`,
    };
    trace?.inject(firstHeaders);
    first?.end(new Error("reset"));
    const retry = trace?.child("attempt", { [TraceAttr.resendCount]: 1 });
    const retryHeaders: Record<string, string | string[]> = {};
    trace?.inject(retryHeaders);
    retry?.end();
    trace?.end(200, "users");
    await tracing.shutdown();

    const spanIdIn = (headers: Record<string, string | string[]>) => {
      const match = TRACEPARENT.exec(String(headers.traceparent));
      expect(match?.[1]).toBe(TRACE_ID);
      return match?.[2];
    };
    const attempts = collector.named("proxy.attempt");
    const byResend = (n: number) =>
      attempts.find((span) => span.attributes["http.request.resend_count"] === n);
    expect(spanIdIn(beforeAttempt)).toBe(collector.one("GET").spanId);
    expect(spanIdIn(firstHeaders)).toBe(byResend(0)?.spanId);
    expect(spanIdIn(retryHeaders)).toBe(byResend(1)?.spanId);
  });

  it("marks 5xx answers and errors failed, with a low-cardinality error.type", async () => {
    const { collector, tracing } = await withCollector();
    const trace = tracing.startRequest({}, "PURGE", "/x", "h", "req-2");
    const upstreamError = Object.assign(new Error("connect ECONNREFUSED 10.0.0.1:80"), {
      code: "ECONNREFUSED",
    });
    trace?.child("attempt").end(upstreamError);
    trace?.child("breaker").end(ProxyError.CircuitOpen);
    trace?.end(503, "users", ProxyError.CircuitOpen);
    request(tracing)?.end(502, undefined);
    request(tracing)?.end(404, undefined);
    await tracing.shutdown();

    const purge = collector.one("HTTP");
    expect(purge.attributes).toMatchObject({
      "http.request.method": "_OTHER",
      "http.request.method_original": "PURGE",
      "error.type": "circuit_open",
    });
    expect(purge.status).toBe(STATUS_ERROR);
    expect(collector.one("proxy.attempt").attributes["error.type"]).toBe("ECONNREFUSED");
    expect(collector.one("proxy.breaker").status).toBe(STATUS_ERROR);
    const [bad, notFound] = collector.named("GET");
    expect(bad?.attributes["error.type"]).toBe("502");
    expect(bad?.status).toBe(STATUS_ERROR);
    expect(notFound?.attributes["error.type"]).toBeUndefined();
    expect(notFound?.status).not.toBe(STATUS_ERROR);
  });

  it("is a shared no-op without an endpoint", async () => {
    const tracing = createTracing({ endpoint: undefined, serviceName: "proxy-test" }, { logger: pino() });
    expect(tracing).toBe(DISABLED_TRACING);
    expect(tracing.enabled).toBe(false);
    expect(request(tracing, { traceparent: `00-${TRACE_ID}-${PARENT_SPAN_ID}-01` })).toBeUndefined();
    await tracing.shutdown();
  });

  it("traces nothing after shutdown", async () => {
    const { collector, tracing } = await withCollector();
    await tracing.shutdown();
    expect(request(tracing)).toBeUndefined();
    expect(collector.paths).toEqual([]);
  });
});

describe("tracing with a collector that is down or hung", () => {
  it("ends 10,000 spans without waiting, keeps at most the queue and counts every lost span", async () => {
    const { tracing, drops, logs } = setup({ endpoint: await deadEndpoint(), exportTimeoutMs: 300 });
    const started = performance.now();
    for (let i = 0; i < 5000; i++) {
      const trace = request(tracing);
      trace?.child("attempt").end();
      trace?.end(200, "users");
    }
    const elapsed = performance.now() - started;
    expect(elapsed).toBeLessThan(500);
    // Nothing is exported inside the loop, so the queue (2048 by default) took the first spans
    // and every later one was dropped: held spans never exceed the bound.
    expect(drops.queue_full).toBe(10_000 - 2048);
    await vi.waitFor(() => expect(drops.export_failed).toBe(2048), { timeout: 5000 });
    expect(logs.filter((line) => /export failed/.test(line.msg))).toHaveLength(1);
    expect(logs.filter((line) => /queue full/.test(line.msg))).toHaveLength(1);
  });

  it("counts a batch the collector never answers as failed after the export timeout", async () => {
    const collector = await FakeCollector.start("hang");
    const { tracing, drops } = setup({ endpoint: collector.url, exportTimeoutMs: 100 }, collector);
    for (let i = 0; i < 3; i++) request(tracing)?.end(200, undefined);
    await vi.waitFor(() => expect(drops.export_failed).toBe(3), { timeout: 2000 });
    expect(collector.paths.length).toBeGreaterThan(0);
  });

  it("returns from shutdown within its timeout while the collector hangs", async () => {
    const collector = await FakeCollector.start("hang");
    const { tracing, logs } = setup(
      { endpoint: collector.url, exportTimeoutMs: 10_000, shutdownTimeoutMs: 200 },
      collector,
    );
    for (let i = 0; i < 600; i++) request(tracing)?.end(200, undefined);
    await vi.waitFor(() => expect(collector.paths.length).toBeGreaterThan(0));
    const started = performance.now();
    await tracing.shutdown();
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(190);
    expect(elapsed).toBeLessThan(500);
    expect(logs.map((line) => line.msg)).toContain(
      "trace flush at shutdown timed out: unsent spans are lost",
    );
  });
});
