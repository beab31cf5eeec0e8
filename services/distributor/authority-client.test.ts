/**
 * The feed client against a bare AuthorityFeed server that records what comes up and sends
 * what a test tells it: the queues, the full status resend after each Subscribe, heartbeats,
 * a silent authority left for the next, the last health sent on close. The client against the
 * real authority is in test/distributor/feed-client.test.ts.
 */
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Server, ServerCredentials, type ServerDuplexStream } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import {
  AgentState,
  type AgentStatus,
  type AuthorityDownstream,
  type AuthorityFeedServer,
  AuthorityFeedService,
  type DistributorUpstream,
  type HealthSample,
} from "../../proto/coherent/v1/authority.js";
import { Keyring } from "../bundle/index.js";
import { createLogger } from "../telemetry/logger.js";
import { AuthorityClient, type AuthorityClientOptions } from "./authority-client.js";
import { DiskCache } from "./disk-cache.js";
import { fleetState, newSigningKey, signedBundle } from "./test-support.js";

type Kind = NonNullable<DistributorUpstream["kind"]>;
type ValueOf = { [K in Kind as K["$case"]]: K["value"] };
type Call = ServerDuplexStream<DistributorUpstream, AuthorityDownstream>;

/** Records every upstream message per stream; answers Subscribe with SyncComplete unless mute. */
class BareFeed {
  readonly streams: Kind[][] = [];
  readonly calls: Call[] = [];
  readonly #server = new Server();
  mute = false;
  port = 0;

  constructor() {
    const handlers: AuthorityFeedServer = {
      subscribe: (call) => {
        const received: Kind[] = [];
        this.streams.push(received);
        this.calls.push(call);
        call.on("data", (message: DistributorUpstream) => {
          if (message.kind === undefined) return;
          received.push(message.kind);
          if (message.kind.$case === "subscribe" && !this.mute) {
            call.write({ kind: { $case: "syncComplete", value: {} } });
          }
        });
        call.on("end", () => call.end());
        call.on("error", () => undefined);
      },
    };
    this.#server.addService(AuthorityFeedService, handlers);
  }

  async listen(): Promise<string> {
    this.port = await new Promise<number>((resolve, reject) =>
      this.#server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (error, port) =>
        error ? reject(error) : resolve(port),
      ),
    );
    return `127.0.0.1:${this.port}`;
  }

  of<C extends keyof ValueOf>(stream: number, kind: C): ValueOf[C][] {
    const values: ValueOf[C][] = [];
    for (const each of this.streams[stream] ?? [])
      if (each.$case === kind) values.push(each.value as ValueOf[C]);
    return values;
  }

  close(): void {
    this.#server.forceShutdown();
  }
}

function status(agentId: string, fields: Partial<AgentStatus> = {}): AgentStatus {
  return {
    agentId,
    fleet: "edge",
    region: "eu-west",
    distributorId: "dist-1",
    runningVersion: 1,
    desiredVersion: 1,
    state: AgentState.AGENT_STATE_ACKED,
    nackErrors: [],
    nackVersion: 0,
    lastSeenUnixMs: Date.now(),
    labels: {},
    connected: true,
    ...fields,
  };
}

function sample(windowStart: number): HealthSample {
  return {
    fleet: "edge",
    version: 1,
    region: "eu-west",
    windowStartUnixMs: windowStart,
    windowEndUnixMs: windowStart + 5_000,
    requests: 1,
    errors5xx: 0,
    latency: undefined,
    agents: 1,
  };
}

