/**
 * Client helpers for tests against real servers on loopback: `request` (undici, with a
 * default deadline so a hung server fails the test instead of timing it out), `rawHttp`
 * (exact bytes over a socket, for malformed or split requests) and `wsHandshake` (a raw
 * WebSocket upgrade, then the socket is yours).
 */
import { randomBytes } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import { connect, type Socket } from "node:net";
import type { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { Agent, type Dispatcher, request as undiciRequest } from "undici";
import { websocketAccept } from "./upstream.js";

/** Long enough for any loopback exchange, short enough to fail inside a 5 s test. */
const DEFAULT_REQUEST_TIMEOUT_MS = 4_000;
const DEFAULT_RAW_TIMEOUT_MS = 2_000;

export interface RequestOptions {
  /** Default "GET". */
  readonly method?: string;
  readonly headers?: Readonly<Record<string, string | readonly string[]>>;
  readonly body?: string | Uint8Array | Readable;
  /** Default: undici's global dispatcher (keep-alive pool, system trust store). */
  readonly dispatcher?: Dispatcher;
  /** Aborts the request and its body read after this long. Default 4000 ms. */
  readonly timeoutMs?: number;
  /** Aborts the request early, e.g. to test client disconnects. */
  readonly signal?: AbortSignal;
}

export interface TestResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /**
   * The body can be read once, by one of the four readers below. Read or drain every
   * response: an unread body holds its pooled connection.
   */
  text(): Promise<string>;
  json<T = unknown>(): Promise<T>;
  bytes(): Promise<Buffer>;
  /** Reads and discards the body; resolves with its size. For large bodies. */
  drain(): Promise<number>;
}

/** An HTTP request over undici. Rejects on connection errors, resets and timeouts, never on a status. */
export async function request(url: string | URL, options: RequestOptions = {}): Promise<TestResponse> {
  const timeout = AbortSignal.timeout(options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS);
  const signal = options.signal === undefined ? timeout : AbortSignal.any([timeout, options.signal]);
  const response = await undiciRequest(url, {
    method: options.method ?? "GET",
    headers: options.headers as Record<string, string | string[]> | undefined,
    body: options.body,
    dispatcher: options.dispatcher,
    signal,
  });
  const { body } = response;
  return {
    status: response.statusCode,
    headers: response.headers,
    text: () => body.text(),
    json: <T>() => body.json() as Promise<T>,
    bytes: async () => Buffer.from(await body.arrayBuffer()),
    drain: async () => {
      let size = 0;
      for await (const chunk of body) size += (chunk as Buffer).length;
      return size;
    },
  };
}

export interface TlsAgentOptions {
  /** PEM of the CA (or self-signed cert) to trust. */
  readonly ca: string;
  /** Client certificate and key, for mTLS. */
  readonly cert?: string;
  readonly key?: string;
  /** SNI and the name the server certificate must match; default: the URL's host. */
  readonly servername?: string;
  /** Offer HTTP/2 by ALPN. Default false. */
  readonly allowH2?: boolean;
}

/** An undici Agent trusting `ca`. Close it in afterAll/afterEach. */
export function createTlsAgent(options: TlsAgentOptions): Agent {
  return new Agent({
    allowH2: options.allowH2 ?? false,
    connect: {
      ca: options.ca,
      ...(options.cert === undefined ? {} : { cert: options.cert }),
      ...(options.key === undefined ? {} : { key: options.key }),
      ...(options.servername === undefined ? {} : { servername: options.servername }),
    },
  });
}

export interface RawHttpOptions {
  /** Default "127.0.0.1". */
  readonly host?: string;
  /** Stop waiting for the server after this long and return what arrived. Default 2000 ms. */
  readonly timeoutMs?: number;
  /** When `bytes` is a list, pause this long between parts so they arrive as separate reads. */
  readonly gapMs?: number;
  /** Half-close our side after the last part. Default false: the server decides when to close. */
  readonly end?: boolean;
}

export interface RawHttpResult {
  /** Everything the server sent. */
  readonly bytes: Buffer;
  /** `bytes` as latin1, one char per byte. */
  readonly text: string;
  /** Status of the first response line, if one arrived. */
  readonly status: number | undefined;
  /** True if the server closed or reset the connection, false if the timeout ended the wait. */
  readonly closed: boolean;
  /** The socket error code, e.g. "ECONNRESET", if the connection failed. */
  readonly errorCode: string | undefined;
}

/**
 * Writes `bytes` (strings as latin1, so every char is one byte) to `host:port` and collects
 * all bytes the server sends until it closes the connection or `timeoutMs` passes.
 */
export async function rawHttp(
  port: number,
  bytes: string | Uint8Array | readonly (string | Uint8Array)[],
  options: RawHttpOptions = {},
): Promise<RawHttpResult> {
  const parts = typeof bytes === "string" || bytes instanceof Uint8Array ? [bytes] : bytes;
  const socket = connect({ host: options.host ?? "127.0.0.1", port });
  const received: Buffer[] = [];
  let errorCode: string | undefined;
  socket.on("data", (chunk: Buffer) => received.push(chunk));
  socket.on("error", (error: NodeJS.ErrnoException) => {
    errorCode ??= error.code;
  });
  const closedByServer = new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), options.timeoutMs ?? DEFAULT_RAW_TIMEOUT_MS);
    socket.once("close", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
  const writing = (async () => {
    await new Promise<void>((resolve) => socket.once("connect", resolve).once("close", resolve));
    for (const [index, part] of parts.entries()) {
      if (socket.destroyed) return;
      if (index > 0 && options.gapMs !== undefined) await sleep(options.gapMs);
      socket.write(typeof part === "string" ? Buffer.from(part, "latin1") : part);
    }
    if (options.end === true && !socket.destroyed) socket.end();
  })();
  const closed = await closedByServer;
  socket.destroy();
  await writing;
  const all = Buffer.concat(received);
  const text = all.toString("latin1");
  const match = /^HTTP\/\d(?:\.\d)? (\d{3})/.exec(text);
  return { bytes: all, text, status: match ? Number(match[1]) : undefined, closed, errorCode };
}

