/**
 * The distributor's agent side: the AgentDistribution gRPC server, the periodic hand-off of
 * merged health and agent statuses to the HealthSink, and a small HTTP server for /healthz and
 * /metrics. Lifecycle in one place: create, listen, close (idempotent).
 */
import { createServer, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Server, status } from "@grpc/grpc-js";
import type { AgentDistributionServer } from "../../proto/coherent/v1/distribution.js";
import { addStandardServices, type StandardServices } from "../net/grpc-standard.js";
import { type ServerTlsFiles, serverCredentials } from "../net/tls.js";
import { AgentSession, type SessionHost } from "./agent-session.js";
import { DistributorCore } from "./core.js";
import type { FleetSource, HealthSink } from "./fleet-source.js";
import { HealthMerger } from "./health-merger.js";
import { createDistributorMetrics, type DistributorMetrics } from "./metrics.js";
import { agentDistributionService } from "./wire.js";

export interface DistributorServerOptions {
  readonly source: FleetSource;
  readonly sink: HealthSink;
  readonly distributorId: string;
  readonly region: string;
  readonly now?: () => number;
  /** Told to agents in Welcome; 5 s by default. */
  readonly heartbeatIntervalMs?: number;
  /** Heartbeat intervals of silence after which an agent is dropped; 3 by default. */
  readonly silenceLimit?: number;
  /** A stream's lifetime before it is closed so the agent reconnects; 30 min by default. */
  readonly maxConnectionAgeMs?: number;
  /** ± this share of the age, drawn per stream, so replicas' agents do not all move at once; 0.1. */
  readonly maxConnectionAgeJitter?: number;
  /** 0..1, for the jitter; Math.random by default. */
  readonly random?: () => number;
  /** How often merged health and changed statuses go to the sink; 5 s by default. */
  readonly healthFlushMs?: number;
  /** Records of agents gone longer than this are dropped; 1 h by default. */
  readonly forgetAfterMs?: number;
  readonly metrics?: DistributorMetrics;
  /** Serve agents over TLS (mTLS with a client CA); plaintext when not given. */
  readonly tls?: ServerTlsFiles;
  /**
   * Whether the distributor has something to serve (its cache holds a fleet, or the authority
   * said SyncComplete): /healthz answers 503 and grpc.health.v1 NOT_SERVING until it does.
   * True by default; the command starts false on a cold cache and calls setReady.
   */
  readonly ready?: boolean;
}

/**
 * HTTP/2 keepalive towards agents: a ping every 2 min on a quiet connection, dropped when
 * unanswered for 20 s. Application heartbeats (every heartbeatIntervalMs) already find a
 * silent agent; the ping is for the half-open TCP connection a vanished NAT entry leaves,
 * and at 10,000 agents costs under 100 pings a second.
 */
export const AGENT_SERVER_OPTIONS = {
  "grpc.keepalive_time_ms": 120_000,
  "grpc.keepalive_timeout_ms": 20_000,
} as const;

export class DistributorServer implements SessionHost {
  readonly core: DistributorCore;
  readonly merger = new HealthMerger();
  readonly metrics: DistributorMetrics;
  readonly distributorId: string;
  readonly region: string;
  readonly heartbeatIntervalMs: number;
  readonly silenceLimit: number;
  readonly now: () => number;
  readonly #sink: HealthSink;
  readonly #maxAgeMs: number;
  readonly #jitter: number;
  readonly #random: () => number;
  readonly #forgetAfterMs: number;
  readonly #sessions = new Map<string, AgentSession>();
  readonly #grpc = new Server(AGENT_SERVER_OPTIONS);
  readonly #standard: StandardServices;
  readonly #tls: ServerTlsFiles | undefined;
  #ready: boolean;
  readonly #flushTimer: NodeJS.Timeout;
  readonly #unsubscribe: () => void;
  #http: HttpServer | undefined;
  #closing: Promise<void> | undefined;

