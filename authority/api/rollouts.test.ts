import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  DIALECTS,
  dropSchema,
  sampleConfig,
  startTestAuthority,
  type TestAuthority,
  testDatabase,
} from "./test-harness.js";

type Json = Record<string, unknown>;
const PLAN = {
  stages: [
    { name: "canary", fleet_percent: 10, bake_time: "1m" },
    { name: "all", fleet_percent: 100 },
  ],
  health_gates: [{ metric: "error_rate", threshold: "2%" }],
};

for (const { name, skip } of DIALECTS) {
  // Skipped only when COHERENT_TEST_NO_POSTGRES=1 (no Postgres on the machine): the PGlite run still covers it.
  describe.skipIf(skip)(`rollouts over the API on ${name}`, () => {
    const database = testDatabase(name);
    let authority: TestAuthority;
    let viewer: string;
    let operator: string;

    beforeAll(async () => {
      authority = await startTestAuthority({ database });
      viewer = await authority.token("viewer");
      operator = await authority.token("operator");
    });

    afterAll(async () => {
      await authority?.close();
      await dropSchema(database);
    });

    async function fleetWith(fleet: string, versions: number): Promise<void> {
      expect((await authority.call("POST", "/api/v1/fleets", { body: { name: fleet } })).status).toBe(201);
      for (let routes = 1; routes <= versions; routes++) {
        const res = await authority.call("POST", `/api/v1/fleets/${fleet}/bundles`, {
          token: operator,
          body: { config: sampleConfig(routes) },
        });
        expect(res.status).toBe(201);
      }
    }

    const start = (fleet: string, body: unknown, token = operator) =>
      authority.call("POST", `/api/v1/fleets/${fleet}/rollouts`, { token, body });

    it("starts a rollout with the plan given, shown whole, and refuses a second one for the fleet", async () => {
      await fleetWith("edge", 2);
      const res = await start("edge", { version: 2, plan: PLAN });
      expect(res.status).toBe(201);
      const body = res.body as Json;
      expect(body).toMatchObject({
        fleet: "edge",
        candidate_version: 2,
        stable_version: 1,
        phase: "pending",
        applied: false,
        stage: { index: 0, name: "canary", fleet_percent: 10, count: 2 },
        stages: [
          { name: "canary", fleet_percent: 10, bake_ms: 60_000 },
          { name: "all", fleet_percent: 100, bake_ms: 0 },
        ],
        created_by: expect.any(String),
      });
      expect(body.id).toMatch(/^r-edge-2-[0-9a-f]{6}$/);
      expect(await start("edge", { version: 2 })).toMatchObject({
        status: 409,
        body: { error: "rollout_active" },
      });

      const listed = await authority.call("GET", "/api/v1/rollouts?fleet=edge&live=true", { token: viewer });
      expect((listed.body as { rollouts: Json[] }).rollouts.map((r) => r.id)).toEqual([body.id]);
      const status = await authority.call("GET", `/api/v1/rollouts/${body.id}`, { token: viewer });
      expect(status.body).toMatchObject({
        rollout: { id: body.id },
        checks: [],
        traffic: { candidate: { requests: 0 }, stable: { requests: 0 } },
        events: [],
      });
    });

    it("answers every error of an invalid plan with its path, and refuses versions not above stable", async () => {
      await fleetWith("plans", 2);
      const bad = await start("plans", {
        version: 2,
        plan: {
          stages: [
            { name: "a", fleet_percent: 50 },
            { name: "a", fleet_percent: 40 },
          ],
        },
      });
      expect(bad.status).toBe(422);
      const errors = (bad.body as { errors: Json[] }).errors.map((e) => e.path);
      expect(errors).toContain("rollout.stages[1].name");
      expect(errors).toContain("rollout.stages[1].fleet_percent");
      expect(await start("plans", { version: 1 })).toMatchObject({
        status: 409,
        body: { error: "not_newer" },
      });
      expect(await start("plans", { version: 9 })).toMatchObject({
        status: 404,
        body: { error: "unknown_version" },
      });
      expect(await start("nope", { version: 2 })).toMatchObject({
        status: 404,
        body: { error: "unknown_fleet" },
      });
      expect((await start("plans", { version: 2 }, viewer)).status).toBe(403);
    });

    it("steers a rollout with commands, each checked against its phase", async () => {
      await fleetWith("steer", 2);
      const id = ((await start("steer", { version: 2, plan: PLAN })).body as Json).id as string;
      const act = (what: string, body?: unknown) =>
        authority.call("POST", `/api/v1/rollouts/${id}/${what}`, { token: operator, body });
      expect(await act("pause")).toMatchObject({ status: 409, body: { error: "invalid_transition" } });
      expect(await act("promote", {})).toMatchObject({
        status: 200,
        body: { phase: "running", stage: { index: 0 } },
      });
      expect(await act("pause")).toMatchObject({ status: 200, body: { phase: "paused" } });
      expect(await act("resume")).toMatchObject({ status: 200, body: { phase: "running" } });
      expect(await act("abort")).toMatchObject({
        status: 200,
        body: {
          phase: "aborted",
          reason: { kind: "command", command: "abort", summary: expect.stringContaining("abort by") },
        },
      });
      expect(await act("resume")).toMatchObject({ status: 409 });
      const status = await authority.call("GET", `/api/v1/rollouts/${id}`, { token: viewer });
      expect((status.body as { events: Json[] }).events.map((e) => `${e.from}->${e.to}`)).toEqual([
        "pending->running",
        "running->paused",
        "paused->running",
        "running->aborted",
      ]);
      expect((await authority.call("POST", "/api/v1/rollouts/none/abort", { token: operator })).status).toBe(
        404,
      );
    });

    it("keeps a fleet's default plan, set by admins, used when a rollout names none", async () => {
      await fleetWith("planned", 2);
      const builtIn = await authority.call("GET", "/api/v1/fleets/planned/plan", { token: viewer });
      expect(builtIn.body).toMatchObject({
        source: "default",
        plan: { burn_rate: { threshold: 10, objective: 99.9 } },
      });
      const stages = (builtIn.body as { plan: { stages: Json[] } }).plan.stages;
      expect(stages.map((s) => `${s.name}:${s.fleet_percent}`)).toEqual([
        "canary:1",
        "small:10",
        "half:50",
        "all:100",
      ]);
      const put = (token: string) =>
        authority.call("PUT", "/api/v1/fleets/planned/plan", { token, body: { plan: PLAN } });
      expect((await put(operator)).status).toBe(403);
      expect((await put(authority.adminToken)).status).toBe(200);
      const started = await start("planned", { version: 2 });
      expect(started.body).toMatchObject({
        stages: [{ name: "canary", fleet_percent: 10 }, { name: "all" }],
      });
    });
  });
}