export interface WsHandshakeOptions {
  /** Default "127.0.0.1". */
  readonly host?: string;
  /** Reject if no complete response head arrives in time. Default 2000 ms. */
  readonly timeoutMs?: number;
}

export interface WsHandshakeResult {
  readonly status: number;
  /** Response headers, names lower-cased, repeated ones joined with ", ". */
  readonly headers: Readonly<Record<string, string>>;
  /** True if `sec-websocket-accept` matches the key we sent. */
  readonly acceptValid: boolean;
  /**
   * The connection, positioned just after the response head (bytes the server sent after it
   * are still readable) and paused. On a 101 it carries the raw tunnel; the caller destroys it.
   */
  readonly socket: Socket;
}

/**
 * A raw WebSocket upgrade: GET `path` with a fresh Sec-WebSocket-Key. `headers` are added,
 * and replace the defaults they name (e.g. `host`). Resolves with whatever status the server
 * answers, so refusals can be asserted; rejects only if no response head arrives.
 */
export async function wsHandshake(
  port: number,
  path: string,
  headers: Readonly<Record<string, string>> = {},
  options: WsHandshakeOptions = {},
): Promise<WsHandshakeResult> {
  const host = options.host ?? "127.0.0.1";
  const key = randomBytes(16).toString("base64");
  const fields = new Map<string, string>([
    ["host", `Host: ${host}:${port}`],
    ["upgrade", "Upgrade: websocket"],
    ["connection", "Connection: Upgrade"],
    ["sec-websocket-key", `Sec-WebSocket-Key: ${key}`],
    ["sec-websocket-version", "Sec-WebSocket-Version: 13"],
  ]);
  for (const [name, value] of Object.entries(headers)) fields.set(name.toLowerCase(), `${name}: ${value}`);
  const socket = connect({ host, port });
  socket.write(`GET ${path} HTTP/1.1\r\n${[...fields.values()].join("\r\n")}\r\n\r\n`);

  const head = await new Promise<Buffer>((resolve, reject) => {
    let buffered = Buffer.alloc(0);
    const fail = (error: Error): void => {
      cleanup();
      socket.destroy();
      reject(error);
    };
    const timer = setTimeout(
      () =>
        fail(
          new Error(`wsHandshake: no response head within ${options.timeoutMs ?? DEFAULT_RAW_TIMEOUT_MS} ms`),
        ),
      options.timeoutMs ?? DEFAULT_RAW_TIMEOUT_MS,
    );
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf("\r\n\r\n");
      if (end === -1) return;
      cleanup();
      socket.pause();
      // Bytes past the head belong to the tunnel; put them back for the caller to read.
      if (end + 4 < buffered.length) socket.unshift(buffered.subarray(end + 4));
      resolve(buffered.subarray(0, end));
    };
    const onError = (error: Error): void => fail(error);
    const onClose = (): void => fail(new Error("wsHandshake: connection closed before a response head"));
    const cleanup = (): void => {
      clearTimeout(timer);
      socket.off("data", onData).off("error", onError).off("close", onClose);
    };
    socket.on("data", onData).on("error", onError).on("close", onClose);
  });
  // The caller owns the socket now; keep a late reset from becoming an uncaught error.
  socket.on("error", () => {});

  const [statusLine = "", ...lines] = head.toString("latin1").split("\r\n");
  const responseHeaders: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    responseHeaders[name] = name in responseHeaders ? `${responseHeaders[name]}, ${value}` : value;
  }
  const status = Number(/^HTTP\/\d(?:\.\d)? (\d{3})/.exec(statusLine)?.[1] ?? Number.NaN);
  return {
    status,
    headers: responseHeaders,
    acceptValid: responseHeaders["sec-websocket-accept"] === websocketAccept(key),
    socket,
  };
}

/**
 * Reads exactly `count` bytes from `socket` (leaving any surplus readable); rejects if the
 * socket ends first or `timeoutMs` (default 2000) passes.
 */
export function readBytes(
  socket: Socket,
  count: number,
  timeoutMs = DEFAULT_RAW_TIMEOUT_MS,
): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const finish = (error: Error | undefined, data?: Buffer): void => {
      clearTimeout(timer);
      socket.off("readable", tryRead).off("end", onEnd).off("close", onEnd);
      socket.pause();
      if (error) reject(error);
      else resolve(data!);
    };
    const tryRead = (): void => {
      const data = socket.read(count) as Buffer | null;
      // At end of stream read() hands back a short remainder instead of null.
      if (data !== null && data.length < count)
        finish(new Error(`readBytes: socket ended after ${data.length} of ${count} bytes`));
      else if (data !== null) finish(undefined, data);
    };
    const onEnd = (): void => finish(new Error(`readBytes: socket ended before ${count} bytes`));
    const timer = setTimeout(
      () => finish(new Error(`readBytes: fewer than ${count} bytes within ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.on("readable", tryRead).on("end", onEnd).on("close", onEnd);
    tryRead();
  });
}
