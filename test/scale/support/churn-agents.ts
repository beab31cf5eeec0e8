/**
 * A child process holding simulated agents that come and go: like the bench's sim-agents.ts
 * (a RawAgentStream each, an Ack for every BundleUpdate without verifying it, Heartbeats when
 * idle), and besides each agent keeps the version it runs and
 * every version it ACKed, reports traffic on it (a HealthReport every HEALTH_MS, so a
 * rollout's health gates have candidate requests to judge), and can be made to leave alone.
 * Driven by ChurnPool (churn-pool.ts) over IPC; the messages are ChurnCommand and ChurnReply.
 */
import { LATENCY_BOUNDS_MS } from "../../../agent/control/health-recorder.js";
import type { DistributorMessage } from "../../../proto/coherent/v1/distribution.js";
import { RawAgentStream } from "../../bench/support/agent-stream.js";

const HEALTH_MS = 1_000;
/** Requests each agent reports per HEALTH_MS window, all 2xx and under 5 ms. */
const REQUESTS_PER_WINDOW = 10;
/** At most this many connections open at once: a burst of SYNs overflows the listen backlog. */
const CONCURRENCY = 100;

export interface ChurnAgentSpec {
  readonly agentId: string;
  /** host:port of the distributor it connects to. */
  readonly target: string;
}

export type ChurnCommand =
  | {
      readonly op: "join";
      readonly fleet: string;
      readonly region: string;
      readonly agents: readonly ChurnAgentSpec[];
    }
  | { readonly op: "leave"; readonly agentIds: readonly string[] }
  | { readonly op: "versions" }
  | { readonly op: "close" };

export interface AgentVersions {
  readonly agentId: string;
  /** 0 until its first Ack. */
  readonly running: number;
  /** Every version it ACKed, in order. */
  readonly acked: readonly number[];
}

export type ChurnReply =
  | { readonly op: "joined"; readonly welcomed: number; readonly failed: number }
  | { readonly op: "left"; readonly count: number }
  | {
      readonly op: "versions";
      /** The agents that are connected now. */
      readonly agents: readonly AgentVersions[];
      /** Streams that ended while not being closed by us. */
      readonly lost: number;
      readonly healthReports: number;
    }
  | { readonly op: "closed" };

class ChurnAgent extends RawAgentStream {
  readonly agentId: string;
  running = 0;
  readonly acked: number[] = [];
  windowStart = Date.now();
  readonly #onWelcome: (agent: ChurnAgent) => void;
  readonly #onEnd: (agent: ChurnAgent) => void;

  constructor(
    spec: ChurnAgentSpec,
    fleet: string,
    region: string,
    onWelcome: (agent: ChurnAgent) => void,
    onEnd: (agent: ChurnAgent) => void,
  ) {
    super(
      spec.target,
      {
        agentId: spec.agentId,
        fleet,
        region,
        labels: {},
        currentVersion: 0,
        currentContentSha256: "",
        softwareVersion: "sim-churn",
      },
      5_000,
    );
    this.agentId = spec.agentId;
    this.#onWelcome = onWelcome;
    this.#onEnd = onEnd;
  }

  /** The window since the last report: REQUESTS_PER_WINDOW requests on the running version. */
  reportHealth(now: number): boolean {
    if (this.ended || !this.welcomed || this.running === 0) return false;
    const counts = new Array<number>(LATENCY_BOUNDS_MS.length + 1).fill(0);
    counts[0] = REQUESTS_PER_WINDOW;
    this.send({
      $case: "healthReport",
      value: {
        windowStartUnixMs: this.windowStart,
        windowEndUnixMs: now,
        versions: [
          {
            version: this.running,
            requests: REQUESTS_PER_WINDOW,
            errors5xx: 0,
            latency: {
              boundsMs: [...LATENCY_BOUNDS_MS],
              counts,
              sumMs: REQUESTS_PER_WINDOW,
              count: REQUESTS_PER_WINDOW,
            },
          },
        ],
      },
    });
    this.windowStart = now;
    return true;
  }

