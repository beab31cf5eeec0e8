/**
 * Every core (static config `workers: N | auto`): a primary process holds the control side —
 * config file, admin API, metrics — and N workers each run the data plane on the same
 * listening sockets (node:cluster shares them). The primary numbers each config and sends it
 * to every worker; a change is answered once every worker has applied it. A worker that dies
 * is replaced and given the current config. /metrics adds up all workers.
 *
 * The IPC protocol: the primary sends requests with an id, each worker answers with the same
 * id. Messages are JSON, so configs travel in their canonical form. A managed agent's workers
 * also send, unasked, the health counters of their last second (see HealthRecorder): each
 * count is sent once and then reset, so the primary never counts a request twice, and a worker
 * that dies loses at most the second it had not sent yet.
 */
import cluster, { type Worker } from "node:cluster";
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue } from "prom-client";
import type { VersionHealth } from "../../proto/coherent/v1/distribution.js";
import { contentHash, type DynamicConfig, diffConfigs } from "../../services/config/index.js";
import type { Logger } from "../../services/telemetry/logger.js";
import { HealthRecorder } from "../control/health-recorder.js";
import type { BoundListener } from "../listener/listener-manager.js";
import type { AccessLog } from "../observability/access-log.js";
import { AgentMetrics } from "../observability/metrics.js";
import { ConfigHistory, type HistoryEntry } from "../snapshot/config-history.js";
import type { ApplyResult, ConfigTarget } from "./config-target.js";
import { withAgentNodeFlags } from "./node-flags.js";
import { agentOptions, ProxyAgent } from "./proxy-agent.js";
import { mergeRuntimeStates, type RuntimeState } from "./runtime-state.js";
import type { Settings } from "./settings.js";

export const WORKER_ENV = "COHERENT_AGENT_WORKER";
/** How often a managed agent's worker sends its health counters up: batched, never per request. */
const HEALTH_SEND_INTERVAL_MS = 1_000;

type Request =
  | { type: "apply"; config: DynamicConfig; source: string; sequence: number; bundleVersion: number }
  | { type: "scrape" }
  | { type: "listeners" }
  | { type: "state" }
  | { type: "shutdown"; drainDelayMs: number; drainTimeoutMs: number };

type ToWorker = Request & { id: number };
type FromWorker =
  | { type: "started" }
  | { type: "reply"; id: number; value: unknown }
  | { type: "health"; versions: VersionHealth[] };

export class ClusterPrimary implements ConfigTarget {
  /** Every worker's requests, as they send them up; a managed agent's reports read it. */
  readonly health = new HealthRecorder(Date.now);
  readonly #history = new ConfigHistory();
  readonly #metrics = new AgentMetrics();
  readonly #workers = new Set<Worker>();
  readonly #replies = new Map<number, (value: unknown) => void>();
  #queue: Promise<unknown> = Promise.resolve();
  #nextId = 0;
  #stopping = false;
  /** The bundle version of the config the workers run, for a replaced worker. */
  #bundleVersion = 0;

  constructor(
    private readonly count: number,
    private readonly logger: Logger,
  ) {}

