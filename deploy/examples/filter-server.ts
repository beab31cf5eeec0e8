/**
 * An example external filter for Coherent's `external_grpc` plugins: a RequestFilter server
 * (proto/coherent/v1/filter.proto) to start from, and the filter the plugin tests run against.
 *
 * Run it:
 *
 *   node --import tsx deploy/examples/filter-server.ts --listen 127.0.0.1:50051 [--delay-ms 20]
 *
 * and name it in the proxy's config:
 *
 *   plugins:
 *     - id: example-filter
 *       type: external_grpc
 *       address: 127.0.0.1:50051
 *       timeout: 50ms
 *       fail_mode: closed
 *   middleware:
 *     - id: filtered
 *       stages: [{ type: plugin, plugin: example-filter }]
 *
 * What it decides:
 * - a request with `x-block: 1` is denied: 403 with a JSON body;
 * - any other request is allowed: a client-sent `x-user-id` is removed (clients must not
 *   choose it), set again from the verified JWT's `sub` claim when there is one, and
 *   `x-filtered-by: example-filter` is added.
 *
 * To see the proxy's fail modes at work:
 * - `--delay-ms N` (or FILTER_DELAY_MS) delays every answer, a request header
 *   `x-filter-delay-ms: N` one answer: past the plugin's timeout, the call times out;
 * - a request for `/crash…` makes the server drop every connection mid-call and, when run
 *   from the command line, exit — a crash;
 * - a request for `/malformed…` gets an answer without a decision.
 */

import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { Server, ServerCredentials, type ServerUnaryCall, type sendUnaryData } from "@grpc/grpc-js";
import {
  type FilterRequest,
  type FilterResponse,
  type RequestFilterServer,
  RequestFilterService,
} from "../../proto/coherent/v1/filter.js";

export interface FilterServerOptions {
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Default 0: a free port, see `FilterServer.port`. */
  readonly port?: number;
  /** Delay before every answer, in ms. */
  readonly delayMs?: number;
  /** What a `/crash` request does after dropping the connections; nothing by default. */
  readonly onCrash?: () => void;
}

export interface FilterServer {
  /** `host:port`, as a plugin's `address`. */
  readonly address: string;
  readonly port: number;
  /** Calls received so far. */
  readonly calls: number;
  /** The last request received, to see what the proxy sent. */
  readonly lastRequest: FilterRequest | undefined;
  /** Stops taking calls and waits for those in progress. */
  close(): Promise<void>;
  /** Drops every connection at once, calls in progress included: what a crash looks like. */
  crash(): void;
}

/** The example's rules (see the header); pure, so an operator can start from them. */
export function decide(request: FilterRequest): FilterResponse {
  if (request.headers.some((h) => h.name === "x-block" && h.value === "1")) {
    return {
      decision: {
        $case: "deny",
        value: {
          status: 403,
          headers: [{ name: "content-type", value: "application/json" }],
          body: Buffer.from(JSON.stringify({ error: "blocked_by_filter", request_id: request.requestId })),
        },
      },
    };
  }
  const subject = claimedSubject(request.jwtClaimsJson);
  return {
    decision: {
      $case: "allow",
      value: {
        removeHeaders: ["x-user-id"],
        setHeaders: subject === undefined ? [] : [{ name: "x-user-id", value: subject }],
        addHeaders: [{ name: "x-filtered-by", value: "example-filter" }],
      },
    },
  };
}

function claimedSubject(claimsJson: string | undefined): string | undefined {
  if (claimsJson === undefined) return undefined;
  let claims: unknown;
  try {
    claims = JSON.parse(claimsJson);
  } catch {
    return undefined;
  }
  const sub = typeof claims === "object" && claims !== null ? (claims as { sub?: unknown }).sub : undefined;
  return typeof sub === "string" ? sub : undefined;
}

function requestedDelay(request: FilterRequest, fallback: number): number {
  const header = request.headers.find((h) => h.name === "x-filter-delay-ms");
  const ms = header ? Number(header.value) : fallback;
  return Number.isFinite(ms) && ms > 0 ? ms : 0;
}

export function startFilterServer(options: FilterServerOptions = {}): Promise<FilterServer> {
  const host = options.host ?? "127.0.0.1";
  const server = new Server();
  let calls = 0;
  let lastRequest: FilterRequest | undefined;
  const crash = () => {
    server.forceShutdown();
    options.onCrash?.();
  };

  const implementation: RequestFilterServer = {
    filter(call: ServerUnaryCall<FilterRequest, FilterResponse>, callback: sendUnaryData<FilterResponse>) {
      calls++;
      const request = call.request;
      lastRequest = request;
      if (request.path.startsWith("/crash")) {
        // Never answered: the proxy sees the call die with its connection.
        setImmediate(crash);
        return;
      }
      const answer = () =>
        callback(null, request.path.startsWith("/malformed") ? { decision: undefined } : decide(request));
      const delay = requestedDelay(request, options.delayMs ?? 0);
      if (delay === 0) return answer();
      const timer = setTimeout(answer, delay);
      // The proxy gave up (deadline): nothing left to answer.
      call.on("cancelled", () => clearTimeout(timer));
    },
  };
  server.addService(RequestFilterService, implementation);

  const listen = `${host.includes(":") ? `[${host}]` : host}:${options.port ?? 0}`;
  return new Promise((resolve, reject) => {
    server.bindAsync(listen, ServerCredentials.createInsecure(), (err, port) => {
      if (err) return reject(err);
      resolve({
        address: listen.replace(/:\d+$/, `:${port}`),
        port,
        get calls() {
          return calls;
        },
        get lastRequest() {
          return lastRequest;
        },
        close: () =>
          new Promise<void>((done) => {
            server.tryShutdown(() => done());
          }),
        crash,
      });
    });
  });
}

/** `host:port` or `[v6]:port` → its parts. */
function parseListen(listen: string): { host: string; port: number } {
  const colon = listen.lastIndexOf(":");
  const port = Number(listen.slice(colon + 1));
  if (colon < 0 || !Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new Error(`--listen ${listen}: expected host:port, e.g. 127.0.0.1:50051`);
  }
  return { host: listen.slice(0, colon).replace(/^\[(.*)\]$/, "$1"), port };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      listen: { type: "string", default: "127.0.0.1:50051" },
      "delay-ms": { type: "string", default: process.env.FILTER_DELAY_MS ?? "0" },
    },
  });
  const delayMs = Number(values["delay-ms"]);
  if (!Number.isFinite(delayMs) || delayMs < 0)
    throw new Error("--delay-ms: expected a number of ms, e.g. 20");
  const server = await startFilterServer({
    ...parseListen(values.listen),
    delayMs,
    onCrash: () => process.exit(70),
  });
  console.log(`filter-server listening on ${server.address}`);
  const stop = () => void server.close().then(() => process.exit(0));
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(`filter-server: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