async function eventually(check: () => boolean, what: string, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const cleanups: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(
  addresses: string[],
  options: Partial<AuthorityClientOptions> = {},
): Promise<{
  client: AuthorityClient;
  cache: DiskCache;
  lines: string[];
  key: Awaited<ReturnType<typeof newSigningKey>>;
  dir: string;
}> {
  const dir = await mkdtemp(join(tmpdir(), "coherent-feed-client-"));
  const key = await newSigningKey();
  const cache = await DiskCache.open({ dir, keyring: await Keyring.from([{ jwk: key.publicJwk }]) });
  const lines: string[] = [];
  const client = new AuthorityClient({
    addresses,
    distributorId: "dist-1",
    region: "eu-west",
    cache,
    logger: createLogger({ name: "test", level: "info", destination: { write: (line) => lines.push(line) } }),
    backoffBaseMs: 20,
    backoffCapMs: 50,
    heartbeatIntervalMs: 100,
    silenceMs: 1_000,
    ...options,
  });
  cleanups.push(async () => {
    await client.close();
    await rm(dir, { recursive: true, force: true });
  });
  return { client, cache, lines, key, dir };
}

describe("AuthorityClient", () => {
  it("subscribes with what its cache holds, and caches what comes down in order", async () => {
    const feed = new BareFeed();
    cleanups.push(() => feed.close());
    const address = await feed.listen();
    const { client, cache, key } = await setup([address]);
    await cache.putBundle(await signedBundle(key, 1));
    await cache.putState(fleetState({ stableVersion: 1, generation: 1 }));
    client.start();
    await eventually(() => client.synced, "SyncComplete");
    expect(feed.of(0, "subscribe")).toEqual([
      {
        distributorId: "dist-1",
        region: "eu-west",
        knownFleets: [{ fleet: "edge", latestBundleVersion: 1, fleetStateGeneration: 1 }],
      },
    ]);

    const call = feed.calls[0] as Call;
    call.write({ kind: { $case: "bundle", value: await signedBundle(key, 2) } });
    call.write({ kind: { $case: "fleetState", value: fleetState({ stableVersion: 2, generation: 2 }) } });
    await eventually(() => cache.state("edge")?.generation === 2, "the new state");
    expect(cache.bundle("edge", 2)?.version).toBe(2);
  });

  it("asks again for a bundle its cache could not write, applying nothing after it on that stream", async () => {
    const feed = new BareFeed();
    cleanups.push(() => feed.close());
    const address = await feed.listen();
    const { client, cache, key, lines, dir } = await setup([address]);
    await cache.putBundle(await signedBundle(key, 1));
    await cache.putState(fleetState({ stableVersion: 1, generation: 1 }));
    client.start();
    await eventually(() => client.synced, "SyncComplete");
    // A non-empty directory where v2's file goes: its write fails, as on a full disk.
    const blocked = join(dir, "bundles", "fleet=edge", "2.jws");
    await mkdir(join(blocked, "in-the-way"), { recursive: true });

    const first = feed.calls[0] as Call;
    first.write({ kind: { $case: "bundle", value: await signedBundle(key, 2) } });
    first.write({ kind: { $case: "fleetState", value: fleetState({ stableVersion: 2, generation: 2 }) } });
    await eventually(() => feed.of(1, "subscribe").length === 1, "a new Subscribe");
    expect(lines.some((line) => line.includes('"event":"bundle_not_cached"'))).toBe(true);
    // The state naming the missing bundle was held back, so the authority sends both again.
    expect(cache.state("edge")?.generation).toBe(1);
    expect(feed.of(1, "subscribe")[0]?.knownFleets).toEqual([
      { fleet: "edge", latestBundleVersion: 1, fleetStateGeneration: 1 },
    ]);

    await rm(blocked, { recursive: true });
    const second = feed.calls[1] as Call;
    second.write({ kind: { $case: "bundle", value: await signedBundle(key, 2) } });
    second.write({ kind: { $case: "fleetState", value: fleetState({ stableVersion: 2, generation: 2 }) } });
    await eventually(() => cache.state("edge")?.generation === 2, "the state after the bundle");
    expect(cache.bundle("edge", 2)?.version).toBe(2);
    expect(feed.streams).toHaveLength(2);
  });

  it("queues statuses coalesced by agent and health up to its bound while no authority answers", async () => {
    const feed = new BareFeed();
    cleanups.push(() => feed.close());
    const address = await feed.listen();
    feed.mute = true;
    const { client, lines } = await setup([address], { maxQueuedSamples: 3 });
    client.start();
    client.agentStatus([status("a", { runningVersion: 1 }), status("b")]);
    client.agentStatus([status("a", { runningVersion: 2 })]);
    client.health([sample(1), sample(2)]);
    client.health([sample(3), sample(4), sample(5)]);
    expect(client.droppedSamples).toBe(2);
    expect(lines.some((line) => line.includes('"event":"health_dropped"'))).toBe(true);
    await eventually(() => feed.streams.length === 1, "a stream");
    // Nothing goes up before the authority answers: it could be lost in a dead connection.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(feed.streams[0]?.map((kind) => kind.$case)).toEqual(["subscribe"]);

    (feed.calls[0] as Call).write({ kind: { $case: "syncComplete", value: {} } });
    await eventually(() => feed.of(0, "healthBatch").length === 1, "the health batch");
    const statuses = feed.of(0, "agentStatusBatch").flatMap((batch) => batch.statuses);
    expect(statuses.map((s) => [s.agentId, s.runningVersion])).toEqual([
      ["a", 2],
      ["b", 1],
    ]);
    expect(feed.of(0, "healthBatch")[0]?.samples.map((s) => s.windowStartUnixMs)).toEqual([3, 4, 5]);
  });

  it("sends every known agent again after a resubscribe, in batches of the set size", async () => {
    const feed = new BareFeed();
    cleanups.push(() => feed.close());
    const address = await feed.listen();
    const { client } = await setup([address], { statusBatchSize: 2 });
    client.start();
    await eventually(() => client.synced, "SyncComplete");
    client.agentStatus([status("a"), status("b"), status("c")]);
    await eventually(() => feed.of(0, "agentStatusBatch").length === 2, "two batches");

    (feed.calls[0] as Call).end();
    await eventually(() => feed.of(1, "agentStatusBatch").length === 2, "the full resend on the new stream");
    expect(feed.of(1, "agentStatusBatch").map((batch) => batch.statuses.map((s) => s.agentId))).toEqual([
      ["a", "b"],
      ["c"],
    ]);
  });

  it("heartbeats when idle and leaves a silent authority for the next address", async () => {
    const silent = new BareFeed();
    silent.mute = true;
    const answering = new BareFeed();
    cleanups.push(
      () => silent.close(),
      () => answering.close(),
    );
    const first = await silent.listen();
    const second = await answering.listen();
    const { client, lines } = await setup([first, second], { silenceMs: 300 });
    client.start();
    await eventually(() => client.connectedTo === second, "subscribed to the second address");
    expect(lines.some((line) => line.includes('"event":"authority_silent"'))).toBe(true);
    await eventually(() => answering.of(0, "heartbeat").length >= 2, "heartbeats");
  });

  it("sends the health handed to it on close before ending the stream", async () => {
    const feed = new BareFeed();
    cleanups.push(() => feed.close());
    const address = await feed.listen();
    const { client } = await setup([address], { heartbeatIntervalMs: 60_000 });
    client.start();
    await eventually(() => client.synced, "SyncComplete");
    client.health([sample(42)]);
    await client.close();
    expect(
      feed.of(0, "healthBatch").flatMap((batch) => batch.samples.map((s) => s.windowStartUnixMs)),
    ).toContain(42);
    expect(client.connectedTo).toBeUndefined();
  });
});
