/**
 * One agent's stream, from Hello to close. Everything an agent sends is handled in arrival
 * order on this object; shared state is touched only through the core and the merger, which
 * are synchronous, so two streams never interleave inside a decision.
 *
 * Contract: the first message must be Hello (else INVALID_ARGUMENT); Welcome answers it, then
 * a BundleUpdate when one is due, possibly before the previous one is answered (the core takes
 * the answer of a superseded push too). Each side sends a Heartbeat when it sent nothing for an
 * interval; an agent silent for `silenceLimit` intervals is dropped (UNAVAILABLE). At its
 * maximum age the stream ends with UNAVAILABLE, as a GOAWAY would end it, and the agent
 * reconnects — to any replica, which is how agents rebalance.
 */
import { randomBytes } from "node:crypto";
import { type ServerDuplexStream, status } from "@grpc/grpc-js";
import type { AgentMessage } from "../../proto/coherent/v1/distribution.js";
import type { AgentRecord, DistributorCore } from "./core.js";
import type { HealthMerger } from "./health-merger.js";
import type { DistributorMetrics } from "./metrics.js";
import { bundleUpdateBytes, type OutgoingMessage } from "./wire.js";

export interface SessionHost {
  readonly core: DistributorCore;
  readonly merger: HealthMerger;
  readonly metrics: DistributorMetrics;
  readonly distributorId: string;
  readonly region: string;
  readonly heartbeatIntervalMs: number;
  readonly silenceLimit: number;
  readonly now: () => number;
  /** This stream's lifetime, jitter applied. */
  connectionAgeMs(): number;
  /** Makes the session the agent's current one; returns the one it replaces. */
  attach(session: AgentSession): AgentSession | undefined;
  /** Whether the session is still the agent's current one, and forgets it if so. */
  detach(session: AgentSession): boolean;
}

type Call = ServerDuplexStream<AgentMessage, OutgoingMessage>;

/**
 * Nonces: 10 random bytes drawn once per process, then a 6-byte counter; 22 base64url
 * characters. Unique per push, which is all a nonce must be, without a call into the CSPRNG
 * for each of thousands of agents in a push.
 */
const nonceBytes = randomBytes(16);
let nonceCounter = 0;
function nextNonce(): string {
  nonceCounter = (nonceCounter + 1) % 2 ** 48;
  nonceBytes.writeUIntBE(nonceCounter, 10, 6);
  return nonceBytes.toString("base64url");
}

