/**
 * The names in the agent's traces: one span per request (kind SERVER, named after the method as
 * the HTTP semantic conventions name a server span without a path template) and one child per
 * phase the request goes through. Attribute keys follow the OpenTelemetry HTTP conventions where
 * one exists and are `coherent.*` otherwise — a route id is not a path template, so it is
 * `coherent.route`, not `http.route`.
 */
import { SpanKind } from "@opentelemetry/api";

export const TRACER_NAME = "coherent-proxy";

/** The child spans of a request; an `attempt` is the span the upstream sees as its parent. */
export const PHASE_SPANS = {
  route: { name: "proxy.route", kind: SpanKind.INTERNAL },
  middleware: { name: "proxy.middleware", kind: SpanKind.INTERNAL },
  upstream_select: { name: "proxy.upstream_select", kind: SpanKind.INTERNAL },
  breaker: { name: "proxy.breaker", kind: SpanKind.INTERNAL },
  attempt: { name: "proxy.attempt", kind: SpanKind.CLIENT },
  cache: { name: "proxy.cache", kind: SpanKind.INTERNAL },
} as const;

export type TracePhase = keyof typeof PHASE_SPANS;

export const TraceAttr = {
  method: "http.request.method",
  /** Set with method `_OTHER`, for a method the conventions do not list. */
  methodOriginal: "http.request.method_original",
  path: "url.path",
  serverAddress: "server.address",
  serverPort: "server.port",
  statusCode: "http.response.status_code",
  errorType: "error.type",
  /** On an attempt: 0 for the first, 1 for the first retry or hedge, and so on. */
  resendCount: "http.request.resend_count",
  route: "coherent.route",
  requestId: "coherent.request_id",
  pool: "coherent.pool",
  endpoint: "coherent.endpoint",
  middleware: "coherent.middleware",
  breakerDecision: "coherent.breaker.decision",
  cacheResult: "coherent.cache.result",
  canaryVariant: "coherent.canary_variant",
} as const;

/** The methods the HTTP conventions name; a span of any other is named `HTTP`. */
const KNOWN_METHODS: ReadonlySet<string> = new Set([
  "CONNECT",
  "DELETE",
  "GET",
  "HEAD",
  "OPTIONS",
  "PATCH",
  "POST",
  "PUT",
  "TRACE",
]);

export function isKnownMethod(method: string): boolean {
  return KNOWN_METHODS.has(method);
}
