/**
 * A child process holding many simulated agents, each a lightweight client of the
 * AgentDistribution stream on its own HTTP/2 connection (raw node:http2 and gRPC framing, no
 * grpc-js call objects): Hello, then an Ack for every BundleUpdate (nonce echoed, the hinted
 * hash taken as computed: nothing is verified or compiled), Heartbeats when idle. Driven by
 * its parent over IPC (see AgentPool in agent-pool.ts, which forks it); the messages are
 * WorkerCommand and WorkerReply.
 */
import type { DistributorMessage } from "../../../proto/coherent/v1/distribution.js";
import { RawAgentStream } from "./agent-stream.js";

export interface SimAgentSpec {
  readonly agentId: string;
  readonly currentVersion: number;
  readonly currentContentSha256: string;
}

export type WorkerCommand =
  | {
      readonly op: "connect";
      /** host:port */
      readonly target: string;
      readonly fleet: string;
      readonly region: string;
      readonly agents: readonly SimAgentSpec[];
      /** Connections opened at once; the rest wait for a Welcome. */
      readonly concurrency: number;
    }
  | { readonly op: "stats" }
  | { readonly op: "close" };

export interface WorkerStats {
  /** Agents whose stream got a Welcome and has not ended. */
  readonly live: number;
  readonly updates: number;
  readonly acks: number;
  readonly heartbeatsReceived: number;
  readonly heartbeatsSent: number;
  /** Streams or connections that ended or failed while not being closed by us. */
  readonly lost: number;
}

export type WorkerReply =
  | { readonly op: "connected"; readonly welcomed: number; readonly failed: number }
  | { readonly op: "stats"; readonly stats: WorkerStats }
  | { readonly op: "closed" };

class SimAgent extends RawAgentStream {
  readonly spec: SimAgentSpec;
  readonly #worker: Worker;

  constructor(worker: Worker, target: string, fleet: string, region: string, spec: SimAgentSpec) {
    super(target, {
      agentId: spec.agentId,
      fleet,
      region,
      labels: {},
      currentVersion: spec.currentVersion,
      currentContentSha256: spec.currentContentSha256,
      softwareVersion: "sim",
    });
    this.spec = spec;
    this.#worker = worker;
  }

  protected receive(message: DistributorMessage): void {
    const kind = message.kind;
    switch (kind?.$case) {
      case "welcome":
        this.#worker.welcomed();
        return;
      case "bundleUpdate": {
        const update = kind.value;
        this.#worker.counts.updates++;
        this.send({
          $case: "ack",
          value: { version: update.version, nonce: update.nonce, contentSha256: update.contentSha256 },
        });
        this.#worker.counts.acks++;
        return;
      }
      case "heartbeat":
        this.#worker.counts.heartbeatsReceived++;
        return;
    }
  }

  protected lost(): void {
    this.#worker.lost(this);
  }
}

class Worker {
  readonly counts = { updates: 0, acks: 0, heartbeatsReceived: 0, heartbeatsSent: 0, lost: 0 };
  readonly #agents: SimAgent[] = [];
  #waiting: (() => void) | undefined;
  #pendingWelcomes = 0;
  #ticker: NodeJS.Timeout | undefined;

  async connect(command: Extract<WorkerCommand, { op: "connect" }>): Promise<WorkerReply> {
    const before = this.#agents.filter((a) => a.welcomed && !a.ended).length;
    let next = 0;
    // A window of connections in flight: a burst of thousands of SYNs overflows the backlog.
    await new Promise<void>((resolve) => {
      const open = (): void => {
        while (this.#pendingWelcomes < command.concurrency && next < command.agents.length) {
          const spec = command.agents[next++] as SimAgentSpec;
          this.#pendingWelcomes++;
          this.#agents.push(new SimAgent(this, command.target, command.fleet, command.region, spec));
        }
        if (this.#pendingWelcomes === 0 && next >= command.agents.length) resolve();
      };
      this.#waiting = open;
      open();
    });
    this.#waiting = undefined;
    const live = this.#agents.filter((a) => a.welcomed && !a.ended).length;
    return { op: "connected", welcomed: live - before, failed: command.agents.length - (live - before) };
  }

  welcomed(): void {
    this.#startTicker();
    this.#pendingWelcomes--;
    this.#waiting?.();
  }

  lost(agent: SimAgent): void {
    if (!agent.welcomed) {
      this.#pendingWelcomes--;
      this.#waiting?.();
    } else this.counts.lost++;
  }

  stats(): WorkerReply {
    const live = this.#agents.filter((a) => a.welcomed && !a.ended).length;
    return { op: "stats", stats: { live, ...this.counts } };
  }

  close(): WorkerReply {
    clearInterval(this.#ticker);
    this.#ticker = undefined;
    for (const agent of this.#agents) agent.close();
    this.#agents.length = 0;
    return { op: "closed" };
  }

  /**
   * One timer for every agent of the process (a real agent has one per process too), started
   * at the first Welcome: connecting thousands takes longer than the server's silence limit.
   */
  #startTicker(): void {
    if (this.#ticker !== undefined) return;
    const interval = Math.min(...this.#agents.map((a) => a.intervalMs).filter((ms) => ms > 0), 5_000);
    this.#ticker = setInterval(
      () => {
        const now = Date.now();
        for (const agent of this.#agents) {
          if (agent.ended || !agent.welcomed || now - agent.lastSentMs < agent.intervalMs) continue;
          agent.send({ $case: "heartbeat", value: { sentAtUnixMs: now } });
          this.counts.heartbeatsSent++;
        }
      },
      Math.max(50, interval / 4),
    );
  }
}

const worker = new Worker();
process.on("message", (command: WorkerCommand) => {
  const reply = (message: WorkerReply): void => {
    process.send?.(message);
  };
  switch (command.op) {
    case "connect":
      worker.connect(command).then(reply, (error: unknown) => {
        console.error(error);
        process.exit(1);
      });
      return;
    case "stats":
      reply(worker.stats());
      return;
    case "close":
      reply(worker.close());
      return;
  }
});
process.on("disconnect", () => process.exit(0));
