/**
 * The request driver: the phases of a request, in order, against one snapshot.
 *
 *   read target → route → route checks (TLS, mTLS, body size) → admit (rate limit, overload
 *   queue) → choose pool (traffic plan) and breakers → forward upstream → record
 *
 * Each phase either hands on or ends the request with one of the proxy's errors. Nothing
 * thrown in here escapes to the server: a failure of the proxy itself answers 502.
 */

import { randomUUID } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Http2ServerRequest } from "node:http2";
import { type Readable, Transform } from "node:stream";
import type { TLSSocket } from "node:tls";
import { ProxyError, type ProxyErrorKind } from "../errors.js";
import type { AccessLog } from "../observability/access-log.js";
import type { CircuitBreaker } from "../resilience/circuit-breaker.js";
import type { ConcurrencyLimiter } from "../resilience/concurrency-limiter.js";
import { hostOf, normalizePath } from "../router/normalize-path.js";
import type { CompiledRoute, RouteTarget, Snapshot } from "../snapshot/snapshot.js";
import { choosePool, type RequestFacts, type TrafficVariant } from "../traffic/traffic-plan.js";
import type { PoolRuntime } from "../upstream/upstream-registry.js";
import { Exchange, type ExchangeOutcome } from "./forward.js";
import { upstreamRequestHeaders } from "./headers.js";
import { cookie, header, requestKey } from "./request-key.js";
import { type ClientResponse, respondError } from "./respond.js";

export type ClientRequest = IncomingMessage | Http2ServerRequest;

export interface SnapshotSource {
  /** The snapshot requests run against now; read once per request. */
  readonly current: Snapshot | undefined;
}

export interface EngineDeps {
  readonly snapshots: SnapshotSource;
  readonly accessLog: AccessLog;
  /** Called when the proxy's own code fails; the request is answered 502 all the same. */
  readonly onInternalError: (error: unknown) => void;
}

const REQUEST_ID = /^[\x21-\x7e]{1,128}$/;

export function createRequestHandler(deps: EngineDeps): (req: ClientRequest, res: ClientResponse) => void {
  return (req, res) => {
    const started = performance.now();
    const given = req.headers["x-request-id"];
    const requestId = typeof given === "string" && REQUEST_ID.test(given) ? given : randomUUID();
    try {
      handle(deps, req, res, requestId, started);
    } catch (error) {
      deps.onInternalError(error);
      respondError(res, ProxyError.UpstreamReset, requestId);
    }
  };
}

