/**
 * Real upstream servers on loopback for proxy tests: `startUpstream()` listens on
 * 127.0.0.1 port 0 and, by default, answers every request 200 with a JSON echo of what it
 * received, so a test can assert exactly what the proxy forwarded. Its behaviour (status,
 * delays, hangs, resets, injected failures, slow or large bodies) is chosen at start and can
 * be replaced at any time with `setBehaviour`; a request reads the behaviour once, on arrival.
 *
 * Request bodies are counted, never buffered, and generated response bodies are produced
 * chunk by chunk, so multi-megabyte transfers cost no memory. `close()` destroys every open
 * connection, hung or upgraded ones included, so it never waits on a client.
 */
import { createHash } from "node:crypto";
import {
  createServer as createHttpServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type Server,
  type ServerResponse,
} from "node:http";
import {
  createSecureServer as createHttp2SecureServer,
  Http2ServerRequest,
  type Http2ServerResponse,
  constants as http2Constants,
} from "node:http2";
import { createServer as createHttpsServer } from "node:https";
import {
  type AddressInfo,
  createServer as createNetServer,
  type Server as NetServer,
  type Socket,
} from "node:net";
import type { Duplex, Readable, Writable } from "node:stream";
import { finished } from "node:stream/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { TLSSocket } from "node:tls";

/** A generated response body; with `intervalMs` it is a slow body. */
export interface StreamedBody {
  /** Total body size in bytes. Byte `i` of the body is `streamedByteAt(i)`. */
  readonly bytes: number;
  /** Bytes per write. Default 16 KiB. */
  readonly chunkBytes?: number;
  /** Pause before every chunk after the first. Default 0: as fast as the client reads. */
  readonly intervalMs?: number;
  /** Omit `content-length`, so HTTP/1.1 uses chunked encoding. Default false. */
  readonly chunked?: boolean;
}

/** Answers a seeded share of requests with a 5xx instead of the normal behaviour. */
export interface InjectedFailures {
  /** 0–100. */
  readonly percent: number;
  /** The same seed and arrival order give the same sequence of failures. Default 1. */
  readonly seed?: number;
  /** Statuses to pick from, also seeded. Default [500, 502, 503]. */
  readonly statuses?: readonly number[];
}

/**
 * What the upstream does with each request, in this order: count the request body to its
 * end; `hang` or `reset` if asked; draw from `fail`; wait `delayMs`; send status and headers;
 * send the body (`stream`, else `body`, else the JSON echo), cutting it at `resetAfterBytes`.
 * Every field is optional; `{}` is the default echo.
 */
export interface UpstreamBehaviour {
  /** Default 200. */
  readonly status?: number;
  /** Extra response headers; they override the defaults (content-type, x-upstream). */
  readonly headers?: Readonly<Record<string, string>>;
  /** A fixed body instead of the echo. */
  readonly body?: string | Uint8Array;
  /** A generated body instead of the echo. */
  readonly stream?: StreamedBody;
  /** Wait before sending the status line. */
  readonly delayMs?: number;
  /** Never answer; the connection stays open until the client gives up or the upstream closes. */
  readonly hang?: boolean;
  /**
   * Reset instead of answering: a TCP RST on plain HTTP/1.1, a close on TLS, an RST_STREAM
   * (INTERNAL_ERROR) on HTTP/2, where the connection and its other streams survive.
   */
  readonly reset?: boolean;
  /** Send the headers and this many body bytes, then close the connection (HTTP/2: reset the stream). */
  readonly resetAfterBytes?: number;
  readonly fail?: InjectedFailures;
  /** Accept WebSocket upgrades and echo the raw bytes back. Default true; false answers 400. */
  readonly websocket?: boolean;
}

export interface UpstreamTls {
  readonly certPem: string;
  readonly keyPem: string;
  /** Require a client certificate issued by this CA (mTLS); the handshake fails without one. */
  readonly clientCaPem?: string;
}

