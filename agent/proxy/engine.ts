/**
 * The request driver: the phases of a request, in order, against one snapshot (Pingora's
 * phases, each an explicit step):
 *
 *   route      read target, match a route, its checks (TLS, mTLS, body size)
 *   middleware the route's chain (auth, limits, transforms, plugins); may wait
 *   cache      serve a fresh stored answer, or join a coalesced miss; may wait
 *   admit      the route's rate limit, then its overload protection (may queue)
 *   choose     the traffic plan picks the pool; its circuit breakers admit
 *   forward    proxy/forward.ts: pick an endpoint, send, stream, retry, hedge
 *   record     access log line, metrics, outcomes for breakers, limiter, canary, cache
 *
 * Each phase hands on or ends the request with one of the proxy's errors. Nothing thrown in
 * here escapes to the server: a failure of the proxy itself answers 502.
 */

import { randomUUID } from "node:crypto";
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import type { Http2ServerRequest } from "node:http2";
import type { Readable } from "node:stream";
import type { TLSSocket } from "node:tls";
import type { CacheRequest } from "../cache/cache-request.js";
import { type CachedResponse, servedHeaderList, servedHeaders } from "../cache/cached-response.js";
import type { Capture } from "../cache/capture.js";
import type { HealthRecorder } from "../control/health-recorder.js";
import { type ErrorAnswer, ProxyError, type ProxyErrorKind } from "../errors.js";
import { applyHeaderEdits } from "../middleware/header-edits.js";
import type { MiddlewareContext, Rejection } from "../middleware/middleware.js";
import { type AccessLog, isoNow } from "../observability/access-log.js";
import type { RequestTrace, Tracing } from "../observability/tracing.js";
import type { CircuitBreaker } from "../resilience/circuit-breaker.js";
import type { ConcurrencyLimiter } from "../resilience/concurrency-limiter.js";
import { hasDuplicateHost, hostOf, normalizePath } from "../router/normalize-path.js";
import type { CompiledRoute, RouteTarget, Snapshot } from "../snapshot/snapshot.js";
import { choosePool, type RequestFacts, type TrafficVariant } from "../traffic/traffic-plan.js";
import type { PoolRuntime } from "../upstream/upstream-registry.js";
import { Exchange, type ExchangeOutcome } from "./forward.js";
import { upstreamRequestHeaders } from "./headers.js";
import { ByteLimit, requestBody } from "./request-body.js";
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
  /** Every request is access-logged; otherwise only routes whose chain has an access_log stage. */
  readonly accessLogAll: boolean;
  readonly tracing: Tracing;
  /** Counts every finished request under its snapshot's bundle version (managed agents). */
  readonly health?: HealthRecorder;
  /** Called when the proxy's own code fails; the request is answered 502 all the same. */
  readonly onInternalError: (error: unknown) => void;
}

const REQUEST_ID = /^[\x21-\x7e]{1,128}$/;

export function createRequestHandler(deps: EngineDeps): (req: ClientRequest, res: ClientResponse) => void {
  return (req, res) => {
    const started = performance.now();
    const given = req.headers["x-request-id"];
    const requestId = typeof given === "string" && REQUEST_ID.test(given) ? given : randomUUID();
    const run = new RequestRun(deps, req, res, requestId, started);
    try {
      run.route();
    } catch (error) {
      run.internalError(error);
    }
  };
}

/** Where a request goes: a pool with the route's metric series for it, and the canary variant. */
interface Target extends RouteTarget {
  readonly variant?: TrafficVariant;
}

type CacheResult = "hit" | "miss" | "bypass";

/**
 * The outcome of a request the proxy answered itself (an error, a cache hit). Built as one
 * literal with the fields in the Exchange's order, so every outcome shares one hidden class:
 * spreading a shared template (`{...template, status}`) made V8 build a new one for each
 * request, and a cache hit took 29.6 µs of CPU instead of 22–23 µs
 * (test/bench/middleware-cache.bench.ts).
 */
export function ownAnswer(status: number, error: ErrorAnswer | undefined, bytesOut: number): ExchangeOutcome {
  return { status, endpoint: undefined, upstreamMs: undefined, retries: 0, error, bytesOut };
}

/** One request on its way through the phases; fields fill in as phases pass. */
class RequestRun {
  readonly #snapshot: Snapshot | undefined;
  readonly #method: string;
  readonly #authority: string | undefined;
  readonly #host: string;
  #route: CompiledRoute | undefined;
  #target: Target | undefined;
  /** Path and query as sent upstream. */
  #path = "";
  #encrypted = false;
  #length: number | undefined;
  #upstreamHeaders: Record<string, string | string[]> | undefined;
  #trace: RequestTrace | undefined;
  #cacheRequest: CacheRequest | undefined;
  #cache: CacheResult | undefined;
  #capture: Capture | undefined;
  #invalidate = false;
  #held: ConcurrencyLimiter | undefined;
  #breakers = 0;