export class AgentSession {
  readonly #call: Call;
  readonly #host: SessionHost;
  #agent: AgentRecord | undefined;
  #lastSentMs: number;
  #lastReceivedMs: number;
  #ticker: NodeJS.Timeout | undefined;
  #lastTickMs: number;
  #ageTimer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(call: Call, host: SessionHost) {
    this.#call = call;
    this.#host = host;
    this.#lastSentMs = host.now();
    this.#lastReceivedMs = this.#lastSentMs;
    this.#lastTickMs = this.#lastSentMs;
    call.on("data", (message: AgentMessage) => this.#receive(message));
    call.on("end", () => this.close(status.OK, "the agent ended the stream"));
    call.on("error", () => this.#finish());
    call.on("close", () => this.#finish());
    call.on("cancelled", () => this.#finish());
  }

  get agentId(): string | undefined {
    return this.#agent?.agentId;
  }

  /** Sends the bundle the agent should run, if one is due (see DistributorCore.bundleToPush). */
  push(): void {
    const agent = this.#agent;
    if (agent === undefined || this.#closed) return;
    const bundle = this.#host.core.bundleToPush(agent);
    if (bundle === undefined) return;
    const nonce = nextNonce();
    this.#host.core.pushed(agent, bundle.version, nonce);
    this.#send(bundleUpdateBytes(bundle, nonce));
    this.#host.metrics.pushes.inc();
  }

  /** Ends the stream with this status; OK only when the agent ended it first. Idempotent. */
  close(code: status, details: string): void {
    if (this.#closed) return;
    if (code === status.OK) this.#call.end();
    else this.#call.emit("error", { code, details });
    this.#finish();
  }

  #receive(message: AgentMessage): void {
    if (this.#closed) return;
    this.#lastReceivedMs = this.#host.now();
    const kind = message.kind;
    if (kind === undefined) return;
    const agent = this.#agent;
    if (agent === undefined) {
      if (kind.$case !== "hello") {
        this.close(status.INVALID_ARGUMENT, "the first message of a stream must be Hello");
      } else if (kind.value.agentId === "" || kind.value.fleet === "") {
        this.close(status.INVALID_ARGUMENT, "Hello needs an agent_id and a fleet");
      } else {
        this.#hello(kind.value.agentId, this.#host.core.hello(kind.value));
      }
      return;
    }
    const core = this.#host.core;
    switch (kind.$case) {
      case "hello":
        this.close(status.INVALID_ARGUMENT, "Hello is sent once per stream");
        return;
      case "ack": {
        const outcome = core.ack(agent, kind.value);
        if (outcome === undefined) return;
        this.#host.metrics.acks.inc();
        // Only the pending push's Ack ends a wait: the agent may be free for the next version,
        // the fleet having moved on while it was swapping.
        if (outcome.latencyMs === undefined) return;
        this.#host.metrics.pushToAck.observe(outcome.latencyMs / 1000);
        this.push();
        return;
      }
      case "nack":
        if (core.nack(agent, kind.value) !== undefined) this.#host.metrics.nacks.inc();
        return;
      case "healthReport":
        core.seen(agent);
        this.#host.merger.add(agent.agentId, agent.fleet, agent.region, kind.value);
        return;
      case "heartbeat":
        core.seen(agent);
        return;
    }
  }

  #hello(agentId: string, agent: AgentRecord): void {
    this.#agent = agent;
    this.#host.attach(this)?.close(status.ABORTED, `agent ${agentId} opened a newer stream`);
    this.#host.metrics.connectedAgents.set(this.#host.core.connectedCount());
    this.#send({
      kind: {
        $case: "welcome",
        value: {
          distributorId: this.#host.distributorId,
          region: this.#host.region,
          heartbeatIntervalMs: this.#host.heartbeatIntervalMs,
        },
      },
    });
    this.#lastTickMs = this.#host.now();
    this.#ticker = setInterval(() => this.#tick(), this.#host.heartbeatIntervalMs);
    this.#ticker.unref();
    this.#ageTimer = setTimeout(
      () => this.close(status.UNAVAILABLE, "max connection age reached; reconnect"),
      this.#host.connectionAgeMs(),
    );
    this.#ageTimer.unref();
    this.push();
  }

  #tick(): void {
    const now = this.#host.now();
    const interval = this.#host.heartbeatIntervalMs;
    // A late tick means this process was busy (a push to thousands, a long GC): timers run
    // before pending I/O is read, so the agent's messages may be waiting unread. Silence is
    // judged at the next tick, once they were.
    const late = now - this.#lastTickMs > interval * 1.5;
    this.#lastTickMs = now;
    if (!late && now - this.#lastReceivedMs > interval * this.#host.silenceLimit) {
      this.close(status.UNAVAILABLE, "no message from the agent for too long");
      return;
    }
    if (now - this.#lastSentMs >= interval) {
      this.#send({ kind: { $case: "heartbeat", value: { sentAtUnixMs: now } } });
    }
  }

  #send(message: OutgoingMessage): void {
    this.#lastSentMs = this.#host.now();
    this.#call.write(message);
  }

  #finish(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#ticker);
    clearTimeout(this.#ageTimer);
    const agent = this.#agent;
    if (agent !== undefined && this.#host.detach(this)) {
      this.#host.core.disconnected(agent);
      this.#host.metrics.connectedAgents.set(this.#host.core.connectedCount());
    }
  }
}
