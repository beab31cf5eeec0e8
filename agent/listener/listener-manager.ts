/**
 * The listening sockets, reconciled with each config: a listener keyed by its address stays
 * open across swaps (its timeouts updated in place), a new one is opened before the swap, and
 * a removed one is closed after it. HTTPS listeners negotiate HTTP/2 or HTTP/1.1 by ALPN and
 * pick certificates by SNI from the current TLS material, so certificate changes need no
 * restart.
 */

import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { createServer as createHttpServer, type Server as HttpServer, type ServerOptions } from "node:http";
import { createSecureServer, type Http2SecureServer } from "node:http2";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import type { Duplex } from "node:stream";
import type { Listener } from "../../services/config/index.js";
import type { Logger } from "../../services/telemetry/logger.js";
import { ProxyError, type ProxyErrorKind } from "../errors.js";
import type { ClientRequest } from "../proxy/engine.js";
import { type ClientResponse, writeRawError } from "../proxy/respond.js";
import { contextFor, type TlsMaterial } from "./tls-material.js";

/** Process-wide defaults, from the static config. */
export interface ListenerDefaults {
  readonly readHeaderTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly maxHeaderSize: number;
}

/**
 * How often Node checks header and request deadlines. Its default (30 s) would let a slow
 * client hold a connection far past `read_header_timeout`.
 */
const CHECK_INTERVAL_MS = 500;

export const LISTENER_DEFAULTS: ListenerDefaults = {
  readHeaderTimeoutMs: 10_000,
  idleTimeoutMs: 90_000,
  maxHeaderSize: 16_384,
};

export interface Handlers {
  readonly request: (req: ClientRequest, res: ClientResponse) => void;
  readonly upgrade: (req: ClientRequest, socket: Duplex, head: Buffer) => void;
}

export interface BoundListener {
  readonly address: string;
  readonly protocol: "http" | "https";
  readonly host: string;
  readonly port: number;
}

type AnyServer = HttpServer | HttpsServer | Http2SecureServer;

interface Open {
  readonly config: Listener;
  /** Settings that can only be set when the server is made. */
  readonly fixed: string;
  readonly server: AnyServer;
  readonly sockets: Set<Duplex>;
  readonly bound: BoundListener;
}

export class ListenerError extends Error {
  constructor(
    readonly address: string,
    cause: Error,
  ) {
    super(`cannot listen on ${address}: ${cause.message}`, { cause });
  }
}

export class ListenerManager {
  readonly #open = new Map<string, Open>();
  #tls: TlsMaterial | undefined;
  #accepting = true;

  constructor(
    private readonly handlers: Handlers,
    private readonly defaults: ListenerDefaults,
    private readonly logger: Logger,
  ) {}

