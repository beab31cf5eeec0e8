/**
 * Simulated agents spread over a few child processes (sim-agents.ts), so that the process under
 * test is measured alone. Agent i goes to worker i mod workers; every call waits for all.
 */
import { join } from "node:path";
import { IpcPeer } from "./ipc-peer.js";
import type { SimAgentSpec, WorkerCommand, WorkerReply, WorkerStats } from "./sim-agents.js";

export type { SimAgentSpec, WorkerStats } from "./sim-agents.js";

const WORKER = join(import.meta.dirname, "sim-agents.ts");

export interface ConnectOptions {
  /** host:port of the AgentDistribution server. */
  readonly target: string;
  readonly fleet: string;
  readonly region?: string;
  readonly agents: readonly SimAgentSpec[];
  /** Connections opening at once per worker; 100 by default. */
  readonly concurrency?: number;
}

export class AgentPool {
  readonly #workers: IpcPeer<WorkerCommand, WorkerReply>[];

  constructor(workers: number) {
    this.#workers = Array.from({ length: workers }, () => new IpcPeer<WorkerCommand, WorkerReply>(WORKER));
  }

  /** Opens every agent's stream; resolves with how many got a Welcome. */
  async connect(options: ConnectOptions): Promise<{ welcomed: number; failed: number }> {
    const shares: SimAgentSpec[][] = this.#workers.map(() => []);
    for (const [i, agent] of options.agents.entries()) shares[i % shares.length]?.push(agent);
    const replies = await Promise.all(
      this.#workers.map((worker, i) =>
        worker.request({
          op: "connect",
          target: options.target,
          fleet: options.fleet,
          region: options.region ?? "bench",
          agents: shares[i] ?? [],
          concurrency: options.concurrency ?? 100,
        }),
      ),
    );
    let welcomed = 0;
    let failed = 0;
    for (const reply of replies) {
      if (reply.op !== "connected") throw new Error(`unexpected reply ${reply.op}`);
      welcomed += reply.welcomed;
      failed += reply.failed;
    }
    return { welcomed, failed };
  }

  /** Counters summed over the workers. */
  async stats(): Promise<WorkerStats> {
    const replies = await Promise.all(this.#workers.map((worker) => worker.request({ op: "stats" })));
    const total = { live: 0, updates: 0, acks: 0, heartbeatsReceived: 0, heartbeatsSent: 0, lost: 0 };
    for (const reply of replies) {
      if (reply.op !== "stats") throw new Error(`unexpected reply ${reply.op}`);
      for (const key of Object.keys(total) as (keyof WorkerStats)[]) total[key] += reply.stats[key];
    }
    return total;
  }

  /** Closes every agent's connection; the workers stay for the next round. */
  async closeAgents(): Promise<void> {
    await Promise.all(this.#workers.map((worker) => worker.request({ op: "close" })));
  }

  async dispose(): Promise<void> {
    await Promise.all(this.#workers.map((worker) => worker.stop()));
  }
}