  constructor(
    private readonly deps: EngineDeps,
    private readonly req: ClientRequest,
    private readonly res: ClientResponse,
    private readonly requestId: string,
    private readonly started: number,
  ) {
    this.#snapshot = deps.snapshots.current;
    this.#method = req.method ?? "GET";
    const authority = req.headers.host ?? req.headers[":authority"];
    this.#authority = typeof authority === "string" ? authority : undefined;
    this.#host = hostOf(this.#authority);
  }

  // -- route ------------------------------------------------------------------------------------

  route(): void {
    const routed = routeRequest(this.#snapshot, this.req, this.#host, this.#method);
    if ("refused" in routed) {
      this.#route = routed.route;
      this.#reject(routed.refused);
      return;
    }
    const route = routed.route;
    this.#route = route;
    this.#encrypted = routed.encrypted;
    this.#path =
      routed.target.query === "" ? routed.target.path : `${routed.target.path}?${routed.target.query}`;
    if (route.chain?.traced && this.deps.tracing.enabled) {
      this.#trace = this.deps.tracing.startRequest(
        this.req.headers,
        this.#method,
        routed.target.path,
        this.#host,
        this.requestId,
        this.started,
      );
      this.#trace?.child("route", { "coherent.route": route.id }, this.started).end();
    }
    const declared = this.req.headers["content-length"];
    this.#length = declared === undefined ? undefined : Number(declared);
    const limit = route.policy.bodySizeLimit;
    if (limit !== undefined && this.#length !== undefined && this.#length > limit) {
      this.#reject(ProxyError.PayloadTooLarge);
      return;
    }
    this.#middleware(route);
  }

  // -- middleware -------------------------------------------------------------------------------

