import { EventEmitter } from "node:events";
import { status } from "@grpc/grpc-js";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { AgentMessage } from "../../proto/coherent/v1/distribution.js";
import { AgentSession, type SessionHost } from "./agent-session.js";
import { DistributorCore } from "./core.js";
import { HealthMerger } from "./health-merger.js";
import { MemoryFleetSource } from "./memory-fleet-source.js";
import { createDistributorMetrics } from "./metrics.js";
import { fakeBundle, fleetState } from "./test-support.js";

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