export interface StartUpstreamOptions extends UpstreamBehaviour {
  /** Reported in the echo and `x-upstream`. Default: the upstream's address, "127.0.0.1:PORT". */
  readonly name?: string;
  /** Serve HTTPS with this certificate. */
  readonly tls?: UpstreamTls;
  /** Serve HTTP/2 over TLS (ALPN "h2"), still accepting HTTP/1.1. Requires `tls`. */
  readonly http2?: boolean;
}

export interface RecordedTls {
  /** SNI the client sent, or null. */
  readonly servername: string | null;
  readonly alpnProtocol: string | null;
  /** Subject CN of the verified client certificate (mTLS), or null. */
  readonly clientCommonName: string | null;
}

/** One request as the upstream saw it. Recorded when its headers arrive. */
export interface RecordedRequest {
  readonly method: string;
  /** The raw request target, e.g. "/a/b?x=1" (HTTP/2: the `:path`). */
  readonly path: string;
  /** "1.1" or "2.0". */
  readonly httpVersion: string;
  /** Lower-cased names; on HTTP/2 including pseudo-headers such as ":authority". */
  readonly headers: IncomingHttpHeaders;
  /** Names as sent, duplicates kept: [name, value, name, value, …]. */
  readonly rawHeaders: readonly string[];
  /** Body bytes received so far; final once `bodyComplete`. */
  readonly bodyBytes: number;
  readonly bodyComplete: boolean;
  /** A WebSocket (or other) upgrade request. */
  readonly upgrade: boolean;
  /**
   * 1 for the first connection that carried a request, 2 for the next, …: two requests with
   * the same id shared a connection (HTTP/2: a session).
   */
  readonly connectionId: number;
  /** Present on the TLS variant. */
  readonly tls?: RecordedTls;
}

/** The JSON body of the default echo response. */
export interface EchoBody {
  readonly method: string;
  readonly path: string;
  readonly httpVersion: string;
  readonly headers: IncomingHttpHeaders;
  readonly bodyBytes: number;
  readonly upstream: string;
}

export interface Upstream {
  readonly name: string;
  /** "http://127.0.0.1:PORT" or "https://127.0.0.1:PORT". */
  readonly url: string;
  readonly port: number;
  /** "127.0.0.1:PORT", the form a pool endpoint takes. */
  readonly address: string;
  /** Every request so far, oldest first; live. Clear with `requests.length = 0`. */
  readonly requests: RecordedRequest[];
  /** TCP connections accepted so far (TLS ones counted before the handshake). */
  readonly connections: number;
  /** Replaces the whole behaviour for requests that arrive from now on (and restarts `fail`'s sequence). */
  setBehaviour(behaviour: UpstreamBehaviour): void;
  /** Resolves once `requests.length >= count`; rejects after `timeoutMs` (default 2000). */
  waitForRequests(count: number, timeoutMs?: number): Promise<void>;
  /** Idempotent. Destroys every connection, then stops listening. */
  close(): Promise<void>;
}

const DEFAULT_CHUNK_BYTES = 16 * 1024;
const DEFAULT_FAILURE_STATUSES: readonly number[] = [500, 502, 503];
const WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const PATTERN_PERIOD = 251;

/** Byte `offset` of every generated (`stream`) body: a prime-period pattern, so shifted or dropped chunks show. */
export function streamedByteAt(offset: number): number {
  return offset % PATTERN_PERIOD;
}

/** The first `bytes` bytes of a generated body, for comparing small bodies exactly. */
export function streamedBody(bytes: number, offset = 0): Buffer {
  const out = Buffer.allocUnsafe(bytes);
  for (let i = 0; i < bytes; i++) out[i] = streamedByteAt(offset + i);
  return out;
}

/** The `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key` (RFC 6455 §4.2.2). */
export function websocketAccept(key: string): string {
  return createHash("sha1").update(`${key}${WEBSOCKET_GUID}`).digest("base64");
}