function handle(
  deps: EngineDeps,
  req: ClientRequest,
  res: ClientResponse,
  requestId: string,
  started: number,
): void {
  const snapshot = deps.snapshots.current;
  const method = req.method ?? "GET";
  const authority = req.headers.host ?? req.headers[":authority"];
  const host = hostOf(typeof authority === "string" ? authority : undefined);
  const record = (
    route: CompiledRoute | undefined,
    target: Target | undefined,
    outcome: ExchangeOutcome,
    bytesIn: number,
  ) =>
    deps.accessLog.write({
      timestamp: new Date().toISOString(),
      kind: "access",
      request_id: requestId,
      method,
      path: req.url ?? "",
      host,
      route: route?.id,
      pool: (target ?? route)?.pool.id,
      endpoint: outcome.endpoint,
      status: outcome.status,
      duration_ms: round(performance.now() - started),
      upstream_duration_ms: outcome.upstreamMs === undefined ? undefined : round(outcome.upstreamMs),
      retries: outcome.retries,
      error: outcome.error?.category,
      bytes_in: bytesIn,
      bytes_out: outcome.bytesOut,
      breaker_state: (target ?? route)?.pool.breaker?.state,
      canary_variant: target?.variant,
      config_version: snapshot?.version,
    });
  const reject = (
    error: ProxyErrorKind,
    route?: CompiledRoute,
    headers?: Record<string, string>,
    target?: Target,
  ) => {
    respondError(res, error, requestId, headers);
    const metrics = (target ?? route)?.metrics;
    if (metrics) {
      metrics.status(error.status).inc();
      metrics.error(error.category).inc();
    }
    record(
      route,
      target,
      { status: error.status, endpoint: undefined, upstreamMs: undefined, retries: 0, error, bytesOut: 0 },
      0,
    );
  };

  const routed = routeRequest(snapshot, req, host, method);
  if ("category" in routed) {
    reject(routed, routed.route);
    return;
  }
  const { route, target: path, encrypted } = routed;
  const declared = req.headers["content-length"];
  const length = declared === undefined ? undefined : Number(declared);
  const limit = route.policy.bodySizeLimit;
  if (limit !== undefined && length !== undefined && length > limit) {
    reject(ProxyError.PayloadTooLarge, route);
    return;
  }

  // Admit: the route's rate limit, then its overload protection, which may queue the request.
  const rateLimiter = route.rateLimiter;
  if (rateLimiter) {
    const key = rateLimiter.key;
    const wait = rateLimiter.take(key === undefined ? undefined : requestKey(key, req));
    if (wait > 0) {
      reject(ProxyError.RateLimited, route, { "retry-after": String(wait) });
      return;
    }
  }
  const limiter = route.limiter;
  if (limiter && !limiter.tryAcquire()) {
    const waiter = {
      grant: () => {
        res.off("close", leave);
        if (res.destroyed) limiter.release(0, false);
        else forward(limiter);
      },
      reject: () => {
        res.off("close", leave);
        reject(ProxyError.Overloaded, route);
      },
    };
    const leave = () => limiter.cancel(waiter);
    if (!limiter.enqueue(waiter)) {
      reject(ProxyError.Overloaded, route);
      return;
    }
    res.once("close", leave);
    return;
  }
  forward(limiter);

  function forward(held: ConcurrencyLimiter | undefined): void {
    // Choose: the route's traffic plan picks the pool; then its circuit breakers admit.
    const target = chooseTarget(route, req);
    const refused = admitBreakers(target.pool.breaker, route.breaker, target.pool);
    if (refused) {
      held?.release(0, false);
      reject(ProxyError.CircuitOpen, route, { "x-proxy-circuit-open": refused }, target);
      return;
    }

    // Forward.
    const body = requestBody(req, length, limit);
    const counter = body instanceof ByteLimit ? body : undefined;
    const exchange = new Exchange(
      route,
      target.pool,
      {
        method,
        path: path.query === "" ? path.path : `${path.path}?${path.query}`,
        headers: upstreamRequestHeaders(req.headers, {
          clientIp: req.socket.remoteAddress ?? "",
          proto: encrypted ? "https" : "http",
          host: typeof authority === "string" ? authority : "",
          requestId,
        }),
        body,
        replayable: () => body === null || !(counter ?? (body as Readable)).readableDidRead,
        hashKey:
          target.pool.config.hash_on === undefined ? undefined : requestKey(target.pool.config.hash_on, req),
      },
      res,
      requestId,
      (outcome) => {
        // Record.
        const failed = isUpstreamFailure(outcome);
        target.pool.breaker?.done(!failed);
        route.breaker?.done(!failed);
        held?.release(performance.now() - started, failed);
        if (target.variant !== undefined)
          route.traffic?.canary.record(target.variant === "canary" ? "canary" : "stable", failed);
        const metrics = target.metrics;
        const bytesIn = length ?? counter?.bytes ?? 0;
        metrics.status(outcome.status).inc();
        if (outcome.error) metrics.error(outcome.error.category).inc();
        metrics.duration.observe((performance.now() - started) / 1000);
        metrics.requestSize.observe(bytesIn);
        metrics.responseSize.observe(outcome.bytesOut);
        record(route, target, outcome, bytesIn);
      },
    );
    exchange.start();
  }
}

/** Where a request goes: a pool with the route's metric series for it, and the canary variant. */
interface Target extends RouteTarget {
  readonly variant?: TrafficVariant;
}

function chooseTarget(route: CompiledRoute, req: ClientRequest): Target {
  const traffic = route.traffic;
  if (!traffic) return route;
  const choice = choosePool(traffic.plan, requestFacts(req), traffic.canary.braked, Math.random());
  const target = traffic.targets.get(choice.pool) as RouteTarget;
  return { pool: target.pool, metrics: target.metrics, variant: choice.variant };
}

