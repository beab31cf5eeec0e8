import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { AgentState } from "../../proto/coherent/v1/authority.js";
import type { AgentDistributionClient, DistributorMessage } from "../../proto/coherent/v1/distribution.js";
import { Keyring } from "../bundle/index.js";
import { DiskCache } from "./disk-cache.js";
import type { FleetSource } from "./fleet-source.js";
import { MemoryFleetSource } from "./memory-fleet-source.js";
import { DistributorServer, type DistributorServerOptions } from "./server.js";
import {
  fakeBundle,
  fleetState,
  newSigningKey,
  RecordingSink,
  signedBundle,
  TestAgent,
  until,
  update,
} from "./test-support.js";

const cleanups: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Running {
  server: DistributorServer;
  sink: RecordingSink;
  agent(): TestAgent;
}

async function start(source: FleetSource, options: Partial<DistributorServerOptions> = {}): Promise<Running> {
  const sink = new RecordingSink();
  const server = new DistributorServer({
    source,
    sink,
    distributorId: "dist-1",
    region: "eu-west",
    heartbeatIntervalMs: 60_000,
    ...options,
  });
  const port = await server.listen("127.0.0.1:0");
  const { client, open } = TestAgent.connect(port);
  const agents: TestAgent[] = [];
  cleanups.push(async () => {
    for (const agent of agents) agent.call.cancel();
    (client as AgentDistributionClient).close();
    await server.close();
  });
  return {
    server,
    sink,
    agent: () => {
      const agent = open();
      agents.push(agent);
      return agent;
    },
  };
}

function source(stable = 1): MemoryFleetSource {
  const memory = new MemoryFleetSource();
  for (const version of [1, 2, 3]) memory.putBundle(fakeBundle(version));
  memory.putState(fleetState({ stableVersion: stable }));
  return memory;
}

async function welcomed(agent: TestAgent): Promise<void> {
  expect((await agent.next()).kind).toEqual({
    $case: "welcome",
    value: { distributorId: "dist-1", region: "eu-west", heartbeatIntervalMs: 60_000 },
  });
}