/**
 * An address where nothing listens, for "endpoint down" tests: binds port 0, reads the port,
 * closes. Another process could take the port later, which loopback tests can ignore.
 */
export async function refusedAddress(): Promise<string> {
  const server = createNetServer();
  await listen(server);
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `127.0.0.1:${port}`;
}

/** Starts an upstream; call `close()` in afterEach/afterAll. */
export async function startUpstream(options: StartUpstreamOptions = {}): Promise<Upstream> {
  const { name: givenName, tls, http2, ...initial } = options;
  if (http2 === true && tls === undefined) {
    throw new TypeError(
      "startUpstream: http2 needs tls (h2 is negotiated by ALPN), pass tls: { certPem, keyPem }",
    );
  }
  let behaviour = compileBehaviour(initial);
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  const connectionIds = new WeakMap<object, number>();
  let connectionsCarryingRequests = 0;
  let accepted = 0;
  const lifetime = new AbortController();
  const waiters = new Set<() => void>();
  let name = givenName ?? "";

  const tlsOptions =
    tls === undefined
      ? undefined
      : {
          cert: tls.certPem,
          key: tls.keyPem,
          ...(tls.clientCaPem === undefined
            ? {}
            : { ca: tls.clientCaPem, requestCert: true, rejectUnauthorized: true }),
        };
  const server: NetServer =
    tlsOptions === undefined
      ? createHttpServer()
      : http2 === true
        ? createHttp2SecureServer({ ...tlsOptions, allowHTTP1: true })
        : createHttpsServer(tlsOptions);

  server.on("connection", (socket: Socket) => {
    accepted++;
    sockets.add(socket);
    // Clients in these tests abort and reset on purpose; their socket errors are expected.
    socket.on("error", () => {});
    socket.once("close", () => sockets.delete(socket));
  });
  server.on("session", (session: { on(event: "error", listener: () => void): void }) => {
    session.on("error", () => {});
  });

  const record = (request: IncomingMessage | Http2ServerRequest, upgrade: boolean): MutableRecord => {
    const connection = request instanceof Http2ServerRequest ? request.stream.session : request.socket;
    const key: object = connection ?? request;
    let connectionId = connectionIds.get(key);
    if (connectionId === undefined) {
      connectionId = ++connectionsCarryingRequests;
      connectionIds.set(key, connectionId);
    }
    const entry: MutableRecord = {
      method: request.method ?? "",
      path: request.url ?? "",
      httpVersion: request.httpVersion,
      headers: request.headers,
      rawHeaders: request.rawHeaders,
      bodyBytes: 0,
      bodyComplete: upgrade,
      upgrade,
      connectionId,
    };
    const tlsSocket = tlsSocketOf(request);
    if (tlsSocket !== undefined) entry.tls = describeTls(tlsSocket);
    requests.push(entry);
    for (const wake of waiters) wake();
    return entry;
  };

  const onRequest = (
    request: IncomingMessage | Http2ServerRequest,
    response: ServerResponse | Http2ServerResponse,
  ): void => {
    const current = behaviour;
    const entry = record(request, false);
    const exchange =
      request instanceof Http2ServerRequest
        ? http2Exchange(request, response as Http2ServerResponse)
        : http1Exchange(request as IncomingMessage, response as ServerResponse);
    const signal = AbortSignal.any([lifetime.signal, exchange.closed]);
    request.on("error", () => {});
    response.on("error", () => {});
    request.on("data", (chunk: Buffer) => {
      entry.bodyBytes += chunk.length;
    });
    // Drawn on arrival, not after the body, so the sequence follows request order.
    const failStatus = current.drawFailure();
    serve(exchange, entry, current, failStatus, name, signal).catch(() => exchange.reset(false));
  };
  server.on("request", onRequest);

  server.on("upgrade", (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    const current = behaviour;
    record(request, true);
    socket.on("error", () => {});
    upgrade(request, socket, head, current, name, lifetime.signal).catch(() => socket.destroy());
  });

  await listen(server);
  const { port } = server.address() as AddressInfo;
  const address = `127.0.0.1:${port}`;
  if (name === "") name = address;
  let closing: Promise<void> | undefined;

  return {
    name,
    url: `${tls === undefined ? "http" : "https"}://${address}`,
    port,
    address,
    requests,
    get connections() {
      return accepted;
    },
    setBehaviour(next) {
      behaviour = compileBehaviour(next);
    },
    waitForRequests(count, timeoutMs = 2000) {
      if (requests.length >= count) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(wake);
          reject(
            new Error(`upstream ${name}: ${requests.length} of ${count} requests after ${timeoutMs} ms`),
          );
        }, timeoutMs);
        const wake = (): void => {
          if (requests.length < count) return;
          clearTimeout(timer);
          waiters.delete(wake);
          resolve();
        };
        waiters.add(wake);
      });
    },
    close() {
      closing ??= (async () => {
        lifetime.abort(new Error(`upstream ${name} closed`));
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const socket of sockets) socket.destroy();
        await stopped;
      })();
      return closing;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Behaviour

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
type MutableRecord = Mutable<RecordedRequest>;