function requestFacts(req: ClientRequest): RequestFacts {
  return {
    header: (name) => header(req, name),
    cookie: (name) => cookie(req, name),
    clientIp: req.socket.remoteAddress,
  };
}

/**
 * Admission by the pool's breaker, then the route policy's. Returns the refusal for the
 * X-Proxy-Circuit-Open header ("pool=ID; reason=open"), or undefined when both admitted.
 */
function admitBreakers(
  poolBreaker: CircuitBreaker | undefined,
  routeBreaker: CircuitBreaker | undefined,
  pool: PoolRuntime,
): string | undefined {
  if (poolBreaker) {
    const limitsPending = poolBreaker.settings.maxPendingRequests !== Number.POSITIVE_INFINITY;
    const admission = poolBreaker.admit(limitsPending ? pool.pending() : 0);
    if (admission !== "ok") return `pool=${pool.id}; reason=${admission}`;
  }
  if (routeBreaker) {
    const admission = routeBreaker.admit(0);
    if (admission !== "ok") {
      poolBreaker?.abandon();
      return `route; reason=${admission}`;
    }
  }
  return undefined;
}

/** A failure for breakers, overload and canaries: the upstream's 5xx, or no usable answer from it. */
function isUpstreamFailure(outcome: ExchangeOutcome): boolean {
  const error = outcome.error;
  if (error === undefined) return outcome.status >= 500;
  return (
    error === ProxyError.UpstreamConnectFailed ||
    error === ProxyError.UpstreamReset ||
    error === ProxyError.UpstreamTimeout
  );
}

export interface Routed {
  readonly route: CompiledRoute;
  readonly target: { readonly path: string; readonly query: string };
  readonly encrypted: boolean;
}

/**
 * The phases before forwarding, shared by requests and upgrades: read the target, route, and
 * check the route's transport requirements. An error carries the route when one was chosen.
 */
export function routeRequest(
  snapshot: Snapshot | undefined,
  req: ClientRequest,
  host: string,
  method: string,
): Routed | (ProxyErrorKind & { route?: CompiledRoute }) {
  const target = normalizePath(req.url ?? "");
  if (!target) return ProxyError.BadRequest;
  const index = snapshot
    ? snapshot.router.match({ host, path: target.path, method, headers: req.headers, query: target.query })
    : -1;
  const route = snapshot?.routes[index];
  if (!route) return ProxyError.NoRoute;
  const socket = req.socket as Partial<TLSSocket>;
  const encrypted = socket.encrypted === true;
  if (route.requireTls && !encrypted) return { ...ProxyError.TlsRequired, route };
  if (route.requireMtls && !(encrypted && socket.authorized === true))
    return { ...ProxyError.MtlsRequired, route };
  return { route, target, encrypted };
}

/**
 * The body to send upstream: none, the request itself, or — when a limit applies and the
 * length was not declared — the request through a counter that fails past the limit.
 */
function requestBody(
  req: ClientRequest,
  length: number | undefined,
  limit: number | undefined,
): Readable | null {
  const chunked = req.headers["transfer-encoding"] !== undefined;
  const h2Body = "stream" in req && !req.stream.endAfterHeaders && length === undefined;
  if (!(chunked || h2Body || (length !== undefined && length > 0))) return null;
  if (limit === undefined || length !== undefined) return req;
  return req.pipe(new ByteLimit(limit));
}

class ByteLimit extends Transform {
  bytes = 0;
  constructor(private readonly limit: number) {
    super();
  }
  override _transform(
    chunk: Buffer,
    _encoding: BufferEncoding,
    done: (error?: Error | null, data?: Buffer) => void,
  ) {
    this.bytes += chunk.length;
    if (this.bytes > this.limit) {
      done(
        Object.assign(new Error("request body over the route's limit"), { code: "COHERENT_BODY_TOO_LARGE" }),
      );
    } else done(null, chunk);
  }
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
