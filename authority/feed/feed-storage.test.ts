/**
 * What a distributor reports up a real AuthorityFeed stream lands in the store with every field:
 * agent statuses (newest report wins) and health samples (one per distributor and window).
 */
import { type ClientDuplexStream, credentials } from "@grpc/grpc-js";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  AgentState,
  type AgentStatus,
  type AuthorityDownstream,
  AuthorityFeedClient,
  type DistributorUpstream,
  type HealthSample,
} from "../../proto/coherent/v1/authority.js";
import { createLogger } from "../../services/telemetry/logger.js";
import { AuthorityStore } from "../store/index.js";
import { TEST_TARGETS, type TestDatabase } from "../store/test-databases.js";
import { eventually } from "../store/test-support.js";
import { AuthorityFeedServer } from "./feed-server.js";

const silent = createLogger({ name: "feed", level: "silent" });
const NOW = Date.parse("2025-03-01T12:00:00.000Z");

type Stream = ClientDuplexStream<DistributorUpstream, AuthorityDownstream>;

function status(agentId: string, extra: Partial<AgentStatus> = {}): AgentStatus {
  return {
    agentId,
    fleet: "web",
    region: "eu",
    distributorId: "d-1",
    runningVersion: 1,
    desiredVersion: 1,
    state: AgentState.AGENT_STATE_ACKED,
    nackErrors: [],
    nackVersion: 0,
    lastSeenUnixMs: NOW - 1_000,
    labels: {},
    connected: true,
    ...extra,
  };
}

function sample(extra: Partial<HealthSample> = {}): HealthSample {
  return {
    fleet: "web",
    version: 1,
    region: "eu",
    windowStartUnixMs: NOW - 10_000,
    windowEndUnixMs: NOW - 5_000,
    requests: 120,
    errors5xx: 3,
    latency: { boundsMs: [10, 100], counts: [100, 15, 5], sumMs: 900, count: 120 },
    agents: 2,
    ...extra,
  };
}