interface CompiledBehaviour {
  readonly spec: UpstreamBehaviour;
  /** The failure status for the next request, or undefined to serve it normally. */
  drawFailure(): number | undefined;
}

function compileBehaviour(spec: UpstreamBehaviour): CompiledBehaviour {
  const issues: string[] = [];
  const nonNegative = (field: string, value: number | undefined): void => {
    if (value !== undefined && !(Number.isInteger(value) && value >= 0)) {
      issues.push(`${field}: ${value} is not a non-negative integer`);
    }
  };
  nonNegative("delayMs", spec.delayMs);
  nonNegative("resetAfterBytes", spec.resetAfterBytes);
  nonNegative("stream.bytes", spec.stream?.bytes);
  nonNegative("stream.intervalMs", spec.stream?.intervalMs);
  if (
    spec.stream?.chunkBytes !== undefined &&
    !(Number.isInteger(spec.stream.chunkBytes) && spec.stream.chunkBytes > 0)
  ) {
    issues.push(`stream.chunkBytes: ${spec.stream.chunkBytes} is not a positive integer`);
  }
  if (
    spec.status !== undefined &&
    !(Number.isInteger(spec.status) && spec.status >= 200 && spec.status <= 599)
  ) {
    issues.push(`status: ${spec.status} is outside 200–599`);
  }
  if (spec.body !== undefined && spec.stream !== undefined) issues.push("body: set body or stream, not both");
  if (spec.hang === true && spec.reset === true) issues.push("hang: set hang or reset, not both");
  const fail = spec.fail;
  if (fail !== undefined) {
    if (!(fail.percent >= 0 && fail.percent <= 100))
      issues.push(`fail.percent: ${fail.percent} is outside 0–100`);
    if (fail.statuses !== undefined && fail.statuses.length === 0) {
      issues.push("fail.statuses: empty, omit it for [500, 502, 503]");
    }
  }
  if (issues.length > 0) throw new TypeError(`invalid upstream behaviour: ${issues.join("; ")}`);

  if (fail === undefined || fail.percent === 0) return { spec, drawFailure: () => undefined };
  const random = mulberry32(fail.seed ?? 1);
  const statuses = fail.statuses ?? DEFAULT_FAILURE_STATUSES;
  return {
    spec,
    drawFailure() {
      if (random() * 100 >= fail.percent) return undefined;
      return statuses[Math.floor(random() * statuses.length)];
    },
  };
}