  async start(): Promise<void> {
    await Promise.all(Array.from({ length: this.count }, () => this.#fork()));
    this.logger.info({ workers: this.count }, "workers started");
  }

  get ready(): boolean {
    return this.#history.latest !== undefined && !this.#stopping && this.#workers.size > 0;
  }

  current(): HistoryEntry | undefined {
    return this.#history.latest;
  }

  recordRejected(): void {
    this.#metrics.configReloads.labels("rejected").inc();
  }

  applyValidated(config: DynamicConfig, source: string, bundleVersion = 0): Promise<ApplyResult> {
    const run = this.#queue.then(() => this.#apply(config, source, bundleVersion));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  rollback(version: string): Promise<ApplyResult> | undefined {
    const entry = this.#history.find(version);
    return entry ? this.applyValidated(entry.config, `rollback to ${version}`) : undefined;
  }

  async listeners(): Promise<BoundListener[]> {
    const [first] = this.#workers;
    return first ? ((await this.#ask(first, { type: "listeners" })) as BoundListener[]) : [];
  }

  async runtimeState(): Promise<RuntimeState> {
    const states = await Promise.all([...this.#workers].map((w) => this.#ask(w, { type: "state" })));
    return mergeRuntimeStates(states as RuntimeState[]);
  }

  async scrape(): Promise<{ contentType: string; body: string }> {
    const perWorker = await Promise.all([...this.#workers].map((w) => this.#ask(w, { type: "scrape" })));
    const own = await this.#metrics.registry.getMetricsAsJSON();
    type Exported = MetricObjectWithValues<MetricValue<string>>[];
    const registry = AggregatorRegistry.aggregate([...(perWorker as Exported[]), own as Exported]);
    return { contentType: registry.contentType, body: await registry.metrics() };
  }

  async shutdown(drainDelayMs: number, drainTimeoutMs: number): Promise<void> {
    this.#stopping = true;
    const exits = [...this.#workers].map(
      (w) => new Promise<void>((resolve) => w.once("exit", () => resolve())),
    );
    for (const worker of this.#workers)
      this.#send(worker, { type: "shutdown", drainDelayMs, drainTimeoutMs, id: 0 });
    await Promise.all(exits);
  }

  async #apply(config: DynamicConfig, source: string, bundleVersion: number): Promise<ApplyResult> {
    const current = this.#history.latest;
    const hash = contentHash(config);
    if (current?.contentHash === hash) {
      this.#metrics.configReloads.labels("unchanged").inc();
      return { status: "unchanged", version: current.version };
    }
    const sequence = this.#history.nextSequence();
    const results = await this.#applyEverywhere(config, source, sequence, bundleVersion);
    const rejected = results.find((r) => r.status === "rejected");
    if (!rejected) {
      const entry = this.#history.record(sequence, hash, config, source);
      this.#bundleVersion = bundleVersion;
      this.#metrics.configReloads.labels("applied").inc();
      // No worker answered when every one died meanwhile: the config was validated, and their
      // replacements start on it (#replace), so it counts as applied.
      return (
        results.find((r) => r.status === "applied") ?? {
          status: "applied",
          version: entry.version,
          changes: current ? diffConfigs(current.config, config) : [],
        }
      );
    }
    this.#metrics.configReloads.labels("rejected").inc();
    // Workers apply the same config the same way, so they agree; should one have applied it
    // anyway, the last good config goes out again, as a new version.
    if (current && results.some((r) => r.status === "applied")) {
      const again = this.#history.nextSequence();
      await this.#applyEverywhere(
        current.config,
        `revert after a refused change (${source})`,
        again,
        this.#bundleVersion,
      );
      this.#history.record(again, current.contentHash, current.config, "revert");
    }
    return rejected;
  }

  /** The answers of the workers that lived through the apply; one that died is replaced (#replace). */
  async #applyEverywhere(
    config: DynamicConfig,
    source: string,
    sequence: number,
    bundleVersion: number,
  ): Promise<ApplyResult[]> {
    const answers = await Promise.all(
      [...this.#workers].map((w) =>
        (
          this.#ask(w, { type: "apply", config, source, sequence, bundleVersion }) as Promise<ApplyResult>
        ).catch((error: unknown) => {
          if (error instanceof WorkerExited) return undefined;
          throw error;
        }),
      ),
    );
    return answers.filter((answer) => answer !== undefined);
  }

  async #fork(): Promise<void> {
    cluster.setupPrimary({ execArgv: withAgentNodeFlags(process.execArgv) });
    const worker = cluster.fork({ [WORKER_ENV]: "1" });
    worker.on("message", (message: FromWorker) => {
      if (message.type === "reply") {
        this.#replies.get(message.id)?.(message.value);
        this.#replies.delete(message.id);
      } else if (message.type === "health") this.#addHealth(worker, message.versions);
    });
    await new Promise<void>((resolve, reject) => {
      worker.on("message", (message: FromWorker) => message.type === "started" && resolve());
      worker.once("exit", (code) => reject(new Error(`worker exited with code ${code} while starting`)));
    });
    this.#workers.add(worker);
    worker.once("exit", (code, signal) => {
      this.#workers.delete(worker);
      if (this.#stopping) return;
      this.logger.error({ worker: worker.process.pid, code, signal }, "worker died; starting another");
      void this.#replace();
    });
  }

  async #replace(): Promise<void> {
    await this.#fork();
    const [worker] = [...this.#workers].slice(-1);
    // Queued behind any apply in flight, which did not include this worker: it then gets the
    // config that apply recorded, not the one before it.
    const run = this.#queue.then(async () => {
      const current = this.#history.latest;
      if (!current || !worker || !this.#workers.has(worker)) return;
      await this.#ask(worker, {
        type: "apply",
        config: current.config,
        source: "worker restart",
        sequence: current.sequence,
        bundleVersion: this.#bundleVersion,
      });
    });
    this.#queue = run.catch(() => undefined);
    await run;
  }

  #addHealth(worker: Worker, versions: VersionHealth[]): void {
    try {
      this.health.add(versions);
    } catch (error) {
      // Only a worker of another build could send other bounds; its counts cannot be summed.
      this.logger.error({ worker: worker.process.pid, err: error }, "worker health counters dropped");
    }
  }

  #ask(worker: Worker, request: Request): Promise<unknown> {
    const id = ++this.#nextId;
    return new Promise((resolve, reject) => {
      const exited = () => {
        if (this.#replies.delete(id)) reject(new WorkerExited());
      };
      // Removed with the answer: a worker lives for many requests, its exit listeners must not pile up.
      this.#replies.set(id, (value) => {
        worker.off("exit", exited);
        resolve(value);
      });
      worker.once("exit", exited);
      this.#send(worker, { ...request, id });
    });
  }

