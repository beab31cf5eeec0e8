/**
 * DistributorCore: what the distributor knows of each agent and what it decides for it. Pure
 * apart from the injected clock and source: the stream handler tells it what happened (hello,
 * push sent, ack, nack, gone) and asks it what to push. Records are keyed by agent id and
 * outlive streams, so an agent that reconnects keeps its NACK history.
 */
import { AgentState, type AgentStatus, type Bundle } from "../../proto/coherent/v1/authority.js";
import type { ConfigError } from "../../proto/coherent/v1/common.js";
import type { Ack, Hello, Nack } from "../../proto/coherent/v1/distribution.js";
import { cohortBucket, versionForBucket } from "./cohort.js";
import type { FleetSource } from "./fleet-source.js";

export interface AgentRecord {
  readonly agentId: string;
  fleet: string;
  region: string;
  labels: Record<string, string>;
  /** From Hello, then from each Ack; 0 = none. */
  runningVersion: number;
  runningContentSha256: string;
  /** The push awaiting an answer; "" when none is. */
  pendingNonce: string;
  pendingVersion: number;
  pendingSinceMs: number;
  /** Versions this agent refused: never pushed to it again. Emptied below each acked version. */
  readonly nacked: Set<number>;
  nackVersion: number;
  nackErrors: ConfigError[];
  /** Progress towards the desired version, as reported up. */
  state: AgentState;
  connected: boolean;
  connectedSinceMs: number;
  lastSeenMs: number;
  /** The agent's cohort bucket in `bucketRolloutId`'s rollout, kept: it never changes. */
  bucketRolloutId: string;
  bucket: number;
}

export interface CoreOptions {
  readonly source: FleetSource;
  readonly distributorId: string;
  readonly now: () => number;
}

/** An Ack that moved the agent's running version. */
export interface AckOutcome {
  readonly version: number;
  /**
   * Push to Ack, when it answered the pending push; undefined for the Ack of a push a newer
   * one superseded, whose send time was not kept.
   */
  readonly latencyMs: number | undefined;
}

export class DistributorCore {
  readonly #source: FleetSource;
  readonly #distributorId: string;
  readonly #now: () => number;
  readonly #agents = new Map<string, AgentRecord>();
  /** Agents whose status changed since the last drainStatuses. */
  readonly #dirty = new Set<string>();
  #connected = 0;

  constructor(options: CoreOptions) {
    this.#source = options.source;
    this.#distributorId = options.distributorId;
    this.#now = options.now;
  }

  get(agentId: string): AgentRecord | undefined {
    return this.#agents.get(agentId);
  }

  /**
   * A new stream said Hello. Whatever was pending belonged to an older stream and is dropped:
   * its answer can no longer come.
   */
  hello(hello: Hello): AgentRecord {
    const now = this.#now();
    let agent = this.#agents.get(hello.agentId);
    if (agent === undefined) {
      agent = {
        agentId: hello.agentId,
        fleet: hello.fleet,
        region: hello.region,
        labels: hello.labels,
        runningVersion: 0,
        runningContentSha256: "",
        pendingNonce: "",
        pendingVersion: 0,
        pendingSinceMs: 0,
        nacked: new Set(),
        nackVersion: 0,
        nackErrors: [],
        state: AgentState.AGENT_STATE_UNSPECIFIED,
        connected: true,
        connectedSinceMs: now,
        lastSeenMs: now,
        bucketRolloutId: "",
        bucket: 0,
      };
      this.#agents.set(hello.agentId, agent);
      this.#connected++;
    } else if (!agent.connected) this.#connected++;
    if (agent.fleet !== hello.fleet) agent.nacked.clear();
    agent.fleet = hello.fleet;
    agent.region = hello.region;
    agent.labels = hello.labels;
    agent.runningVersion = hello.currentVersion;
    agent.runningContentSha256 = hello.currentVersion === 0 ? "" : hello.currentContentSha256;
    agent.pendingNonce = "";
    agent.pendingVersion = 0;
    agent.connected = true;
    agent.connectedSinceMs = now;
    agent.lastSeenMs = now;
    agent.state = this.#settledState(agent);
    this.#dirty.add(agent.agentId);
    return agent;
  }

