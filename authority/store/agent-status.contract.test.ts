import { Migrator, sql } from "kysely";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { MIGRATIONS } from "../../migrations/index.js";
import { migrateToLatest } from "./database.js";
import type { AgentReport, HealthSampleRow } from "./rows.js";
import { AuthorityStore } from "./store.js";
import { TEST_TARGETS, type TestDatabase } from "./test-databases.js";

const START = Date.parse("2025-03-01T12:00:00.000Z");
const STALE_AFTER = 30_000;
const BOUNDS = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000];

function report(id: string, extra: Partial<AgentReport> = {}): AgentReport {
  return {
    id,
    fleet: "web",
    region: "eu",
    distributorId: "d-eu-1",
    runningVersion: 2,
    desiredVersion: 2,
    state: "acked",
    nack: null,
    labels: {},
    connected: true,
    lastSeen: new Date(START - 1_000),
    ...extra,
  };
}

function sample(extra: Partial<HealthSampleRow> = {}): HealthSampleRow {
  return {
    fleet: "web",
    version: 2,
    region: "eu",
    distributorId: "d-eu-1",
    windowStart: new Date(START),
    windowEnd: new Date(START + 5_000),
    requests: 100,
    errors5xx: 2,
    agents: 3,
    latency: { boundsMs: BOUNDS, counts: [50, 30, 10, 5, 5, 0, 0, 0, 0, 0, 0], sumMs: 700 },
    ...extra,
  };
}

