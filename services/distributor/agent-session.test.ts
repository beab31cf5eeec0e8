import { EventEmitter } from "node:events";
import { status } from "@grpc/grpc-js";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { AgentState } from "../../proto/coherent/v1/authority.js";
import type {
  AgentDistributionClient,
  AgentMessage,
  BundleUpdate,
} from "../../proto/coherent/v1/distribution.js";
import { AgentSession, type SessionHost } from "./agent-session.js";
import { DistributorCore } from "./core.js";
import { HealthMerger } from "./health-merger.js";
import { MemoryFleetSource } from "./memory-fleet-source.js";
import { createDistributorMetrics } from "./metrics.js";
import { DistributorServer } from "./server.js";
import { fakeBundle, fleetState, RecordingSink, TestAgent, until, update } from "./test-support.js";

const INTERVAL_MS = 100;

/** The parts of a gRPC server stream a session uses, with what it wrote and how it ended. */
class FakeCall extends EventEmitter {
  ended: { code: number; details: string } | undefined;

  constructor() {
    super();
    this.on("error", (error: { code: number; details: string }) => {
      this.ended ??= error;
    });
  }

  write(): boolean {
    return true;
  }

  end(): void {
    this.ended ??= { code: status.OK, details: "" };
  }

  receive(kind: AgentMessage["kind"]): void {
    this.emit("data", { kind });
  }
}

function start(): { call: FakeCall; core: DistributorCore } {
  const now = (): number => Date.now();
  const source = new MemoryFleetSource();
  source.putBundle(fakeBundle(1));
  source.putState(fleetState({ stableVersion: 1 }));
  const core = new DistributorCore({ source, distributorId: "dist-1", now });
  let current: AgentSession | undefined;
  const host: SessionHost = {
    core,
    merger: new HealthMerger(),
    metrics: createDistributorMetrics(),
    distributorId: "dist-1",
    region: "eu-west",
    heartbeatIntervalMs: INTERVAL_MS,
    silenceLimit: 3,
    now,
    connectionAgeMs: () => 3_600_000,
    attach: (session) => {
      current = session;
      return undefined;
    },
    detach: (session) => current === session,
  };
  const call = new FakeCall();
  new AgentSession(call as never, host);
  call.receive({
    $case: "hello",
    value: {
      agentId: "a1",
      fleet: "edge",
      region: "eu-west",
      labels: {},
      currentVersion: 1,
      currentContentSha256: fakeBundle(1).contentSha256,
      softwareVersion: "test",
    },
  });
  return { call, core };
}

describe("AgentSession heartbeats", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("drops an agent silent for the limit while its ticks come on time", () => {
    const { call, core } = start();
    vi.advanceTimersByTime(INTERVAL_MS * 3);
    expect(call.ended).toBeUndefined();
    vi.advanceTimersByTime(INTERVAL_MS);
    expect(call.ended?.code).toBe(status.UNAVAILABLE);
    expect(core.connectedCount()).toBe(0);
  });

  it("does not drop an agent on a late tick: its messages may be waiting unread behind a busy loop", () => {
    const { call, core } = start();
    // The process was busy for ten intervals: the clock moved, no timer ran.
    vi.setSystemTime(Date.now() + INTERVAL_MS * 10);
    vi.advanceTimersToNextTimer();
    expect(call.ended).toBeUndefined();
    // Then the loop reads what the agent sent meanwhile, and the next tick is on time.
    call.receive({ $case: "heartbeat", value: { sentAtUnixMs: Date.now() } });
    vi.advanceTimersByTime(INTERVAL_MS);
    expect(call.ended).toBeUndefined();
    expect(core.connectedCount()).toBe(1);
  });

  it("drops it at the next on-time tick when nothing was waiting", () => {
    const { call } = start();
    vi.setSystemTime(Date.now() + INTERVAL_MS * 10);
    vi.advanceTimersToNextTimer();
    vi.advanceTimersByTime(INTERVAL_MS);
    expect(call.ended?.code).toBe(status.UNAVAILABLE);
  });
});