  protected receive(message: DistributorMessage): void {
    const kind = message.kind;
    switch (kind?.$case) {
      case "welcome":
        this.windowStart = Date.now();
        this.#onWelcome(this);
        return;
      case "bundleUpdate": {
        const update = kind.value;
        this.send({
          $case: "ack",
          value: { version: update.version, nonce: update.nonce, contentSha256: update.contentSha256 },
        });
        // Traffic of the window so far was served by the old version: reported on it first.
        const now = Date.now();
        this.reportHealth(now);
        this.windowStart = now;
        this.running = update.version;
        this.acked.push(update.version);
        return;
      }
      case "heartbeat":
        return;
    }
  }

  protected lost(): void {
    this.#onEnd(this);
  }
}

class ChurnWorker {
  readonly #agents = new Map<string, ChurnAgent>();
  #lost = 0;
  #healthReports = 0;
  #ticker: NodeJS.Timeout | undefined;

  async join(command: Extract<ChurnCommand, { op: "join" }>): Promise<ChurnReply> {
    this.#startTicker();
    let welcomed = 0;
    let failed = 0;
    let next = 0;
    let pending = 0;
    await new Promise<void>((resolve) => {
      const open = (): void => {
        while (pending < CONCURRENCY && next < command.agents.length) {
          const spec = command.agents[next++] as ChurnAgentSpec;
          pending++;
          let settled = false;
          const settle = (ok: boolean): void => {
            if (settled) return;
            settled = true;
            pending--;
            if (ok) welcomed++;
            else failed++;
            open();
          };
          const agent = new ChurnAgent(
            spec,
            command.fleet,
            command.region,
            () => settle(true),
            (ended) => {
              if (!ended.welcomed) settle(false);
              else if (this.#agents.get(ended.agentId) === ended) {
                this.#agents.delete(ended.agentId);
                this.#lost++;
              }
            },
          );
          this.#agents.set(spec.agentId, agent);
        }
        if (pending === 0 && next >= command.agents.length) resolve();
      };
      open();
    });
    for (const [id, agent] of this.#agents) if (agent.ended) this.#agents.delete(id);
    return { op: "joined", welcomed, failed };
  }

  leave(agentIds: readonly string[]): ChurnReply {
    let count = 0;
    for (const id of agentIds) {
      const agent = this.#agents.get(id);
      if (agent === undefined) continue;
      agent.close();
      this.#agents.delete(id);
      count++;
    }
    return { op: "left", count };
  }

  versions(): ChurnReply {
    const agents: AgentVersions[] = [];
    for (const agent of this.#agents.values()) {
      if (agent.welcomed && !agent.ended)
        agents.push({ agentId: agent.agentId, running: agent.running, acked: [...agent.acked] });
    }
    return { op: "versions", agents, lost: this.#lost, healthReports: this.#healthReports };
  }

  close(): ChurnReply {
    clearInterval(this.#ticker);
    this.#ticker = undefined;
    for (const agent of this.#agents.values()) agent.close();
    this.#agents.clear();
    return { op: "closed" };
  }

  /** One timer for every agent of the process: health every HEALTH_MS, heartbeats when idle. */
  #startTicker(): void {
    if (this.#ticker !== undefined) return;
    this.#ticker = setInterval(() => {
      const now = Date.now();
      for (const agent of this.#agents.values()) {
        if (agent.ended || !agent.welcomed) continue;
        if (now - agent.windowStart >= HEALTH_MS && agent.reportHealth(now)) this.#healthReports++;
        else if (now - agent.lastSentMs >= agent.intervalMs)
          agent.send({ $case: "heartbeat", value: { sentAtUnixMs: now } });
      }
    }, 250);
  }
}

const worker = new ChurnWorker();
process.on("message", (command: ChurnCommand) => {
  const reply = (message: ChurnReply): void => {
    process.send?.(message);
  };
  switch (command.op) {
    case "join":
      worker.join(command).then(reply, (error: unknown) => {
        console.error(error);
        process.exit(1);
      });
      return;
    case "leave":
      reply(worker.leave(command.agentIds));
      return;
    case "versions":
      reply(worker.versions());
      return;
    case "close":
      reply(worker.close());
      return;
  }
});
process.on("disconnect", () => process.exit(0));
