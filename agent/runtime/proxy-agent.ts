/**
 * One agent process: its registries, its snapshot and its listeners, and config changes as
 * transactions (Caddy's changeConfig): validate → plan → read certificates → open listeners →
 * bind → swap → retire what is unused. Any failure before the swap leaves everything as it
 * was, and says why with paths. Changes run one at a time, in the order they arrive.
 */
import { hostname } from "node:os";
import type { Duplex } from "node:stream";
import {
  type ConfigIssue,
  type DynamicConfig,
  diffConfigs,
  type StaticConfig,
} from "../../services/config/index.js";
import type { Logger } from "../../services/telemetry/logger.js";
import { HealthRecorder } from "../control/health-recorder.js";
import { LISTENER_DEFAULTS, ListenerError, ListenerManager } from "../listener/listener-manager.js";
import { loadTlsMaterial } from "../listener/tls-material.js";
import { ChainCompileError } from "../middleware/chain.js";
import type { AccessLog } from "../observability/access-log.js";
import { AgentMetrics } from "../observability/metrics.js";
import { createTracing, type Tracing } from "../observability/tracing.js";
import { type ClientRequest, createRequestHandler } from "../proxy/engine.js";
import { handleUpgrade } from "../proxy/upgrade.js";
import { bindSnapshot, planSnapshot } from "../snapshot/compile.js";
import type { HistoryEntry } from "../snapshot/config-history.js";
import type { Snapshot } from "../snapshot/snapshot.js";
import { SnapshotStore } from "../snapshot/snapshot-store.js";
import type { ApplyResult, ConfigTarget } from "./config-target.js";
import { AgentRegistries } from "./registries.js";
import type { RuntimeState } from "./runtime-state.js";
import type { Settings } from "./settings.js";

export interface AgentOptions {
  readonly staticConfig: StaticConfig;
  readonly logger: Logger;
  readonly accessLog: AccessLog;
  /** Processes serving the same config (cluster workers); 1 alone. */
  readonly workers?: number;
  /** Every request access-logged (default); false: only routes whose chain has access_log. */
  readonly accessLogAll?: boolean;
  /** OTLP/HTTP traces endpoint; undefined: no tracing. */
  readonly traceEndpoint?: string;
}

/** The options of the agent of this process (alone, or a cluster worker) from its settings. */
export function agentOptions(settings: Settings, logger: Logger, accessLog: AccessLog): AgentOptions {
  return {
    staticConfig: settings.staticConfig,
    logger,
    accessLog,
    workers: settings.workers,
    accessLogAll: settings.staticConfig.logging?.access_log !== false,
    traceEndpoint: settings.traceEndpoint,
  };
}

export class ProxyAgent implements ConfigTarget {
  readonly metrics = new AgentMetrics();
  readonly snapshots = new SnapshotStore();
  readonly health = new HealthRecorder(Date.now);
  readonly #registries: AgentRegistries;
  readonly #tracing: Tracing;
  readonly #listeners: ListenerManager;
  readonly #logger: Logger;
  readonly #accessLog: AccessLog;
  readonly #static: StaticConfig;
  #queue: Promise<unknown> = Promise.resolve();
  #draining = false;