  #middleware(route: CompiledRoute): void {
    const chain = route.chain;
    if (!chain) {
      this.#lookupCache(route);
      return;
    }
    const span = this.#trace?.child("middleware", { "coherent.middleware": chain.id });
    const ctx: MiddlewareContext = {
      req: this.req,
      requestId: this.requestId,
      routeId: route.id,
      upstreamHeaders: this.#headers(),
      path: this.#path,
    };
    const result = chain.run(ctx);
    const next = (rejection: Rejection | undefined) => {
      span?.end(rejection);
      if (rejection) this.#reject(rejection);
      else this.#lookupCache(route);
    };
    if (result instanceof Promise) result.then(next).catch((error) => this.internalError(error));
    else next(result);
  }

  // -- cache ------------------------------------------------------------------------------------

  #lookupCache(route: CompiledRoute): void {
    const store = route.cache;
    if (!store) {
      this.#admit(route);
      return;
    }
    const request: CacheRequest = {
      method: this.#method,
      host: this.#host,
      path: this.#path,
      headers: this.req.headers,
    };
    this.#cacheRequest = request;
    const span = this.#trace?.child("cache");
    const found = store.lookup(request);
    span?.setAttribute("coherent.cache", found.result);
    span?.end();
    if (found.result === "hit") {
      this.#serveCached(route, found.entry);
      return;
    }
    if (found.result === "bypass") {
      this.#cache = "bypass";
      this.#invalidate = found.invalidate;
      route.cacheMetrics?.bypass.inc();
      this.#admit(route);
      return;
    }
    this.#cache = "miss";
    if (!store.policy.coalesce) {
      route.cacheMetrics?.miss.inc();
      this.#capture = store.capture(request, found.key);
      this.#admit(route);
      return;
    }
    const ticket = store.coalescer.join(found.key);
    if (ticket.leader) {
      route.cacheMetrics?.miss.inc();
      this.#capture = store.capture(request, found.key, ticket);
      this.#admit(route);
      return;
    }
    ticket.wait
      .then((outcome) => {
        if (this.res.destroyed) return;
        const again = outcome === "stored" ? store.lookup(request) : undefined;
        if (again?.result === "hit") this.#serveCached(route, again.entry);
        else {
          route.cacheMetrics?.miss.inc();
          this.#admit(route);
        }
      })
      .catch((error) => this.internalError(error));
  }

  #serveCached(route: CompiledRoute, entry: CachedResponse): void {
    this.#cache = "hit";
    route.cacheMetrics?.hit.inc();
    if (route.chain?.responseEdits || this.req.httpVersionMajor === 2) {
      // Header edits work on an object, and HTTP/2's compatibility layer takes one.
      const headers = servedHeaders(entry, Date.now()) as OutgoingHttpHeaders;
      headers["x-request-id"] = this.requestId;
      this.#decorate(headers);
      this.res.writeHead(entry.status, headers);
    } else {
      const headers = servedHeaderList(entry, Date.now());
      headers.push("x-request-id", this.requestId, "x-cache", "HIT");
      (this.res as ServerResponse).writeHead(entry.status, headers);
    }
    let bytesOut = 0;
    const body = this.#method === "HEAD" ? [] : entry.body;
    // One chunk (the usual case) goes out with the head in one write.
    const last = body.length - 1;
    for (let i = 0; i < last; i++) {
      bytesOut += (body[i] as Buffer).length;
      (this.res as { write(chunk: Buffer): boolean }).write(body[i] as Buffer);
    }
    if (last >= 0) {
      bytesOut += (body[last] as Buffer).length;
      (this.res as { end(chunk: Buffer): void }).end(body[last] as Buffer);
    } else this.res.end();
    this.#record(ownAnswer(entry.status, undefined, bytesOut), 0);
  }

  // -- admit ------------------------------------------------------------------------------------

  #admit(route: CompiledRoute): void {
    const rateLimiter = route.rateLimiter;
    if (rateLimiter) {
      const key = rateLimiter.key;
      const wait = rateLimiter.take(key === undefined ? undefined : requestKey(key, this.req));
      if (wait > 0) {
        this.#reject(ProxyError.RateLimited, { "retry-after": String(wait) });
        return;
      }
    }
    const limiter = route.limiter;
    if (!limiter || limiter.tryAcquire()) {
      this.#held = limiter;
      this.#forward(route);
      return;
    }
    const leave = () => limiter.cancel(waiter);
    const waiter = {
      grant: () => {
        this.res.off("close", leave);
        this.#held = limiter;
        if (this.res.destroyed) this.#release(false);
        else this.#forward(route);
      },
      reject: () => {
        this.res.off("close", leave);
        this.#reject(ProxyError.Overloaded);
      },
    };
    if (!limiter.enqueue(waiter)) {
      this.#reject(ProxyError.Overloaded);
      return;
    }
    this.res.once("close", leave);
  }

  // -- choose and forward ------------------------------------------------------------------------

  #forward(route: CompiledRoute): void {
    const select = this.#trace?.child("upstream_select");
    const target = chooseTarget(route, this.req);
    this.#target = target;
    select?.setAttribute("coherent.pool", target.pool.id);
    select?.end();
    const breakerSpan = target.pool.breaker || route.breaker ? this.#trace?.child("breaker") : undefined;
    const refused = admitBreakers(target.pool.breaker, route.breaker, target.pool);
    breakerSpan?.setAttribute("coherent.breaker", refused ?? "admitted");
    breakerSpan?.end();
    if (refused) {
      this.#reject(ProxyError.CircuitOpen, { "x-proxy-circuit-open": refused });
      return;
    }
    this.#breakers = 1;

    const limit = route.policy.bodySizeLimit;
    const body = requestBody(this.req, this.#length, limit);
    const counter = body instanceof ByteLimit ? body : undefined;
    const hashOn = target.pool.config.hash_on;
    const exchange = new Exchange(
      route,
      target.pool,
      {
        method: this.#method,
        path: this.#path,
        headers: this.#headers(),
        body,
        replayable: () => body === null || !(counter ?? (body as Readable)).readableDidRead,
        hashKey: hashOn === undefined ? undefined : requestKey(hashOn, this.req),
        capture: this.#capture,
        trace: this.#trace,
        decorate:
          this.#cache !== undefined || route.chain?.responseEdits ? (h) => this.#decorate(h) : undefined,
      },
      this.res,
      this.requestId,
      (outcome) => this.#record(outcome, this.#length ?? counter?.bytes ?? 0),
    );
    this.#capture = undefined; // The exchange owns it now.
    exchange.start();
  }

  // -- record -----------------------------------------------------------------------------------

  #record(outcome: ExchangeOutcome, bytesIn: number): void {
    const route = this.#route;
    const target = this.#target;
    // One clock read serves health, the limiter, metrics and the access line alike.
    const elapsedMs = performance.now() - this.started;
    this.deps.health?.record(this.#snapshot?.bundleVersion ?? 0, outcome.status, elapsedMs);
    this.#capture?.abort();
    if (route) {
      const failed = isUpstreamFailure(outcome);
      if (this.#breakers) {
        target?.pool.breaker?.done(!failed);
        route.breaker?.done(!failed);
      }
      this.#release(failed, elapsedMs);
      if (target?.variant !== undefined)
        route.traffic?.canary.record(target.variant === "canary" ? "canary" : "stable", failed);
      if (this.#invalidate && this.#cacheRequest) route.cache?.invalidate(this.#cacheRequest, outcome.status);
      const metrics = (target ?? route).metrics;
      metrics.status(outcome.status).inc();
      if (outcome.error) metrics.error(outcome.error.category).inc();
      metrics.duration.observe(elapsedMs / 1000);
      metrics.requestSize.observe(bytesIn);
      metrics.responseSize.observe(outcome.bytesOut);
    }
    this.#trace?.end(outcome.status, route?.id, outcome.error);
    if (!(this.deps.accessLogAll || route?.chain?.accessLogged)) return;
    const pool = (target ?? route)?.pool;
    this.deps.accessLog.write({
      timestamp: isoNow(),
      kind: "access",
      request_id: this.requestId,
      method: this.#method,
      path: this.req.url ?? "",
      host: this.#host,
      route: route?.id,
      pool: pool?.id,
      endpoint: outcome.endpoint,
      status: outcome.status,
      duration_ms: round(elapsedMs),
      upstream_duration_ms: outcome.upstreamMs === undefined ? undefined : round(outcome.upstreamMs),
      retries: outcome.retries,
      error: outcome.error?.category,
      bytes_in: bytesIn,
      bytes_out: outcome.bytesOut,
      cache: this.#cache,
      breaker_state: pool?.breaker?.state,
      canary_variant: target?.variant,
      config_version: this.#snapshot?.version,
    });
  }

  // -- helpers ----------------------------------------------------------------------------------

  /** Ends the request with the proxy's own answer (or a plugin's), and records it. */
  #reject(error: ErrorAnswer, headers?: Record<string, string>): void {
    respondError(this.res, error, this.requestId, headers ?? error.headers);
    this.#record(ownAnswer(error.status, error, 0), 0);
  }

  internalError(error: unknown): void {
    this.deps.onInternalError(error);
    this.#reject(ProxyError.UpstreamReset);
  }

  #release(failed: boolean, elapsedMs = performance.now() - this.started): void {
    this.#held?.release(elapsedMs, failed);
    this.#held = undefined;
  }

  /** The headers sent upstream, made when first needed (middleware edits them before forward). */
  #headers(): Record<string, string | string[]> {
    this.#upstreamHeaders ??= upstreamRequestHeaders(this.req.headers, {
      clientIp: this.req.socket.remoteAddress ?? "",
      proto: this.#encrypted ? "https" : "http",
      host: this.#authority ?? "",
      requestId: this.requestId,
    });
    return this.#upstreamHeaders;
  }

  /** Last edits to the client's response headers: the chain's response edits, X-Cache. */
  #decorate(headers: OutgoingHttpHeaders): void {
    const edits = this.#route?.chain?.responseEdits;
    if (edits) applyHeaderEdits(headers as Record<string, string | string[]>, edits);
    if (this.#cache !== undefined) headers["x-cache"] = this.#cache.toUpperCase();
  }
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

