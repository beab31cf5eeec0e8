/**
 * The request driver: the phases of a request, in order, against one snapshot.
 *
 *   read target → route → route checks (TLS, mTLS, body size) → forward upstream → record
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
import { hostOf, normalizePath } from "../router/normalize-path.js";
import type { CompiledRoute, Snapshot } from "../snapshot/snapshot.js";
import { Exchange, type ExchangeOutcome } from "./forward.js";
import { upstreamRequestHeaders } from "./headers.js";
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
  const record = (route: CompiledRoute | undefined, outcome: ExchangeOutcome, bytesIn: number) =>
    deps.accessLog.write({
      timestamp: new Date().toISOString(),
      kind: "access",
      request_id: requestId,
      method,
      path: req.url ?? "",
      host,
      route: route?.id,
      pool: route?.pool.id,
      endpoint: outcome.endpoint,
      status: outcome.status,
      duration_ms: round(performance.now() - started),
      upstream_duration_ms: outcome.upstreamMs === undefined ? undefined : round(outcome.upstreamMs),
      retries: outcome.retries,
      error: outcome.error?.category,
      bytes_in: bytesIn,
      bytes_out: outcome.bytesOut,
      config_version: snapshot?.version,
    });
  const reject = (error: ProxyErrorKind, route?: CompiledRoute) => {
    respondError(res, error, requestId);
    if (route) {
      route.metrics.status(error.status).inc();
      route.metrics.error(error.category).inc();
    }
    record(
      route,
      { status: error.status, endpoint: undefined, upstreamMs: undefined, retries: 0, error, bytesOut: 0 },
      0,
    );
  };

  const routed = routeRequest(snapshot, req, host, method);
  if ("category" in routed) {
    reject(routed, routed.route);
    return;
  }
  const { route, target, encrypted } = routed;
  const declared = req.headers["content-length"];
  const length = declared === undefined ? undefined : Number(declared);
  const limit = route.policy.bodySizeLimit;
  if (limit !== undefined && length !== undefined && length > limit) {
    reject(ProxyError.PayloadTooLarge, route);
    return;
  }

  // Forward.
  const body = requestBody(req, length, limit);
  const counter = body instanceof ByteLimit ? body : undefined;
  const exchange = new Exchange(
    route,
    route.pool,
    {
      method,
      path: target.query === "" ? target.path : `${target.path}?${target.query}`,
      headers: upstreamRequestHeaders(req.headers, {
        clientIp: req.socket.remoteAddress ?? "",
        proto: encrypted ? "https" : "http",
        host: typeof authority === "string" ? authority : "",
        requestId,
      }),
      body,
      replayable: () => body === null || !(counter ?? (body as Readable)).readableDidRead,
      hashKey: hashKeyOf(route, req),
    },
    res,
    requestId,
    (outcome) => {
      // Record.
      const metrics = route.metrics;
      const bytesIn = length ?? counter?.bytes ?? 0;
      metrics.status(outcome.status).inc();
      if (outcome.error) metrics.error(outcome.error.category).inc();
      metrics.duration.observe((performance.now() - started) / 1000);
      metrics.requestSize.observe(bytesIn);
      metrics.responseSize.observe(outcome.bytesOut);
      record(route, outcome, bytesIn);
    },
  );
  exchange.start();
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

function hashKeyOf(route: CompiledRoute, req: ClientRequest): string | undefined {
  const on = route.pool.config.hash_on;
  if (on === undefined) return undefined;
  if (on === "client_ip") return req.socket.remoteAddress;
  if (on.startsWith("header:")) {
    const value = req.headers[on.slice(7)];
    return Array.isArray(value) ? value[0] : value;
  }
  return cookie(req.headers.cookie, on.slice(7));
}

function cookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