describe("AgentDistribution server", () => {
  it("welcomes an agent and pushes the desired bundle with a fresh nonce, then counts its Ack", async () => {
    const { server, agent } = await start(source());
    const a = agent();
    a.hello({ agentId: "a1" });
    await welcomed(a);
    const pushed = update(await a.next());
    expect(pushed).toMatchObject({ fleet: "edge", version: 1, contentSha256: fakeBundle(1).contentSha256 });
    expect(pushed.signedBundle.toString("latin1")).toBe("jws-of-edge-1");
    expect(pushed.nonce).toMatch(/^[A-Za-z0-9_-]{22}$/);

    a.send({ $case: "ack", value: { version: 1, nonce: pushed.nonce, contentSha256: pushed.contentSha256 } });
    await until(() => server.core.get("a1")?.state === AgentState.AGENT_STATE_ACKED);
    const metrics = await server.metrics.registry.getMetricsAsJSON();
    const value = (name: string): unknown => metrics.find((m) => m.name === name)?.values[0]?.value;
    expect(value("coherent_distributor_pushes_total")).toBe(1);
    expect(value("coherent_distributor_acks_total")).toBe(1);
    expect(value("coherent_distributor_connected_agents")).toBe(1);
    const text = await server.metrics.registry.metrics();
    expect(text).toContain("coherent_distributor_push_to_ack_seconds_count 1");
  });

  it("sends nothing but Welcome to a reconnecting agent already on the desired version", async () => {
    const { agent } = await start(source());
    const a = agent();
    a.hello({ agentId: "a1", currentVersion: 1, currentContentSha256: fakeBundle(1).contentSha256 });
    await welcomed(a);
    expect(await a.silentFor(200)).toBe(true);
  });

  it("never re-pushes a NACKed version, even on a new stream, and pushes the next version", async () => {
    const memory = source();
    const { server, agent } = await start(memory);
    const first = agent();
    first.hello({ agentId: "a1" });
    await welcomed(first);
    const pushed = update(await first.next());
    first.send({
      $case: "nack",
      value: {
        version: 1,
        nonce: pushed.nonce,
        errors: [{ path: "routes[0].pool", message: "unknown pool", code: "x" }],
      },
    });
    await until(() => server.core.get("a1")?.state === AgentState.AGENT_STATE_NACKED);
    first.call.end();
    await first.ended;

    const second = agent();
    second.hello({ agentId: "a1" });
    await welcomed(second);
    expect(await second.silentFor(200)).toBe(true);

    memory.putState(fleetState({ stableVersion: 2, generation: 2 }));
    expect(update(await second.next()).version).toBe(2);
  });

  it("pushes the candidate to connected agents when a rollout reaches 100%", async () => {
    const memory = source();
    const { agent } = await start(memory);
    const a = agent();
    a.hello({ agentId: "a1", currentVersion: 1, currentContentSha256: fakeBundle(1).contentSha256 });
    await welcomed(a);
    memory.putState(
      fleetState({
        stableVersion: 1,
        candidateVersion: 3,
        rolloutId: "r1",
        candidatePercent: 100,
        generation: 2,
      }),
    );
    expect(update(await a.next()).version).toBe(3);
  });

  it("serves a new agent from the disk cache after a restart with the authority gone", async () => {
    const dir = await mkdtemp(join(tmpdir(), "coherent-dist-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const key = await newSigningKey();
    const keyring = await Keyring.from([{ jwk: key.publicJwk }]);
    const bundle = await signedBundle(key, 2);
    const before = await DiskCache.open({ dir, keyring });
    await before.putBundle(bundle);
    await before.putState(fleetState({ stableVersion: 2, generation: 7 }));

    const { agent } = await start(await DiskCache.open({ dir, keyring }));
    const a = agent();
    a.hello({ agentId: "fresh" });
    await welcomed(a);
    const pushed = update(await a.next());
    expect(pushed.version).toBe(2);
    expect(pushed.signedBundle.equals(bundle.signedBundle)).toBe(true);
  });

  it("closes a stream at its max connection age so the agent reconnects", async () => {
    const { server, agent } = await start(source(), { maxConnectionAgeMs: 150, maxConnectionAgeJitter: 0.1 });
    const a = agent();
    a.hello({ agentId: "a1" });
    const startedAt = Date.now();
    const ended = await a.ended;
    expect(ended.code).toBe(status.UNAVAILABLE);
    expect(ended.details).toContain("max connection age");
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(120);
    await until(() => server.core.connectedCount() === 0);
  });

  it("draws each stream's age within the jitter around the maximum", async () => {
    let draw = 0;
    const { server } = await start(source(), {
      maxConnectionAgeMs: 1_000,
      maxConnectionAgeJitter: 0.2,
      random: () => draw,
    });
    expect(server.connectionAgeMs()).toBe(800);
    draw = 1;
    expect(server.connectionAgeMs()).toBe(1_200);
  });

  it("merges health reports per (fleet, version, region) and forwards them with agent statuses", async () => {
    const { server, sink, agent } = await start(source());
    for (const id of ["a1", "a2"]) {
      const a = agent();
      a.hello({ agentId: id, currentVersion: 1, currentContentSha256: fakeBundle(1).contentSha256 });
      await welcomed(a);
      a.send({
        $case: "healthReport",
        value: {
          windowStartUnixMs: 10_000,
          windowEndUnixMs: 15_000,
          versions: [{ version: 1, requests: 10, errors5xx: 2, latency: undefined }],
        },
      });
    }
    await until(() => {
      server.flush();
      return sink.samples.reduce((n, s) => n + s.agents, 0) === 2;
    });
    const total = sink.samples.reduce((n, s) => n + s.requests, 0);
    expect(total).toBe(20);
    expect(sink.samples[0]).toMatchObject({ fleet: "edge", version: 1, region: "eu-west" });
    expect(new Set(sink.statuses.map((s) => s.agentId))).toEqual(new Set(["a1", "a2"]));
  });

  it("forwards health on its own timer", async () => {
    const { sink, agent } = await start(source(), { healthFlushMs: 50 });
    const a = agent();
    a.hello({ agentId: "a1" });
    await welcomed(a);
    a.send({
      $case: "healthReport",
      value: {
        windowStartUnixMs: 0,
        windowEndUnixMs: 5_000,
        versions: [{ version: 0, requests: 3, errors5xx: 0, latency: undefined }],
      },
    });
    await until(() => sink.samples.length === 1);
    expect(sink.samples[0]).toMatchObject({ requests: 3, agents: 1 });
  });

  it("refuses a stream whose first message is not Hello", async () => {
    const { agent } = await start(source());
    const a = agent();
    a.send({ $case: "heartbeat", value: { sentAtUnixMs: 1 } });
    expect((await a.ended).code).toBe(status.INVALID_ARGUMENT);
  });

  it("sends heartbeats and drops an agent that stays silent", async () => {
    const { server, agent } = await start(source(), { heartbeatIntervalMs: 40, silenceLimit: 3 });
    const a = agent();
    const received: string[] = [];
    a.call.on("data", (m: DistributorMessage) => received.push(m.kind?.$case ?? ""));
    a.hello({ agentId: "a1", currentVersion: 1, currentContentSha256: fakeBundle(1).contentSha256 });
    const ended = await a.ended;
    expect(ended.code).toBe(status.UNAVAILABLE);
    expect(received).toContain("heartbeat");
    expect(server.core.get("a1")?.connected).toBe(false);
  });

  it("replaces an agent's older stream when it opens a new one", async () => {
    const { server, agent } = await start(source());
    const first = agent();
    first.hello({ agentId: "a1" });
    await welcomed(first);
    const second = agent();
    second.hello({ agentId: "a1" });
    await welcomed(second);
    expect((await first.ended).code).toBe(status.ABORTED);
    expect(server.core.get("a1")?.connected).toBe(true);
    expect(server.core.connectedCount()).toBe(1);
  });

  it("answers /healthz and /metrics", async () => {
    const { server, agent } = await start(source());
    const port = await server.listenHttp(0);
    const a = agent();
    a.hello({ agentId: "a1" });
    await welcomed(a);
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: "ok", connected_agents: 1 });
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metrics).toContain("coherent_distributor_pushes_total 1");
  });
});