// A small seeded PRNG (mulberry32): reproducible failure sequences without a dependency.
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function serve(
  exchange: Exchange,
  entry: MutableRecord,
  behaviour: CompiledBehaviour,
  failStatus: number | undefined,
  name: string,
  signal: AbortSignal,
): Promise<void> {
  const spec = behaviour.spec;
  await finished(exchange.request as Readable, { signal });
  entry.bodyComplete = true;
  if (spec.hang === true) return;
  if (spec.reset === true) {
    exchange.reset(true);
    return;
  }
  if (spec.delayMs !== undefined && spec.delayMs > 0) await sleep(spec.delayMs, undefined, { signal });

  const status = failStatus ?? spec.status ?? 200;
  const headers: OutgoingHttpHeaders = { "x-upstream": name };
  let body: Uint8Array | StreamedBody;
  if (failStatus !== undefined) {
    headers["content-type"] = "application/json";
    body = Buffer.from(JSON.stringify({ error: "injected failure", status: failStatus, upstream: name }));
  } else if (spec.stream !== undefined) {
    headers["content-type"] = "application/octet-stream";
    body = spec.stream;
  } else if (spec.body !== undefined) {
    headers["content-type"] =
      typeof spec.body === "string" ? "text/plain; charset=utf-8" : "application/octet-stream";
    body = typeof spec.body === "string" ? Buffer.from(spec.body) : spec.body;
  } else {
    headers["content-type"] = "application/json";
    const echo: EchoBody = {
      method: entry.method,
      path: entry.path,
      httpVersion: entry.httpVersion,
      headers: entry.headers,
      bodyBytes: entry.bodyBytes,
      upstream: name,
    };
    body = Buffer.from(JSON.stringify(echo));
  }
  if (failStatus === undefined) Object.assign(headers, spec.headers);

  const bodyAllowed = status !== 204 && status !== 304;
  const length = body instanceof Uint8Array ? body.byteLength : body.bytes;
  const chunked = !(body instanceof Uint8Array) && body.chunked === true;
  if (bodyAllowed && !chunked) headers["content-length"] = String(length);
  exchange.respond(status, headers);
  if (!bodyAllowed || entry.method === "HEAD") {
    exchange.end();
    return;
  }

  // A failure response is always whole: the injected fault is the status, not the transport.
  const cutAt = failStatus === undefined ? spec.resetAfterBytes : undefined;
  const limit = cutAt === undefined ? length : Math.min(cutAt, length);
  if (body instanceof Uint8Array) {
    if (limit > 0) await exchange.write(body.subarray(0, limit), signal);
  } else {
    await writeGenerated(exchange, body, limit, signal);
  }
  if (cutAt === undefined) exchange.end();
  else exchange.reset(false);
}

async function writeGenerated(
  exchange: Exchange,
  body: StreamedBody,
  limit: number,
  signal: AbortSignal,
): Promise<void> {
  const chunkBytes = body.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  // One pattern buffer per response; every chunk is a view into it at the right phase.
  const pattern = streamedBody(chunkBytes + PATTERN_PERIOD);
  for (let offset = 0; offset < limit; offset += chunkBytes) {
    if (offset > 0 && body.intervalMs !== undefined && body.intervalMs > 0) {
      await sleep(body.intervalMs, undefined, { signal });
    }
    const size = Math.min(chunkBytes, limit - offset);
    const phase = offset % PATTERN_PERIOD;
    await exchange.write(pattern.subarray(phase, phase + size), signal);
  }
}