  constructor(options: AgentOptions) {
    this.#logger = options.logger;
    this.#static = options.staticConfig;
    this.#accessLog = options.accessLog;
    this.#registries = new AgentRegistries(this.metrics, options.workers ?? 1, options.logger);
    const tracingConfig = this.#static.tracing;
    this.#tracing = createTracing(
      {
        endpoint: options.traceEndpoint,
        sampleRatio: tracingConfig?.sample_ratio,
        serviceName: tracingConfig?.service_name ?? "coherent-proxy",
        serviceInstanceId: `${hostname()}:${process.pid}`,
        maxQueueSize: tracingConfig?.max_queue_size,
      },
      {
        logger: options.logger,
        onDropped: (count, reason) => this.metrics.traceSpansDropped.labels({ reason }).inc(count),
      },
    );
    const request = createRequestHandler({
      snapshots: this.snapshots,
      accessLog: this.#accessLog,
      accessLogAll: options.accessLogAll ?? true,
      health: this.health,
      tracing: this.#tracing,
      onInternalError: (error) => this.#logger.error({ err: error }, "request handling failed"),
    });
    this.#listeners = new ListenerManager(
      {
        request,
        upgrade: (req: ClientRequest, socket: Duplex, head: Buffer) =>
          handleUpgrade(this.snapshots, req, socket, head, this.#logger),
      },
      {
        readHeaderTimeoutMs: this.#static.read_header_timeout ?? LISTENER_DEFAULTS.readHeaderTimeoutMs,
        idleTimeoutMs: this.#static.idle_timeout ?? LISTENER_DEFAULTS.idleTimeoutMs,
        maxHeaderSize: this.#static.max_header_size ?? LISTENER_DEFAULTS.maxHeaderSize,
      },
      this.#logger,
    );
  }

  get ready(): boolean {
    return this.snapshots.current !== undefined && !this.#draining;
  }

  get draining(): boolean {
    return this.#draining;
  }

  async listeners() {
    return this.#listeners.bound();
  }

  current(): HistoryEntry | undefined {
    return this.snapshots.history.latest;
  }

  async runtimeState(): Promise<RuntimeState> {
    return this.#registries.state();
  }

  recordRejected(): void {
    this.metrics.configReloads.labels("rejected").inc();
  }

  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.metrics.registry.contentType, body: await this.metrics.registry.metrics() };
  }

  /**
   * Applies a config already validated (canonical). A cluster's primary passes the sequence
   * it numbered the config with; alone, the agent numbers it itself.
   */
  applyValidated(
    config: DynamicConfig,
    source: string,
    bundleVersion?: number,
    sequence?: number,
  ): Promise<ApplyResult> {
    const run = this.#queue.then(() => this.#transaction(config, source, sequence, bundleVersion ?? 0));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  rollback(version: string): Promise<ApplyResult> | undefined {
    const entry = this.snapshots.history.find(version);
    return entry ? this.applyValidated(entry.config, `rollback to ${version}`) : undefined;
  }

  async #transaction(
    config: DynamicConfig,
    source: string,
    sequence: number | undefined,
    bundleVersion: number,
  ): Promise<ApplyResult> {
    const previous = this.snapshots.current;
    const plan = planSnapshot(config);
    if (previous && previous.contentHash === plan.contentHash) {
      this.metrics.configReloads.labels("unchanged").inc();
      return { status: "unchanged", version: previous.version };
    }
    const staticTls = this.#static.tls;
    const tls = await loadTlsMaterial(
      config.tls,
      staticTls ? { certFile: staticTls.cert_file, keyFile: staticTls.key_file } : undefined,
    );
    if (!tls.ok) return this.#reject(tls.errors.map((e) => ({ code: "invalid_value", ...e })));
    if ((config.listeners ?? []).some((l) => l.protocol === "https") && !tls.value) {
      return this.#reject([
        {
          code: "missing_field",
          path: "tls.certificates",
          message: "https listeners need a certificate (or PROXY_TLS_CERT/KEY)",
        },
      ]);
    }

    let closeRemoved: () => Promise<void>;
    try {
      closeRemoved = await this.#listeners.reconcile(config.listeners ?? [], tls.value);
    } catch (error) {
      if (error instanceof ListenerError) {
        return this.#reject([{ code: "invalid_value", path: "listeners", message: error.message }]);
      }
      throw error;
    }
    let snapshot: Snapshot;
    try {
      snapshot = bindSnapshot(
        plan,
        sequence ?? this.snapshots.history.nextSequence(),
        this.#registries,
        bundleVersion,
      );
    } catch (error) {
      const path =
        error instanceof ChainCompileError ? `middleware.${error.chain}.stages[${error.stage}]` : "pools";
      return this.#reject([{ code: "invalid_value", path, message: (error as Error).message }]);
    }

    this.snapshots.swap(snapshot, source);
    this.metrics.configReloads.labels("applied").inc();
    this.metrics.configInfo.reset();
    this.metrics.configInfo.labels(snapshot.version, snapshot.contentHash).set(1);
    const changes = diffConfigs(previous?.config ?? {}, config);
    this.#logger.info({ version: snapshot.version, source, changes: changes.length }, "config applied");
    // Retire what the new snapshot no longer uses, once in-flight requests let go of it.
    void this.#registries.retain(snapshot);
    void closeRemoved();
    return { status: "applied", version: snapshot.version, changes };
  }

  #reject(errors: ConfigIssue[]): ApplyResult {
    this.metrics.configReloads.labels("rejected").inc();
    this.#logger.warn({ errors }, "config rejected; the current snapshot keeps serving");
    return { status: "rejected", errors };
  }

  /**
   * The spec's graceful shutdown, in its six stages: (1) mark draining, so readiness fails;
   * (2) stop accepting new connections; (3) wait `drainDelayMs` for load balancers to
   * converge, still serving open connections; (4) close idle connections; (5) wait up to
   * `drainTimeoutMs` for active requests; (6) cut whatever is left.
   */
  async shutdown(drainDelayMs: number, drainTimeoutMs: number): Promise<void> {
    this.#draining = true;
    this.#logger.info({ drainDelayMs, drainTimeoutMs }, "draining");
    this.#listeners.stopAccepting();
    await sleep(drainDelayMs);
    this.#listeners.closeIdle();
    const deadline = Date.now() + drainTimeoutMs;
    while (this.#listeners.activeConnections() > 0 && Date.now() < deadline) await sleep(50);
    const cut = this.#listeners.activeConnections();
    this.#listeners.destroyAll();
    await this.#registries.close(cut > 0);
    await this.#tracing.shutdown();
    this.#logger.info({ cutConnections: cut }, "stopped");
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