describe("AgentSession answers to a superseded push, over a real stream", () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });

  /** An agent on 1 that was pushed 2, then 3 before it answered: both updates, in order. */
  async function pushedTwice(): Promise<{
    server: DistributorServer;
    sink: RecordingSink;
    a: TestAgent;
    v2: BundleUpdate;
    v3: BundleUpdate;
  }> {
    const source = new MemoryFleetSource();
    for (const version of [1, 2, 3]) source.putBundle(fakeBundle(version));
    source.putState(fleetState({ stableVersion: 1 }));
    const sink = new RecordingSink();
    const server = new DistributorServer({
      source,
      sink,
      distributorId: "dist-1",
      region: "eu-west",
      heartbeatIntervalMs: 60_000,
    });
    const { client, open } = TestAgent.connect(await server.listen("127.0.0.1:0"));
    const a = open();
    cleanups.push(async () => {
      a.call.cancel();
      (client as AgentDistributionClient).close();
      await server.close();
    });
    a.hello({ agentId: "a1", currentVersion: 1, currentContentSha256: fakeBundle(1).contentSha256 });
    expect((await a.next()).kind?.$case).toBe("welcome");
    source.putState(fleetState({ stableVersion: 2, generation: 2 }));
    const v2 = update(await a.next());
    source.putState(fleetState({ stableVersion: 3, generation: 3 }));
    const v3 = update(await a.next());
    expect([v2.version, v3.version]).toEqual([2, 3]);
    expect(v3.nonce).not.toBe(v2.nonce);
    return { server, sink, a, v2, v3 };
  }

  function ack(update: BundleUpdate): AgentMessage["kind"] {
    return {
      $case: "ack",
      value: { version: update.version, nonce: update.nonce, contentSha256: update.contentSha256 },
    };
  }

  /** A counter's value, or a histogram's count, as /metrics shows it. */
  async function metric(server: DistributorServer, series: string): Promise<number | undefined> {
    const line = (await server.metrics.registry.metrics())
      .split("\n")
      .find((l) => l.startsWith(`${series} `));
    return line === undefined ? undefined : Number(line.slice(series.length + 1));
  }

  it("reports running 2, nacked 3 with the errors, after an Ack of 2 and a Nack of 3", async () => {
    const { server, sink, a, v2, v3 } = await pushedTwice();
    const errors = [{ path: "config.routes[0].pool", message: "unknown pool", code: "unknown_reference" }];
    a.send(ack(v2));
    a.send({ $case: "nack", value: { version: 3, nonce: v3.nonce, errors } });
    await until(() => server.core.get("a1")?.state === AgentState.AGENT_STATE_NACKED);
    server.flush();
    expect(sink.statuses.at(-1)).toMatchObject({
      agentId: "a1",
      runningVersion: 2,
      desiredVersion: 3,
      state: AgentState.AGENT_STATE_NACKED,
      nackVersion: 3,
      nackErrors: errors,
    });
    expect(await metric(server, "coherent_distributor_acks_total")).toBe(1);
    expect(await metric(server, "coherent_distributor_nacks_total")).toBe(1);
    expect(await metric(server, "coherent_distributor_push_to_ack_seconds_count")).toBe(0);
    expect(await a.silentFor(150)).toBe(true);
  });

  it("reports running 3, acked, after an Ack of 2 and of 3, timing only the push of 3", async () => {
    const { server, sink, a, v2, v3 } = await pushedTwice();
    a.send(ack(v2));
    a.send(ack(v3));
    await until(() => server.core.get("a1")?.runningVersion === 3);
    server.flush();
    expect(sink.statuses.at(-1)).toMatchObject({
      agentId: "a1",
      runningVersion: 3,
      desiredVersion: 3,
      state: AgentState.AGENT_STATE_ACKED,
      nackVersion: 0,
    });
    expect(await metric(server, "coherent_distributor_acks_total")).toBe(2);
    expect(await metric(server, "coherent_distributor_push_to_ack_seconds_count")).toBe(1);
    expect(await a.silentFor(150)).toBe(true);
  });
});