  /** The version the fleet's state wants this agent on; 0 when the fleet has none yet. */
  desiredFor(agent: AgentRecord): number {
    const state = this.#source.state(agent.fleet);
    return state === undefined ? 0 : versionForBucket(state, (rolloutId) => this.#bucket(agent, rolloutId));
  }

  /**
   * The bundle to push now, or undefined: none desired or held, the agent already runs it
   * (same version and content), refused it before, or has not answered a push of it yet.
   */
  bundleToPush(agent: AgentRecord): Bundle | undefined {
    if (!agent.connected) return undefined;
    const desired = this.desiredFor(agent);
    if (desired === 0 || agent.nacked.has(desired)) return undefined;
    if (agent.pendingNonce !== "" && agent.pendingVersion === desired) return undefined;
    const bundle = this.#source.bundle(agent.fleet, desired);
    if (bundle === undefined) return undefined;
    if (agent.runningVersion === desired && agent.runningContentSha256 === bundle.contentSha256) {
      return undefined;
    }
    return bundle;
  }

  /** A BundleUpdate with this nonce went out; an older pending push is superseded. */
  pushed(agent: AgentRecord, version: number, nonce: string): void {
    agent.pendingNonce = nonce;
    agent.pendingVersion = version;
    agent.pendingSinceMs = this.#now();
    agent.state = AgentState.AGENT_STATE_PENDING;
    this.#dirty.add(agent.agentId);
  }

  /**
   * The agent now serves the Ack's version. Undefined when that changes nothing: no nonce (it
   * answers no push), or not newer than what the record holds (a duplicate).
   *
   * The Ack of a superseded push (a newer one went out before it came) still moves the running
   * version: the agent did swap, and if the newer push is then refused, the record would
   * otherwise show the old version for good. No memory of earlier nonces is needed for that:
   * an agent serves only versions above the one it runs (a rollback is published as a new,
   * higher version) and answers its pushes in order, so an Ack whose version is above the
   * recorded one is newer, whichever push it answers. Only the pending push's nonce is kept,
   * because only its answer ends the wait and is timed.
   */
  ack(agent: AgentRecord, ack: Ack): AckOutcome | undefined {
    this.seen(agent);
    if (ack.nonce === "") return undefined;
    let outcome: AckOutcome;
    if (ack.nonce === agent.pendingNonce) {
      outcome = { version: agent.pendingVersion, latencyMs: this.#now() - agent.pendingSinceMs };
      agent.pendingNonce = "";
      agent.pendingVersion = 0;
      agent.state = AgentState.AGENT_STATE_ACKED;
    } else if (ack.version > agent.runningVersion) {
      // Answers come in push order, so the pending push is still to be answered: still pending.
      outcome = { version: ack.version, latencyMs: undefined };
    } else {
      return undefined;
    }
    agent.runningVersion = outcome.version;
    agent.runningContentSha256 = ack.contentSha256;
    // Refusals of versions up to the one now running can never be desired again: forget them.
    for (const version of agent.nacked) if (version <= agent.runningVersion) agent.nacked.delete(version);
    this.#dirty.add(agent.agentId);
    return outcome;
  }

  /**
   * The refused version, recorded as never to be pushed again; undefined for a Nack that
   * answers no push. A Nack of a superseded push is taken by its version (see `ack`) and
   * leaves the pending push waiting; only the pending push's Nack ends the wait.
   */
  nack(agent: AgentRecord, nack: Nack): number | undefined {
    this.seen(agent);
    if (nack.nonce === "") return undefined;
    const pending = nack.nonce === agent.pendingNonce;
    const version = pending ? agent.pendingVersion : nack.version;
    if (version === 0) return undefined;
    agent.nacked.add(version);
    agent.nackVersion = version;
    agent.nackErrors = nack.errors;
    if (pending) {
      agent.pendingNonce = "";
      agent.pendingVersion = 0;
      agent.state = AgentState.AGENT_STATE_NACKED;
    }
    this.#dirty.add(agent.agentId);
    return version;
  }

  seen(agent: AgentRecord): void {
    agent.lastSeenMs = this.#now();
  }

  /** The agent's stream closed; its record stays for a reconnect. */
  disconnected(agent: AgentRecord): void {
    if (agent.connected) this.#connected--;
    agent.connected = false;
    agent.pendingNonce = "";
    agent.pendingVersion = 0;
    this.#dirty.add(agent.agentId);
  }

  /**
   * Called when the fleet's state or bundles changed: its agents' desired versions may have
   * moved, so their statuses are reported again. Yields the connected ones, a push may be due.
   */
  *fleetChanged(fleet: string): Iterable<AgentRecord> {
    for (const agent of this.#agents.values()) {
      if (agent.fleet !== fleet) continue;
      this.#dirty.add(agent.agentId);
      if (agent.connected) yield agent;
    }
  }

  /** Drops records of agents disconnected before `beforeMs`: a bound on churn. */
  prune(beforeMs: number): void {
    for (const [id, agent] of this.#agents) {
      if (!agent.connected && agent.lastSeenMs < beforeMs && !this.#dirty.has(id)) this.#agents.delete(id);
    }
  }

  /** The statuses changed since the previous call, for the HealthSink. */
  drainStatuses(): AgentStatus[] {
    const statuses: AgentStatus[] = [];
    for (const id of this.#dirty) {
      const agent = this.#agents.get(id);
      if (agent !== undefined) statuses.push(this.statusOf(agent));
    }
    this.#dirty.clear();
    return statuses;
  }

  statusOf(agent: AgentRecord): AgentStatus {
    return {
      agentId: agent.agentId,
      fleet: agent.fleet,
      region: agent.region,
      distributorId: this.#distributorId,
      runningVersion: agent.runningVersion,
      desiredVersion: this.desiredFor(agent),
      state: agent.state,
      nackErrors: agent.nackErrors,
      nackVersion: agent.nackVersion,
      lastSeenUnixMs: agent.lastSeenMs,
      labels: agent.labels,
      connected: agent.connected,
    };
  }

  /** Connected agents, for the gauge and /healthz. */
  connectedCount(): number {
    return this.#connected;
  }

  #bucket(agent: AgentRecord, rolloutId: string): number {
    if (agent.bucketRolloutId !== rolloutId) {
      agent.bucket = cohortBucket(rolloutId, agent.agentId);
      agent.bucketRolloutId = rolloutId;
    }
    return agent.bucket;
  }

  /** After Hello, before any push: acked when it already runs what it should. */
  #settledState(agent: AgentRecord): AgentState {
    const desired = this.desiredFor(agent);
    if (desired !== 0 && desired === agent.runningVersion) return AgentState.AGENT_STATE_ACKED;
    if (desired !== 0 && agent.nacked.has(desired)) return AgentState.AGENT_STATE_NACKED;
    return AgentState.AGENT_STATE_UNSPECIFIED;
  }
}