for (const target of TEST_TARGETS) {
  // Skipped only when COHERENT_TEST_NO_POSTGRES=1 (no Postgres on the machine): the PGlite run still covers it.
  describe.skipIf(target.skip)(`agent statuses and health on ${target.dialect}`, () => {
    let test: TestDatabase;
    let store: AuthorityStore;
    let clock: number;

    // PGlite runs initdb each time: seconds alone, more on a machine running other suites.
    beforeAll(async () => {
      test = await target.create();
    }, 60_000);

    afterAll(async () => {
      await test?.dispose();
    });

    beforeEach(async () => {
      await test.reset();
      clock = START;
      store = new AuthorityStore(test.database, { now: () => clock, agentStaleAfterMs: STALE_AFTER });
      await store.createFleet({ name: "web" });
      await store.createFleet({ name: "api" });
      await store.submitBundle("web", "sha-1", async () => ({
        jws: "h.p.s",
        config: {},
        createdBy: "alice",
      }));
    });

    describe("agents", () => {
      it("keep every field a distributor reports, with when the authority stored them", async () => {
        const nacked = report("a-1", {
          runningVersion: 1,
          desiredVersion: 2,
          state: "nacked",
          nack: {
            version: 2,
            errors: [
              { path: "routes[2].pool", message: 'unknown pool "x"', code: "unknown_reference" },
              { path: "", message: "too large", code: "too_large" },
            ],
          },
          labels: { zone: "eu-1a", tier: "edge" },
        });
        expect(await store.upsertAgentStatuses([nacked, report("a-2", { desiredVersion: null })])).toBe(2);
        expect(await store.listAgents()).toEqual([
          { ...nacked, updatedAt: new Date(START), stale: false },
          { ...report("a-2", { desiredVersion: null }), updatedAt: new Date(START), stale: false },
        ]);
      });

      it("keep the newer report of an agent that moved, whichever arrives last", async () => {
        await store.upsertAgentStatuses([report("a-1", { distributorId: "d-2", lastSeen: new Date(START) })]);
        clock += 1_000;
        // The distributor it left reports late, with an older last_seen: nothing changes.
        expect(
          await store.upsertAgentStatuses([
            report("a-1", { distributorId: "d-1", runningVersion: 1, lastSeen: new Date(START - 5_000) }),
          ]),
        ).toBe(1);
        expect(await store.listAgents()).toMatchObject([
          { distributorId: "d-2", runningVersion: 2, updatedAt: new Date(START) },
        ]);

        await store.upsertAgentStatuses([
          report("a-1", { distributorId: "d-1", state: "pending", lastSeen: new Date(START + 500) }),
        ]);
        expect(await store.listAgents()).toMatchObject([
          { distributorId: "d-1", state: "pending", updatedAt: new Date(START + 1_000) },
        ]);
      });

      it("take the newest of one agent's reports within a batch and skip unknown fleets", async () => {
        const stored = await store.upsertAgentStatuses([
          report("a-1", { runningVersion: 3, lastSeen: new Date(START) }),
          report("a-1", { runningVersion: 1, lastSeen: new Date(START - 9_000) }),
          report("stray", { fleet: "nope" }),
        ]);
        expect(stored).toBe(1);
        expect((await store.listAgents()).map((agent) => [agent.id, agent.runningVersion])).toEqual([
          ["a-1", 3],
        ]);
      });

      it("are stale once disconnected or unheard of for longer than the limit, as of each read", async () => {
        await store.upsertAgentStatuses([
          report("live", { lastSeen: new Date(START) }),
          report("gone", { connected: false, lastSeen: new Date(START) }),
          report("quiet", { lastSeen: new Date(START - STALE_AFTER + 1_000) }),
        ]);
        const staleness = async () =>
          Object.fromEntries((await store.listAgents()).map((agent) => [agent.id, agent.stale]));
        expect(await staleness()).toEqual({ gone: true, live: false, quiet: false });
        clock += 1_001;
        expect(await staleness()).toEqual({ gone: true, live: false, quiet: true });
        expect((await store.listAgents({ stale: true })).map((agent) => agent.id)).toEqual(["gone", "quiet"]);
        expect((await store.listAgents({ stale: false })).map((agent) => agent.id)).toEqual(["live"]);
        clock += STALE_AFTER;
        expect((await store.listAgents({ stale: false })).map((agent) => agent.id)).toEqual([]);
      });

      it("stay live while their distributor is heard from, however long ago they were last reported", async () => {
        const long = new Date(START - 10 * STALE_AFTER);
        await store.upsertAgentStatuses([
          report("vouched", { lastSeen: long }),
          report("closed", { connected: false, lastSeen: long }),
          report("orphan", { distributorId: "d-silent", lastSeen: long }),
        ]);
        await store.distributorHeard("d-eu-1", "eu");
        const staleness = async () =>
          Object.fromEntries((await store.listAgents()).map((agent) => [agent.id, agent.stale]));
        expect(await staleness()).toEqual({ closed: true, orphan: true, vouched: false });
        expect((await store.fleetStatus("web"))?.agents).toMatchObject({ total: 3, stale: 2 });

        clock += STALE_AFTER + 1;
        expect(await staleness()).toEqual({ closed: true, orphan: true, vouched: true });
        await store.distributorHeard("d-eu-1", "eu");
        expect(await staleness()).toEqual({ closed: true, orphan: true, vouched: false });
      });

      it("are filtered by fleet, region and state together", async () => {
        await store.upsertAgentStatuses([
          report("a-1"),
          report("a-2", { region: "us", distributorId: "d-us-1" }),
          report("a-3", { state: "pending", desiredVersion: 3 }),
          report("b-1", { fleet: "api" }),
        ]);
        const ids = async (filter: Parameters<AuthorityStore["listAgents"]>[0]) =>
          (await store.listAgents(filter)).map((agent) => agent.id);
        expect(await ids({ fleet: "web" })).toEqual(["a-1", "a-3", "a-2"]);
        expect(await ids({ region: "us" })).toEqual(["a-2"]);
        expect(await ids({ fleet: "web", region: "eu", state: "acked" })).toEqual(["a-1"]);
        expect(await ids({ state: "pending" })).toEqual(["a-3"]);
        expect(await ids({ fleet: "nope" })).toEqual([]);
      });
    });

    describe("a fleet's status", () => {
      it("adds live agents up per version, stale ones apart", async () => {
        await store.upsertAgentStatuses([
          report("acked-2a", { lastSeen: new Date(START) }),
          report("acked-2b", { lastSeen: new Date(START) }),
          report("pending-3", { state: "pending", desiredVersion: 3, lastSeen: new Date(START) }),
          report("nacked-3", {
            state: "nacked",
            desiredVersion: 3,
            nack: { version: 3, errors: [] },
            lastSeen: new Date(START),
          }),
          report("new", {
            runningVersion: null,
            desiredVersion: 2,
            state: "pending",
            lastSeen: new Date(START),
          }),
          report("unknown", { state: "unknown", desiredVersion: null, lastSeen: new Date(START) }),
          report("gone", { runningVersion: 1, connected: false, lastSeen: new Date(START) }),
          report("other-fleet", { fleet: "api" }),
        ]);
        const status = await store.fleetStatus("web");
        expect(status?.state).toMatchObject({ fleet: "web", stableVersion: 1, generation: 1 });
        expect(status?.agents).toEqual({
          total: 7,
          stale: 1,
          byVersion: [
            { version: 3, running: 0, acked: 0, pending: 1, nacked: 1, stale: 0 },
            { version: 2, running: 5, acked: 2, pending: 1, nacked: 0, stale: 0 },
            { version: 1, running: 0, acked: 0, pending: 0, nacked: 0, stale: 1 },
            { version: null, running: 1, acked: 0, pending: 0, nacked: 0, stale: 0 },
          ],
        });
      });

      it("has no agents before any report, and there is none for an unknown fleet", async () => {
        expect((await store.fleetStatus("api"))?.agents).toEqual({ total: 0, stale: 0, byVersion: [] });
        expect(await store.fleetStatus("nope")).toBeUndefined();
      });
    });

    describe("health samples", () => {
      it("keep both distributors' samples of one window and replace a distributor's repeated one", async () => {
        expect(
          await store.insertHealthSamples([
            sample(),
            sample({ distributorId: "d-eu-2", requests: 40, agents: 1 }),
            sample({ fleet: "nope" }),
          ]),
        ).toBe(2);
        await store.insertHealthSamples([
          sample({ requests: 120, errors5xx: 4, windowEnd: new Date(START + 6_000) }),
        ]);
        expect(await store.listHealthSamples({ fleet: "web" })).toEqual([
          sample({ requests: 120, errors5xx: 4, windowEnd: new Date(START + 6_000) }),
          sample({ distributorId: "d-eu-2", requests: 40, agents: 1 }),
        ]);
      });

      it("are summed per version over the windows wholly within a range, every region and distributor", async () => {
        const at = (offset: number) => ({
          windowStart: new Date(START + offset),
          windowEnd: new Date(START + offset + 5_000),
        });
        await store.insertHealthSamples([
          sample({ ...at(-5_000), requests: 1_000 }),
          sample({ ...at(0) }),
          sample({ ...at(5_000), agents: 4 }),
          sample({ ...at(0), distributorId: "d-eu-2", agents: 2, requests: 10, errors5xx: 1 }),
          sample({ ...at(0), region: "us", distributorId: "d-us-1", agents: 5 }),
          sample({
            ...at(5_000),
            region: "us",
            distributorId: "d-us-1",
            latency: { boundsMs: [10, 100], counts: [1, 1, 1], sumMs: 50 },
          }),
          sample({
            ...at(0),
            version: 3,
            requests: 7,
            errors5xx: 7,
            agents: 1,
            latency: { boundsMs: [], counts: [], sumMs: 0 },
          }),
          sample({ ...at(10_000), requests: 1_000 }),
        ]);

        const summary = await store.healthSummary("web", new Date(START), new Date(START + 10_000));
        expect(summary).toEqual([
          {
            fleet: "web",
            version: 2,
            requests: 410,
            errors5xx: 9,
            agents: 4 + 2 + 5,
            samples: 5,
            windowStart: new Date(START),
            windowEnd: new Date(START + 10_000),
            latency: { boundsMs: BOUNDS, counts: [200, 120, 40, 20, 20, 0, 0, 0, 0, 0, 0], sumMs: 2_800 },
            latencyExcluded: 1,
          },
          {
            fleet: "web",
            version: 3,
            requests: 7,
            errors5xx: 7,
            agents: 1,
            samples: 1,
            windowStart: new Date(START),
            windowEnd: new Date(START + 5_000),
            latency: null,
            latencyExcluded: 1,
          },
        ]);
        expect(await store.healthSummary("web", new Date(START + 20_000), new Date(START + 30_000))).toEqual(
          [],
        );
        expect(await store.healthSummary("api", new Date(START), new Date(START + 10_000))).toEqual([]);
      });
    });

    describe("migration 0003", () => {
      it("keeps the agents and samples stored before it, a closed stream as not connected", async () => {
        const db = test.database.db;
        const { rows } = await sql<{ schema: string }>`select current_schema() as schema`.execute(db);
        const migrator = new Migrator({
          db,
          provider: { getMigrations: async () => ({ ...MIGRATIONS }) },
          migrationTableSchema: rows[0]?.schema ?? "public",
        });
        expect((await migrator.migrateTo("0002_fleet_states")).error).toBeUndefined();
        await sql`insert into agents (id, fleet, region, version, state, last_seen) values
          ('a-1', 'web', 'eu', 1, 'acked', ${new Date(START)}),
          ('a-2', 'web', 'eu', 1, 'disconnected', ${new Date(START)})`.execute(db);
        await sql`insert into health_samples (fleet, version, region, window_start, requests, errors_5xx, latency_buckets)
          values ('web', 1, 'eu', ${new Date(START)}, 10, 1, '[9, 1]')`.execute(db);

        expect(await migrateToLatest(db)).toEqual({ applied: ["0003_agent_status", "0004_rollouts"] });
        expect(await store.listAgents()).toMatchObject([
          {
            id: "a-1",
            runningVersion: 1,
            state: "acked",
            connected: true,
            distributorId: null,
            nack: null,
            labels: {},
          },
          { id: "a-2", runningVersion: 1, state: "unknown", connected: false, stale: true },
        ]);
        expect(await store.listHealthSamples({ fleet: "web" })).toEqual([
          sample({
            version: 1,
            distributorId: "",
            windowEnd: new Date(START),
            requests: 10,
            errors5xx: 1,
            agents: 0,
            latency: { boundsMs: [], counts: [9, 1], sumMs: 0 },
          }),
        ]);
      });
    });
  });
}
