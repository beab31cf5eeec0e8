import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  DIALECTS,
  dropSchema,
  sampleConfig,
  startTestAuthority,
  type TestAuthority,
  testDatabase,
} from "./test-harness.js";

const asRecord = (body: unknown) => body as Record<string, unknown>;

for (const { name, skip } of DIALECTS) {
  // Skipped only when COHERENT_TEST_NO_POSTGRES=1 (no Postgres on the machine): the PGlite run still covers it.
  describe.skipIf(skip)(`fleet state and promote over the API on ${name}`, () => {
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

    /** A fleet with `versions` bundles, submitted by the operator. */
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

    const state = (fleet: string, token = viewer) =>
      authority.call("GET", `/api/v1/fleets/${fleet}/state`, { token });
    const promote = (fleet: string, body: unknown, token = authority.adminToken) =>
      authority.call("POST", `/api/v1/fleets/${fleet}/promote`, { token, body });

    it("documents both routes in the OpenAPI document", async () => {
      const docs = await authority.call("GET", "/docs/json", { token: "" });
      const paths = asRecord(asRecord(docs.body).paths);
      expect(Object.keys(asRecord(paths["/api/v1/fleets/{fleet}/state"]))).toEqual(["get"]);
      expect(Object.keys(asRecord(paths["/api/v1/fleets/{fleet}/promote"]))).toEqual(["post"]);
    });

    it("shows no stable version at generation 0 before the first bundle, then version 1 at generation 1", async () => {
      await fleetWith("fresh", 0);
      expect(await state("fresh")).toMatchObject({
        status: 200,
        body: {
          fleet: "fresh",
          stable_version: null,
          candidate_version: null,
          rollout_id: null,
          candidate_percent: 0,
          generation: 0,
          updated_at: null,
        },
      });

      await authority.call("POST", "/api/v1/fleets/fresh/bundles", {
        token: operator,
        body: { config: sampleConfig(1) },
      });
      const first = await state("fresh");
      expect(first.body).toMatchObject({ stable_version: 1, generation: 1 });
      expect(Date.parse(asRecord(first.body).updated_at as string)).not.toBeNaN();

      await authority.call("POST", "/api/v1/fleets/fresh/bundles", {
        token: operator,
        body: { config: sampleConfig(2) },
      });
      expect((await state("fresh")).body).toMatchObject({ stable_version: 1, generation: 1 });
    });

    it("promotes a version for an admin, audited as the token that asked, and answers the new state", async () => {
      await fleetWith("promoted", 3);
      const res = await promote("promoted", { version: 3 });
      expect(res).toMatchObject({
        status: 200,
        body: {
          fleet: "promoted",
          stable_version: 3,
          candidate_version: null,
          rollout_id: null,
          candidate_percent: 0,
          generation: 2,
          changed: true,
        },
      });
      expect((await state("promoted")).body).toMatchObject({ stable_version: 3, generation: 2 });

      const again = await promote("promoted", { version: 3 });
      expect(again).toMatchObject({
        status: 200,
        body: { stable_version: 3, generation: 2, changed: false },
      });

      const audit = await authority.call("GET", "/api/v1/audit?action=fleet.promote&target=fleet:promoted", {
        token: viewer,
      });
      expect(asRecord(audit.body).entries).toMatchObject([
        { actor: "token:bootstrap", details: { from: 1, to: 3, generation: 2 } },
      ]);
    });

    it("lets viewers and operators read the state but only admins promote", async () => {
      await fleetWith("roles", 2);
      for (const token of [viewer, operator, authority.adminToken]) {
        expect((await state("roles", token)).status).toBe(200);
      }
      for (const token of [viewer, operator]) {
        expect(await promote("roles", { version: 2 }, token)).toMatchObject({
          status: 403,
          body: { error: "forbidden", required_role: "admin" },
        });
      }
      expect((await state("roles")).body).toMatchObject({ stable_version: 1, generation: 1 });
      expect((await state("roles", "")).status).toBe(401);
    });

    it("answers 404 for an unknown fleet or version, 409 for a downgrade, 400 for a bad body", async () => {
      await fleetWith("refusals", 2);
      expect(await state("nope")).toMatchObject({ status: 404, body: { error: "unknown_fleet" } });
      expect(await promote("nope", { version: 1 })).toMatchObject({
        status: 404,
        body: { error: "unknown_fleet" },
      });
      expect(await promote("refusals", { version: 3 })).toMatchObject({
        status: 404,
        body: { error: "unknown_version", message: 'fleet "refusals" has no version 3' },
      });

      expect((await promote("refusals", { version: 2 })).status).toBe(200);
      const downgrade = await promote("refusals", { version: 1 });
      expect(downgrade).toMatchObject({ status: 409, body: { error: "downgrade" } });
      expect(asRecord(downgrade.body).message).toContain("below the stable version 2");

      for (const body of [{}, { version: 0 }, { version: "two" }, { version: 1.5 }]) {
        expect(await promote("refusals", body)).toMatchObject({
          status: 400,
          body: { error: "bad_request" },
        });
      }
      expect((await state("refusals")).body).toMatchObject({ stable_version: 2, generation: 2 });
    });
  });
}