for (const target of TEST_TARGETS) {
  // Skipped only when COHERENT_TEST_NO_POSTGRES=1 (no Postgres on the machine): the PGlite run still covers it.
  describe.skipIf(target.skip)(`reports stored through AuthorityFeed on ${target.dialect}`, () => {
    let test: TestDatabase;
    let store: AuthorityStore;
    let server: AuthorityFeedServer;
    let client: AuthorityFeedClient;
    const open: Stream[] = [];
    /** The authority's clock. */
    let now = NOW;

    /** A subscribed distributor's stream; what comes down is not read here. */
    function distributor(distributorId: string): Stream {
      const call = client.subscribe();
      call.on("data", () => undefined);
      call.on("error", () => undefined);
      call.write({ kind: { $case: "subscribe", value: { distributorId, region: "eu", knownFleets: [] } } });
      open.push(call);
      return call;
    }

    const statuses = (call: Stream, list: AgentStatus[]) =>
      call.write({ kind: { $case: "agentStatusBatch", value: { statuses: list } } });
    const health = (call: Stream, samples: HealthSample[]) =>
      call.write({ kind: { $case: "healthBatch", value: { samples } } });

    beforeAll(async () => {
      test = await target.create();
      store = new AuthorityStore(test.database, { now: () => now, agentStaleAfterMs: 60_000 });
    }, 60_000);

    afterAll(async () => {
      await test?.dispose();
    });

    beforeEach(async () => {
      await test.reset();
      now = NOW;
      server = new AuthorityFeedServer({ store, logger: silent, now: () => now, heartbeatIntervalMs: 0 });
      const port = await server.listen("127.0.0.1:0");
      client = new AuthorityFeedClient(`127.0.0.1:${port}`, credentials.createInsecure());
      await store.createFleet({ name: "web" });
      await store.submitBundle("web", "sha-1", async () => ({
        jws: "h.p.s",
        config: {},
        createdBy: "alice",
      }));
    });

    afterEach(async () => {
      for (const call of open.splice(0)) call.cancel();
      await server.close();
      client.close();
    });

    it("stores an agent status with every field, its NACK and labels included", async () => {
      const feed = distributor("d-1");
      statuses(feed, [
        status("a-1", {
          runningVersion: 1,
          desiredVersion: 2,
          state: AgentState.AGENT_STATE_NACKED,
          nackVersion: 2,
          nackErrors: [
            { path: "routes[0].pool", message: 'unknown pool "x"', code: "unknown_reference" },
            { path: "", message: "signature does not verify", code: "bad_signature" },
          ],
          labels: { zone: "eu-1a" },
        }),
        // Distributors leave last_seen and their id unset at times: the stream and the clock fill them.
        status("a-2", {
          distributorId: "",
          lastSeenUnixMs: 0,
          runningVersion: 0,
          desiredVersion: 0,
          state: 0,
        }),
        status("stray", { fleet: "nope" }),
      ]);
      await eventually(async () => (await store.listAgents()).length === 2);
      expect(await store.listAgents()).toEqual([
        {
          id: "a-1",
          fleet: "web",
          region: "eu",
          distributorId: "d-1",
          runningVersion: 1,
          desiredVersion: 2,
          state: "nacked",
          nack: {
            version: 2,
            errors: [
              { path: "routes[0].pool", message: 'unknown pool "x"', code: "unknown_reference" },
              { path: "", message: "signature does not verify", code: "bad_signature" },
            ],
          },
          labels: { zone: "eu-1a" },
          connected: true,
          lastSeen: new Date(NOW - 1_000),
          updatedAt: new Date(NOW),
          stale: false,
        },
        {
          id: "a-2",
          fleet: "web",
          region: "eu",
          distributorId: "d-1",
          runningVersion: null,
          desiredVersion: null,
          state: "unknown",
          nack: null,
          labels: {},
          connected: true,
          lastSeen: new Date(NOW),
          updatedAt: new Date(NOW),
          stale: false,
        },
      ]);
    });

    it("keeps the newer report of an agent that moved between distributors, and a closed stream as stale", async () => {
      const first = distributor("d-1");
      const second = distributor("d-2");
      statuses(second, [
        status("a-1", { distributorId: "d-2", runningVersion: 1, lastSeenUnixMs: NOW - 500 }),
      ]);
      await eventually(async () => (await store.listAgents())[0]?.distributorId === "d-2");
      // The distributor it left reports late, and older.
      statuses(first, [status("a-1", { connected: false, lastSeenUnixMs: NOW - 3_000 })]);
      statuses(second, [status("a-9", { distributorId: "d-2" })]);
      await eventually(async () => (await store.listAgents()).length === 2);
      expect(await store.listAgents()).toMatchObject([
        { id: "a-1", distributorId: "d-2", connected: true, stale: false },
        { id: "a-9" },
      ]);

      statuses(second, [status("a-1", { distributorId: "d-2", connected: false, lastSeenUnixMs: NOW })]);
      await eventually(async () => (await store.listAgents())[0]?.connected === false);
      expect(await store.listAgents({ stale: true })).toMatchObject([
        { id: "a-1", state: "acked", connected: false, stale: true },
      ]);
    });

    it("keeps a distributor's agents live while its feed is heard from, not after", async () => {
      const feed = distributor("d-1");
      statuses(feed, [status("a-1", { lastSeenUnixMs: NOW - 30_000 })]);
      await eventually(async () => (await store.listAgents()).length === 1);
      now = NOW + 120_000;
      expect(await store.listAgents()).toMatchObject([{ id: "a-1", stale: true }]);
      feed.write({ kind: { $case: "heartbeat", value: { sentAtUnixMs: now } } });
      await eventually(async () => (await store.listAgents())[0]?.stale === false);
    });

    it("counts two distributors' samples of one window and replaces a distributor's repeated one", async () => {
      const first = distributor("d-1");
      const second = distributor("d-2");
      health(first, [sample()]);
      health(second, [sample({ requests: 30, errors5xx: 0, agents: 1 })]);
      health(first, [sample({ requests: 150, errors5xx: 6 }), sample({ fleet: "nope" })]);
      await eventually(
        async () =>
          (await store.listHealthSamples({ fleet: "web" })).map((row) => row.requests).join() === "150,30",
      );
      expect(await store.listHealthSamples({ fleet: "web" })).toEqual([
        {
          fleet: "web",
          version: 1,
          region: "eu",
          distributorId: "d-1",
          windowStart: new Date(NOW - 10_000),
          windowEnd: new Date(NOW - 5_000),
          requests: 150,
          errors5xx: 6,
          agents: 2,
          latency: { boundsMs: [10, 100], counts: [100, 15, 5], sumMs: 900 },
        },
        {
          fleet: "web",
          version: 1,
          region: "eu",
          distributorId: "d-2",
          windowStart: new Date(NOW - 10_000),
          windowEnd: new Date(NOW - 5_000),
          requests: 30,
          errors5xx: 0,
          agents: 1,
          latency: { boundsMs: [10, 100], counts: [100, 15, 5], sumMs: 900 },
        },
      ]);
      expect(await store.healthSummary("web", new Date(NOW - 60_000), new Date(NOW))).toMatchObject([
        { version: 1, requests: 180, errors5xx: 6, agents: 3, samples: 2 },
      ]);
    });
  });
}
