import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AgentReport } from "../store/index.js";
import {
  DIALECTS,
  dropSchema,
  sampleConfig,
  startTestAuthority,
  type TestAuthority,
  testDatabase,
} from "./test-harness.js";

const asRecord = (body: unknown) => body as Record<string, unknown>;

/** Reported just now, or `ageMs` ago: more than the 60 s limit set below is stale. */
function report(id: string, extra: Partial<AgentReport> = {}, ageMs = 0): AgentReport {
  return {
    id,
    fleet: "web",
    region: "eu",
    distributorId: "d-eu-1",
    runningVersion: 1,
    desiredVersion: 1,
    state: "acked",
    nack: null,
    labels: {},
    connected: true,
    lastSeen: new Date(Date.now() - ageMs),
    ...extra,
  };
}

for (const { name, skip } of DIALECTS) {
  // Skipped only when COHERENT_TEST_NO_POSTGRES=1 (no Postgres on the machine): the PGlite run still covers it.
  describe.skipIf(skip)(`agents and fleet status over the API on ${name}`, () => {
    const database = testDatabase(name);
    let authority: TestAuthority;
    let viewer: string;

    const agents = async (query = "", token = viewer) => {
      const res = await authority.call("GET", `/api/v1/agents${query}`, { token });
      expect(res.status).toBe(200);
      return (res.body as { agents: Array<Record<string, unknown>> }).agents;
    };
    const ids = async (query: string) => (await agents(query)).map((agent) => agent.id);

    beforeAll(async () => {
      authority = await startTestAuthority({ database, settings: { agentStaleAfterMs: 60_000 } });
      viewer = await authority.token("viewer");
      for (const fleet of ["web", "api"]) {
        expect((await authority.call("POST", "/api/v1/fleets", { body: { name: fleet } })).status).toBe(201);
      }
      for (const routes of [1, 2]) {
        const res = await authority.call("POST", "/api/v1/fleets/web/bundles", {
          body: { config: sampleConfig(routes) },
        });
        expect(res.status).toBe(201);
      }
      await authority.handle.store.upsertAgentStatuses([
        report("web-1", { labels: { zone: "eu-1a" } }),
        report("web-2", {
          desiredVersion: 2,
          state: "nacked",
          nack: {
            version: 2,
            errors: [{ path: "routes[1].pool", message: 'unknown pool "x"', code: "unknown_reference" }],
          },
        }),
        report("web-3", { region: "us", distributorId: "d-us-1", desiredVersion: 2, state: "pending" }),
        report("web-4", {}, 10 * 60_000),
        report("api-1", { fleet: "api", runningVersion: null, desiredVersion: null, state: "unknown" }),
      ]);
    }, 60_000);

    afterAll(async () => {
      await authority?.close();
      await dropSchema(database);
    });

    it("documents both routes in the OpenAPI document", async () => {
      const docs = await authority.call("GET", "/docs/json", { token: "" });
      const paths = asRecord(asRecord(docs.body).paths);
      expect(Object.keys(asRecord(paths["/api/v1/agents"]))).toEqual(["get"]);
      expect(Object.keys(asRecord(paths["/api/v1/fleets/{fleet}/status"]))).toEqual(["get"]);
    });

    it("lists every agent with its versions, state, NACK, distributor and labels", async () => {
      const listed = await agents();
      expect(listed.map((agent) => agent.id)).toEqual(["api-1", "web-1", "web-2", "web-4", "web-3"]);
      const byId = new Map(listed.map((agent) => [agent.id, agent]));
      expect(byId.get("web-2")).toEqual({
        id: "web-2",
        fleet: "web",
        region: "eu",
        distributor: "d-eu-1",
        running_version: 1,
        desired_version: 2,
        state: "nacked",
        nack: {
          version: 2,
          errors: [{ path: "routes[1].pool", message: 'unknown pool "x"', code: "unknown_reference" }],
        },
        last_seen: expect.any(String),
        stale: false,
        connected: true,
        labels: {},
      });
      expect(Date.parse(byId.get("web-2")?.last_seen as string)).toBeGreaterThan(Date.now() - 60_000);
      expect(byId.get("web-1")).toMatchObject({ nack: null, labels: { zone: "eu-1a" } });
      expect(byId.get("api-1")).toMatchObject({
        running_version: null,
        desired_version: null,
        state: "unknown",
      });
      expect(byId.get("web-4")).toMatchObject({ stale: true, connected: true });
    });

    it("filters by fleet, region, state and staleness", async () => {
      expect(await ids("?fleet=web")).toEqual(["web-1", "web-2", "web-4", "web-3"]);
      expect(await ids("?fleet=web&region=us")).toEqual(["web-3"]);
      expect(await ids("?state=nacked")).toEqual(["web-2"]);
      expect(await ids("?fleet=web&stale=true")).toEqual(["web-4"]);
      expect(await ids("?fleet=web&state=acked&stale=false")).toEqual(["web-1"]);
      expect(await ids("?fleet=nope")).toEqual([]);
    });

    it("answers a fleet's status: its versions, and its agents per version with the stale ones apart", async () => {
      const res = await authority.call("GET", "/api/v1/fleets/web/status", { token: viewer });
      expect(res).toMatchObject({
        status: 200,
        body: {
          fleet: "web",
          stable_version: 1,
          candidate_version: null,
          rollout_id: null,
          candidate_percent: 0,
          generation: 1,
          agents: {
            total: 4,
            stale: 1,
            by_version: [
              { version: 2, running: 0, acked: 0, pending: 1, nacked: 1, stale: 0 },
              { version: 1, running: 3, acked: 1, pending: 0, nacked: 0, stale: 1 },
            ],
          },
        },
      });
      const empty = await authority.call("GET", "/api/v1/fleets/api/status", { token: viewer });
      expect(asRecord(empty.body).agents).toEqual({
        total: 1,
        stale: 0,
        by_version: [{ version: null, running: 1, acked: 0, pending: 0, nacked: 0, stale: 0 }],
      });
    });

    it("refuses a request without a token, a bad filter, and answers 404 for an unknown fleet's status", async () => {
      expect((await authority.call("GET", "/api/v1/agents", { token: "" })).status).toBe(401);
      expect((await authority.call("GET", "/api/v1/fleets/web/status", { token: "" })).status).toBe(401);
      for (const query of ["?state=dead", "?stale=maybe", "?fleet=no%20spaces"]) {
        expect(await authority.call("GET", `/api/v1/agents${query}`, { token: viewer })).toMatchObject({
          status: 400,
          body: { error: "bad_request" },
        });
      }
      expect(await authority.call("GET", "/api/v1/fleets/nope/status", { token: viewer })).toMatchObject({
        status: 404,
        body: { error: "unknown_fleet" },
      });
    });
  });
}
