/**
 * Simulated agents that join and leave one by one (churn-agents.ts), spread over a few child
 * processes so that the processes under test are measured alone. An agent lives in worker
 * hash(id) mod workers, so a `leave` finds it. Each worker answers its commands in order
 * (IpcPeer matches replies by position), so the commands to one worker are queued here.
 */
import { join } from "node:path";
import { IpcPeer } from "../../bench/support/ipc-peer.js";
import type { AgentVersions, ChurnAgentSpec, ChurnCommand, ChurnReply } from "./churn-agents.js";

export type { AgentVersions, ChurnAgentSpec } from "./churn-agents.js";

const WORKER = join(import.meta.dirname, "churn-agents.ts");

export interface FleetView {
  /** The connected agents, by id. */
  readonly agents: ReadonlyMap<string, AgentVersions>;
  /** Streams that ended while the agent had not been told to leave. */
  readonly lost: number;
  readonly healthReports: number;
}

export class ChurnPool {
  readonly #workers: IpcPeer<ChurnCommand, ChurnReply>[];
  readonly #queues: Promise<unknown>[];
  readonly #fleet: string;
  readonly #region: string;

  constructor(options: { workers: number; fleet: string; region: string }) {
    this.#workers = Array.from(
      { length: options.workers },
      () => new IpcPeer<ChurnCommand, ChurnReply>(WORKER),
    );
    this.#queues = this.#workers.map(() => Promise.resolve());
    this.#fleet = options.fleet;
    this.#region = options.region;
  }

  /** Connects every agent; resolves with how many got a Welcome. */
  async join(agents: readonly ChurnAgentSpec[]): Promise<{ welcomed: number; failed: number }> {
    const shares = this.#split(agents, (a) => a.agentId);
    const replies = await Promise.all(
      shares.map((share, i) =>
        this.#send(i, { op: "join", fleet: this.#fleet, region: this.#region, agents: share }),
      ),
    );
    let welcomed = 0;
    let failed = 0;
    for (const reply of replies) {
      if (reply.op !== "joined") throw new Error(`unexpected reply ${reply.op}`);
      welcomed += reply.welcomed;
      failed += reply.failed;
    }
    return { welcomed, failed };
  }

  /** Disconnects these agents, as stopped agents; resolves with how many were connected. */
  async leave(agentIds: readonly string[]): Promise<number> {
    const shares = this.#split(agentIds, (id) => id);
    const replies = await Promise.all(
      shares.map((share, i) => this.#send(i, { op: "leave", agentIds: share })),
    );
    return replies.reduce((sum, reply) => sum + (reply.op === "left" ? reply.count : 0), 0);
  }

  async view(): Promise<FleetView> {
    const replies = await Promise.all(this.#workers.map((_, i) => this.#send(i, { op: "versions" })));
    const agents = new Map<string, AgentVersions>();
    let lost = 0;
    let healthReports = 0;
    for (const reply of replies) {
      if (reply.op !== "versions") throw new Error(`unexpected reply ${reply.op}`);
      for (const agent of reply.agents) agents.set(agent.agentId, agent);
      lost += reply.lost;
      healthReports += reply.healthReports;
    }
    return { agents, lost, healthReports };
  }

  async dispose(): Promise<void> {
    await Promise.all(this.#workers.map((_, i) => this.#send(i, { op: "close" }).catch(() => undefined)));
    await Promise.all(this.#workers.map((worker) => worker.stop()));
  }

  #send(worker: number, command: ChurnCommand): Promise<ChurnReply> {
    const peer = this.#workers[worker] as IpcPeer<ChurnCommand, ChurnReply>;
    const result = (this.#queues[worker] as Promise<unknown>).then(() => peer.request(command));
    this.#queues[worker] = result.catch(() => undefined);
    return result;
  }

  #split<T>(items: readonly T[], id: (item: T) => string): T[][] {
    const shares: T[][] = this.#workers.map(() => []);
    for (const item of items) shares[workerOf(id(item), shares.length)]?.push(item);
    return shares;
  }
}

/** A stable small hash of the id: the same agent always lands on the same worker. */
function workerOf(agentId: string, workers: number): number {
  let hash = 0;
  for (let i = 0; i < agentId.length; i++) hash = (hash * 31 + agentId.charCodeAt(i)) >>> 0;
  return hash % workers;
}
