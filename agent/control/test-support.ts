/**
 * Fixtures for this folder's tests: a distributor speaking the real AgentDistribution
 * protocol over grpc-js on port 0, and a ConfigTarget that records what it was given.
 */
import { Server, ServerCredentials, type ServerDuplexStream } from "@grpc/grpc-js";
import {
  AgentDistributionService,
  type AgentMessage,
  type BundleUpdate,
  type DistributorMessage,
} from "../../proto/coherent/v1/distribution.js";
import { ConfigErrorCode, contentHash, type DynamicConfig } from "../../services/config/index.js";
import type { ApplyResult, ConfigTarget } from "../runtime/config-target.js";
import type { HistoryEntry } from "../snapshot/config-history.js";

/** An address where nothing listens: connections are refused at once. */
export const DOWN_ADDRESS = "127.0.0.1:1";

type Stream = ServerDuplexStream<AgentMessage, DistributorMessage>;
type Kind = NonNullable<AgentMessage["kind"]>;
type ValueOf<K extends Kind["$case"]> = Extract<Kind, { $case: K }>["value"];

export class FakeDistributor {
  /** Every message of every stream, in arrival order. */
  readonly received: AgentMessage[] = [];
  readonly #server = new Server();
  #stream: Stream | undefined;
  #waiters: Array<() => void> = [];
  #port = 0;

  /** `welcome: false` takes streams but never answers a Hello. */
  constructor(readonly options: { heartbeatIntervalMs?: number; welcome?: boolean } = {}) {}

  get address(): string {
    return `127.0.0.1:${this.#port}`;
  }

  async start(): Promise<this> {
    this.#server.addService(AgentDistributionService, {
      stream: (call: Stream) => {
        this.#stream = call;
        call.on("data", (message: AgentMessage) => {
          this.received.push(message);
          if (message.kind?.$case === "hello" && this.options.welcome !== false) {
            call.write({
              kind: {
                $case: "welcome",
                value: {
                  distributorId: "fake-1",
                  region: "eu-west",
                  heartbeatIntervalMs: this.options.heartbeatIntervalMs ?? 10_000,
                },
              },
            });
          }
          for (const wake of this.#waiters.splice(0)) wake();
        });
        call.on("end", () => call.end());
        call.on("error", () => undefined);
      },
    });
    this.#port = await new Promise<number>((resolve, reject) =>
      this.#server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (error, port) =>
        error ? reject(error) : resolve(port),
      ),
    );
    return this;
  }

  push(update: BundleUpdate): void {
    if (!this.#stream) throw new Error("no agent connected");
    this.#stream.write({ kind: { $case: "bundleUpdate", value: update } });
  }

  /** Messages of one kind, in arrival order. */
  all<K extends Kind["$case"]>(kind: K): ValueOf<K>[] {
    return this.received.flatMap((m) => (m.kind?.$case === kind ? [m.kind.value as ValueOf<K>] : []));
  }

  /** Resolves once `count` messages of `kind` arrived; fails after `timeoutMs`. */
  async waitFor<K extends Kind["$case"]>(kind: K, count = 1, timeoutMs = 5_000): Promise<ValueOf<K>[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.all(kind).length < count) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`waited ${timeoutMs} ms for ${count} ${kind} message(s)`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.all(kind);
  }

  async stop(): Promise<void> {
    this.#server.forceShutdown();
  }
}

/** A ConfigTarget that serves nothing: it keeps what it was given, or refuses when told to. */
export class FakeTarget implements ConfigTarget {
  readonly applied: Array<{ config: DynamicConfig; source: string }> = [];
  refuse = false;
  /** Makes applyValidated fail as a broken target would (a worker gone), not refuse. */
  fail = false;
  #current: HistoryEntry | undefined;

  get ready(): boolean {
    return this.#current !== undefined;
  }

  current(): HistoryEntry | undefined {
    return this.#current;
  }

  applyValidated(config: DynamicConfig, source: string): Promise<ApplyResult> {
    if (this.fail) return Promise.reject(new Error("worker 2 is gone"));
    if (this.refuse) {
      return Promise.resolve({
        status: "rejected",
        errors: [
          { code: ConfigErrorCode.InvalidValue, path: "listeners[0].address", message: "address in use" },
        ],
      });
    }
    const hash = contentHash(config);
    if (this.#current?.contentHash === hash)
      return Promise.resolve({ status: "unchanged", version: this.#current.version });
    const sequence = this.applied.length + 1;
    this.#current = {
      version: `${sequence}-${hash.slice(0, 12)}`,
      sequence,
      contentHash: hash,
      config,
      appliedAt: new Date(0).toISOString(),
      source,
    };
    this.applied.push({ config, source });
    return Promise.resolve({ status: "applied", version: this.#current.version, changes: [] });
  }

  rollback(): Promise<ApplyResult> | undefined {
    return undefined;
  }

  recordRejected(): void {}

  listeners(): never {
    throw new Error("not used by the control-plane tests");
  }

  runtimeState(): never {
    throw new Error("not used by the control-plane tests");
  }

  scrape(): never {
    throw new Error("not used by the control-plane tests");
  }

  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}