  #send(worker: Worker, message: ToWorker): void {
    if (worker.isConnected()) worker.send(message);
  }
}

class WorkerExited extends Error {
  constructor() {
    super("the worker exited before answering");
    this.name = "WorkerExited";
  }
}

/** A worker: one agent, driven by its primary. */
export function runWorker(settings: Settings, logger: Logger, accessLog: AccessLog): void {
  const agent = new ProxyAgent(agentOptions(settings, logger, accessLog));
  const reply = (id: number, value: unknown) =>
    process.send?.({ type: "reply", id, value } satisfies FromWorker);
  process.on("message", (message: ToWorker) => {
    switch (message.type) {
      case "apply":
        void agent
          .applyValidated(message.config, message.source, message.bundleVersion, message.sequence)
          .then((r) => reply(message.id, r));
        break;
      case "scrape":
        void agent.metrics.registry.getMetricsAsJSON().then((m) => reply(message.id, m));
        break;
      case "listeners":
        void agent.listeners().then((l) => reply(message.id, l));
        break;
      case "state":
        void agent.runtimeState().then((state) => reply(message.id, state));
        break;
      case "shutdown":
        void agent.shutdown(message.drainDelayMs, message.drainTimeoutMs).then(() => process.exit(0));
        break;
    }
  });
  // Ctrl-C reaches the whole process group; the primary decides when workers stop.
  process.on("SIGINT", () => undefined);
  process.on("SIGTERM", () => undefined);
  // Without a primary nobody would send configs or stop this worker.
  process.on("disconnect", () => process.exit(1));
  if (settings.staticConfig.control_plane) {
    setInterval(() => {
      const { versions } = agent.health.takeReport();
      if (versions.length > 0) process.send?.({ type: "health", versions } satisfies FromWorker);
    }, HEALTH_SEND_INTERVAL_MS).unref();
  }
  process.send?.({ type: "started" } satisfies FromWorker);
}