async function upgrade(
  request: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  behaviour: CompiledBehaviour,
  name: string,
  signal: AbortSignal,
): Promise<void> {
  const spec = behaviour.spec;
  if (spec.hang === true) return;
  if (spec.reset === true) {
    resetSocket(socket);
    return;
  }
  if (spec.delayMs !== undefined && spec.delayMs > 0) await sleep(spec.delayMs, undefined, { signal });
  const key = request.headers["sec-websocket-key"];
  const isWebSocket = request.headers.upgrade?.toLowerCase() === "websocket" && typeof key === "string";
  if (spec.websocket === false || !isWebSocket) {
    const reason = isWebSocket ? "websocket disabled" : "only websocket upgrades are supported";
    socket.end(
      `HTTP/1.1 400 Bad Request\r\nx-upstream: ${name}\r\nconnection: close\r\ncontent-type: text/plain\r\ncontent-length: ${reason.length}\r\n\r\n${reason}`,
    );
    return;
  }
  const lines = [
    "HTTP/1.1 101 Switching Protocols",
    "Upgrade: websocket",
    "Connection: Upgrade",
    `Sec-WebSocket-Accept: ${websocketAccept(key)}`,
    `x-upstream: ${name}`,
  ];
  // Agree to the first offered subprotocol, as a server that supports all of them would.
  const protocol = request.headers["sec-websocket-protocol"]?.split(",")[0]?.trim();
  if (protocol !== undefined && protocol !== "") lines.push(`Sec-WebSocket-Protocol: ${protocol}`);
  socket.write(`${lines.join("\r\n")}\r\n\r\n`);
  // Raw echo, no framing: whatever the client sends (frames included) comes straight back.
  if (head.length > 0) socket.write(head);
  socket.pipe(socket);
}

// ---------------------------------------------------------------------------------------------
// One request/response pair, the same shape over HTTP/1.1 and HTTP/2.

interface Exchange {
  readonly request: IncomingMessage | Http2ServerRequest;
  /** Aborted when the response closes: finished, or the client went away. */
  readonly closed: AbortSignal;
  respond(status: number, headers: OutgoingHttpHeaders): void;
  /** Resolves once the chunk is handed to the connection, so a later reset cannot drop it. */
  write(chunk: Uint8Array, signal: AbortSignal): Promise<void>;
  end(): void;
  /** `abrupt`: a TCP RST where possible rather than an orderly close. */
  reset(abrupt: boolean): void;
}

function http1Exchange(request: IncomingMessage, response: ServerResponse): Exchange {
  return {
    request,
    closed: closedSignal(response),
    respond: (status, headers) => {
      response.writeHead(status, headers);
    },
    write: (chunk, signal) => writeChunk(response, chunk, signal),
    end: () => {
      response.end();
    },
    reset: (abrupt) => {
      if (abrupt) resetSocket(request.socket);
      else request.socket.destroy();
    },
  };
}

function http2Exchange(request: Http2ServerRequest, response: Http2ServerResponse): Exchange {
  return {
    request,
    closed: closedSignal(response),
    respond: (status, headers) => {
      response.writeHead(status, headers);
    },
    write: (chunk, signal) => writeChunk(response, chunk, signal),
    end: () => {
      response.end();
    },
    reset: () => {
      request.stream.close(http2Constants.NGHTTP2_INTERNAL_ERROR);
    },
  };
}

function closedSignal(response: Writable): AbortSignal {
  const controller = new AbortController();
  response.once("close", () => controller.abort(new Error("response closed")));
  return controller.signal;
}

function writeChunk(out: Writable, chunk: Uint8Array, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    out.write(chunk, (error) => {
      signal.removeEventListener("abort", onAbort);
      if (error) reject(error);
      else resolve();
    });
  });
}

function resetSocket(socket: Duplex): void {
  // resetAndDestroy needs the TCP handle itself; a TLS socket can only be closed.
  if (socket instanceof TLSSocket || !("resetAndDestroy" in socket)) socket.destroy();
  else (socket as Socket).resetAndDestroy();
}

function tlsSocketOf(request: IncomingMessage | Http2ServerRequest): TLSSocket | undefined {
  const socket = request instanceof Http2ServerRequest ? request.stream.session?.socket : request.socket;
  return socket instanceof TLSSocket ? socket : undefined;
}

function describeTls(socket: TLSSocket): RecordedTls {
  const servername: unknown = socket.servername;
  const alpn: unknown = socket.alpnProtocol;
  const cn: unknown = socket.authorized ? socket.getPeerCertificate().subject?.CN : undefined;
  return {
    servername: typeof servername === "string" ? servername : null,
    alpnProtocol: typeof alpn === "string" ? alpn : null,
    clientCommonName: typeof cn === "string" ? cn : null,
  };
}

function listen(server: NetServer | Server): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
}