/** A request turned away before forwarding, with its route when one was chosen. */
export interface Refused {
  readonly refused: ProxyErrorKind;
  readonly route?: CompiledRoute;
}

const BAD_REQUEST: Refused = { refused: ProxyError.BadRequest };
const NO_ROUTE: Refused = { refused: ProxyError.NoRoute };

/**
 * The phases before forwarding, shared by requests and upgrades: read the target, route, and
 * check the route's transport requirements.
 */
export function routeRequest(
  snapshot: Snapshot | undefined,
  req: ClientRequest,
  host: string,
  method: string,
): Routed | Refused {
  const target = normalizePath(req.url ?? "");
  if (!target || hasDuplicateHost(req.rawHeaders)) return BAD_REQUEST;
  const index = snapshot
    ? snapshot.router.match({ host, path: target.path, method, headers: req.headers, query: target.query })
    : -1;
  const route = snapshot?.routes[index];
  if (!route) return NO_ROUTE;
  const socket = req.socket as Partial<TLSSocket>;
  const encrypted = socket.encrypted === true;
  if (route.requireTls && !encrypted) return { refused: ProxyError.TlsRequired, route };
  if (route.requireMtls && !(encrypted && socket.authorized === true))
    return { refused: ProxyError.MtlsRequired, route };
  return { route, target, encrypted };
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