  constructor(options: DistributorServerOptions) {
    this.now = options.now ?? Date.now;
    this.distributorId = options.distributorId;
    this.region = options.region;
    this.heartbeatIntervalMs = options.heartbeatIntervalMs ?? 5_000;
    this.silenceLimit = options.silenceLimit ?? 3;
    this.metrics = options.metrics ?? createDistributorMetrics();
    this.#sink = options.sink;
    this.#maxAgeMs = options.maxConnectionAgeMs ?? 30 * 60_000;
    this.#jitter = options.maxConnectionAgeJitter ?? 0.1;
    this.#random = options.random ?? Math.random;
    this.#forgetAfterMs = options.forgetAfterMs ?? 60 * 60_000;
    this.core = new DistributorCore({
      source: options.source,
      distributorId: options.distributorId,
      now: this.now,
    });
    const handlers: AgentDistributionServer = {
      stream: (call) => {
        new AgentSession(call, this);
      },
    };
    this.#grpc.addService(agentDistributionService, handlers);
    this.#standard = addStandardServices(
      this.#grpc,
      ["coherent.v1.AgentDistribution"],
      ["coherent/v1/distribution.proto"],
    );
    this.#tls = options.tls;
    this.#ready = options.ready ?? true;
    this.#standard.setServing(this.#ready);
    this.#unsubscribe = options.source.onChange((fleet) => this.#fleetChanged(fleet));
    this.#flushTimer = setInterval(() => this.flush(), options.healthFlushMs ?? 5_000);
    this.#flushTimer.unref();
  }

  /** Binds the gRPC server (TLS when the options name certificates); returns the port. */
  async listen(address: string): Promise<number> {
    const credentials = await serverCredentials(this.#tls);
    return new Promise((resolve, reject) =>
      this.#grpc.bindAsync(address, credentials, (error, port) => (error ? reject(error) : resolve(port))),
    );
  }

  get ready(): boolean {
    return this.#ready;
  }

  /** Moves /healthz and grpc.health.v1 together. */
  setReady(ready: boolean): void {
    this.#ready = ready;
    if (!this.#closing) this.#standard.setServing(ready);
  }

  /** Serves /healthz and /metrics; returns the port. */
  async listenHttp(port: number, host = "127.0.0.1"): Promise<number> {
    const http = createServer((req, res) => {
      if (req.url === "/healthz") {
        res.writeHead(this.#ready ? 200 : 503, { "content-type": "application/json" });
        res.end(
          JSON.stringify({
            status: this.#ready ? "ok" : "starting",
            connected_agents: this.core.connectedCount(),
          }),
        );
      } else if (req.url === "/metrics") {
        this.metrics.registry.metrics().then(
          (text) => {
            res.writeHead(200, { "content-type": this.metrics.registry.contentType });
            res.end(text);
          },
          () => {
            res.writeHead(500);
            res.end();
          },
        );
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    this.#http = http;
    await new Promise<void>((resolve, reject) => {
      http.once("error", reject);
      http.listen(port, host, () => resolve());
    });
    return (http.address() as AddressInfo).port;
  }

  /** Hands what was merged and changed since the last flush to the sink; runs on a timer too. */
  flush(): void {
    const samples = this.merger.drain();
    if (samples.length > 0) this.#sink.health(samples);
    const statuses = this.core.drainStatuses();
    if (statuses.length > 0) this.#sink.agentStatus(statuses);
    this.core.prune(this.now() - this.#forgetAfterMs);
  }

  connectionAgeMs(): number {
    return this.#maxAgeMs * (1 + this.#jitter * (2 * this.#random() - 1));
  }

  attach(session: AgentSession): AgentSession | undefined {
    const id = session.agentId;
    if (id === undefined) return undefined;
    const previous = this.#sessions.get(id);
    this.#sessions.set(id, session);
    return previous === session ? undefined : previous;
  }

  detach(session: AgentSession): boolean {
    const id = session.agentId;
    if (id === undefined || this.#sessions.get(id) !== session) return false;
    this.#sessions.delete(id);
    return true;
  }

  /** Ends every stream (UNAVAILABLE, so agents reconnect elsewhere), stops both servers. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#standard.setServing(false);
    this.#unsubscribe();
    clearInterval(this.#flushTimer);
    for (const session of [...this.#sessions.values()]) {
      session.close(status.UNAVAILABLE, "the distributor is shutting down");
    }
    this.flush();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.#grpc.forceShutdown();
        resolve();
      }, 2_000);
      this.#grpc.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    const http = this.#http;
    if (http !== undefined) await new Promise<void>((resolve) => http.close(() => resolve()));
  }

  #fleetChanged(fleet: string): void {
    for (const agent of this.core.fleetChanged(fleet)) this.#sessions.get(agent.agentId)?.push();
  }
}