  /**
   * Opens what `listeners` adds and updates what stays. Returns a commit step that closes
   * what is gone, to run after the swap. When a socket cannot be opened, closes the ones this
   * call opened and throws ListenerError: nothing changes.
   */
  async reconcile(
    listeners: readonly Listener[],
    tls: TlsMaterial | undefined,
  ): Promise<() => Promise<void>> {
    const opened: Open[] = [];
    const replaced: Open[] = [];
    const previousTls = this.#tls;
    this.#tls = tls;
    try {
      for (const config of listeners) {
        const fixed = fixedSettings(config, tls, this.defaults);
        const current = this.#open.get(config.address);
        if (current && current.fixed === fixed) {
          applyTimeouts(current.server, config, this.defaults);
          continue;
        }
        // A protocol, header-size or client-certificate change needs a new server; the old one
        // must release the address first.
        if (current) {
          await closeServer(current, 0);
          this.#open.delete(config.address);
          replaced.push(current);
        }
        const open = await this.#listen(config, fixed);
        opened.push(open);
        this.#open.set(config.address, open);
      }
    } catch (error) {
      this.#tls = previousTls;
      for (const open of opened) {
        this.#open.delete(open.config.address);
        await closeServer(open, 0);
      }
      throw error;
    }
    this.#refreshDefaultCertificates();
    const wanted = new Set(listeners.map((l) => l.address));
    return async () => {
      const gone = [...this.#open.values()].filter((open) => !wanted.has(open.config.address));
      for (const open of gone) this.#open.delete(open.config.address);
      await Promise.all(gone.map((open) => closeServer(open, 30_000)));
    };
  }

  bound(): BoundListener[] {
    return [...this.#open.values()].map((open) => open.bound);
  }

  /**
   * Shutdown: no new connections, and every response from now on asks the client to close
   * its connection, so keep-alive clients move elsewhere.
   */
  stopAccepting(): void {
    this.#accepting = false;
    for (const open of this.#open.values()) open.server.close();
  }

  /** Shutdown: closes keep-alive connections that have no request in progress. */
  closeIdle(): void {
    for (const open of this.#open.values()) {
      if ("closeIdleConnections" in open.server) open.server.closeIdleConnections();
    }
  }

  /** Connections still open, across all listeners. */
  activeConnections(): number {
    let total = 0;
    for (const open of this.#open.values()) total += open.sockets.size;
    return total;
  }

  /** Last stage of shutdown: whatever is still open is cut. */
  destroyAll(): void {
    for (const open of this.#open.values()) for (const socket of open.sockets) socket.destroy();
    this.#open.clear();
  }

  async #listen(config: Listener, fixed: string): Promise<Open> {
    const server = this.#createServer(config);
    const sockets = new Set<Duplex>();
    server.on("connection", (socket: Duplex) => {
      sockets.add(socket);
      socket.once("close", () => sockets.delete(socket));
    });
    // Once a connection is accepted it is the data plane's: errors on it must never escape.
    server.on("clientError", (error: NodeJS.ErrnoException, socket: Duplex) => {
      writeRawError(socket, clientErrorKind(error.code), randomUUID());
    });
    server.on("upgrade", this.handlers.upgrade);
    const { host, port } = parseListenAddress(config.address);
    try {
      server.listen({ host, port });
      await Promise.race([
        once(server, "listening"),
        once(server, "error").then(([error]) => Promise.reject(error)),
      ]);
    } catch (error) {
      throw new ListenerError(config.address, error as Error);
    }
    const address = server.address();
    const boundPort = typeof address === "object" && address ? address.port : port;
    const bound: BoundListener = {
      address: config.address,
      protocol: config.protocol ?? "http",
      host: host ?? "0.0.0.0",
      port: boundPort,
    };
    this.logger.info({ listener: bound }, "listening");
    return { config, fixed, server, sockets, bound };
  }

  #createServer(config: Listener): AnyServer {
    const handler = (req: ClientRequest, res: ClientResponse) => {
      if (!this.#accepting) res.setHeader("connection", "close");
      this.handlers.request(req, res);
    };
    const maxHeaderSize = config.max_header_size ?? this.defaults.maxHeaderSize;
    if (config.protocol !== "https") {
      const options: ServerOptions = {
        maxHeaderSize,
        noDelay: true,
        connectionsCheckingInterval: CHECK_INTERVAL_MS,
      };
      const server = createHttpServer(options, handler);
      applyTimeouts(server, config, this.defaults);
      return server;
    }
    const tls = this.#tls;
    const secure = {
      SNICallback: (
        servername: string,
        done: (error: Error | null, context?: import("node:tls").SecureContext) => void,
      ) => {
        const material = this.#tls;
        done(null, material ? contextFor(material, servername) : undefined);
      },
      ...(tls?.defaultPem ?? {}),
      ca: tls?.mtls?.ca,
      requestCert: tls?.mtls !== undefined,
      rejectUnauthorized: tls?.mtls?.requireClientCert === true,
      minVersion: tls?.minVersion,
    };
    if (config.http2 === false) {
      const server = createHttpsServer(
        { ...secure, maxHeaderSize, noDelay: true, connectionsCheckingInterval: CHECK_INTERVAL_MS },
        handler,
      );
      applyTimeouts(server, config, this.defaults);
      return server;
    }
    const server = createSecureServer(
      { ...secure, allowHTTP1: true, maxSessionMemory: 32, settings: { maxHeaderListSize: maxHeaderSize } },
      handler,
    );
    server.setTimeout(config.idle_timeout ?? this.defaults.idleTimeoutMs);
    return server;
  }

  /** Clients without SNI get the default certificate, which may have changed. */
  #refreshDefaultCertificates(): void {
    const pem = this.#tls?.defaultPem;
    if (!pem) return;
    for (const open of this.#open.values()) {
      if (open.config.protocol === "https")
        (open.server as HttpsServer).setSecureContext({ ...pem, ca: this.#tls?.mtls?.ca });
    }
  }
}

/** What a request Node could not read gets: its own status where the spec has one. */
function clientErrorKind(code: string | undefined): ProxyErrorKind {
  if (code === "HPE_HEADER_OVERFLOW") return ProxyError.HeadersTooLarge;
  if (code === "ERR_HTTP_REQUEST_TIMEOUT") return ProxyError.RequestTimeout;
  return ProxyError.BadRequest;
}

function fixedSettings(config: Listener, tls: TlsMaterial | undefined, defaults: ListenerDefaults): string {
  return JSON.stringify({
    protocol: config.protocol ?? "http",
    http2: config.http2,
    maxHeaderSize: config.max_header_size ?? defaults.maxHeaderSize,
    mtls: config.protocol === "https" ? (tls?.mtls?.requireClientCert ?? null) : null,
  });
}

/** Timeouts Node lets us change on a running HTTP/1 server. */
function applyTimeouts(server: AnyServer, config: Listener, defaults: ListenerDefaults): void {
  if (!("headersTimeout" in server)) return;
  const request = config.read_timeout ?? 0;
  const headers = config.read_header_timeout ?? defaults.readHeaderTimeoutMs;
  server.requestTimeout = request;
  // Node requires the header deadline to fit inside the request deadline.
  server.headersTimeout = request > 0 ? Math.min(headers, request) : headers;
  server.keepAliveTimeout = config.idle_timeout ?? defaults.idleTimeoutMs;
  server.timeout = config.write_timeout ?? 0;
}

function closeServer(open: Open, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      for (const socket of open.sockets) socket.destroy();
    }, graceMs);
    open.server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    if ("closeIdleConnections" in open.server) open.server.closeIdleConnections();
    if (graceMs === 0) for (const socket of open.sockets) socket.destroy();
  });
}

/** ":8080" → all interfaces; "[::1]:8443" → IPv6 loopback. */
export function parseListenAddress(address: string): { host: string | undefined; port: number } {
  const colon = address.lastIndexOf(":");
  const host = address.slice(0, colon).replace(/^\[(.*)\]$/, "$1");
  return { host: host === "" ? undefined : host, port: Number(address.slice(colon + 1)) };
}
