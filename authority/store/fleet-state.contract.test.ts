import { Migrator, sql } from "kysely";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { MIGRATIONS } from "../../migrations/index.js";
import { type Database, migrateToLatest } from "./database.js";
import { StoreError } from "./errors.js";
import type { FleetStateChangedEvent } from "./fleet-state.js";
import { AuthorityStore, type BuiltBundle } from "./store.js";
import { TEST_TARGETS, type TestDatabase } from "./test-databases.js";
import { collect, storeError, within } from "./test-support.js";

const START = Date.parse("2025-03-01T12:00:00.000Z");

function built(version: number, extra: Partial<BuiltBundle> = {}): BuiltBundle {
  return { jws: `h.p-${version}.s`, config: { version: "v1", routes: [] }, createdBy: "alice", ...extra };
}

for (const target of TEST_TARGETS) {
  // Skipped only when COHERENT_TEST_NO_POSTGRES=1 (no Postgres on the machine): the PGlite run still covers it.
  describe.skipIf(target.skip)(`fleet states on ${target.dialect}`, () => {
    let test: TestDatabase;
    let store: AuthorityStore;
    let clock: number;

    /** Submits `count` bundles of distinct content to `fleet`. */
    async function submit(count: number, fleet = "web"): Promise<void> {
      for (let i = 0; i < count; i++) {
        await store.submitBundle(fleet, `sha-${clock}-${i}`, async (v) => built(v));
      }
    }

    beforeAll(async () => {
      test = await target.create();
    });

    afterAll(async () => {
      await test?.dispose();
    });

    beforeEach(async () => {
      await test.reset();
      clock = START;
      store = new AuthorityStore(test.database, { now: () => clock });
      await store.createFleet({ name: "web" });
    });

    describe("before the first bundle", () => {
      it("has no stable version and generation 0; an unknown fleet has no state at all", async () => {
        expect(await store.getFleetState("web")).toEqual({
          fleet: "web",
          stableVersion: null,
          candidateVersion: null,
          rolloutId: null,
          candidatePercent: 0,
          generation: 0,
          updatedAt: null,
        });
        expect(await store.getFleetState("nope")).toBeUndefined();
      });
    });

    describe("submits", () => {
      it("make a fleet's first bundle its stable version at generation 1, audited as fleet.state", async () => {
        const audit = { actor: "bob", action: "bundle.submit", target: "fleet:web" };
        await store.submitBundle("web", "sha-a", async (v) => built(v, { audit }));

        expect(await store.getFleetState("web")).toEqual({
          fleet: "web",
          stableVersion: 1,
          candidateVersion: null,
          rolloutId: null,
          candidatePercent: 0,
          generation: 1,
          updatedAt: new Date(START),
        });
        const [state, submitted] = await store.listAudit();
        expect(submitted).toMatchObject({ seq: 1, action: "bundle.submit" });
        expect(state).toMatchObject({
          seq: 2,
          actor: "bob",
          action: "fleet.state",
          target: "fleet:web",
          details: {
            generation: 1,
            cause: "first_bundle",
            from: { stable_version: null, candidate_version: null, rollout_id: null, candidate_percent: 0 },
            to: { stable_version: 1, candidate_version: null, rollout_id: null, candidate_percent: 0 },
          },
        });
        expect(await store.verifyAudit()).toEqual({ ok: true, entries: 2 });
      });

      it("audit the first bundle's state as its creator when the bundle itself is not audited", async () => {
        await store.submitBundle("web", "sha-a", async (v) => built(v, { createdBy: "carol" }));
        expect(await store.listAudit()).toMatchObject([{ actor: "carol", action: "fleet.state" }]);
      });

      it("leave the state alone after the first bundle, and for an unchanged resubmit", async () => {
        await submit(1);
        clock += 1000;
        await submit(2);
        await store.submitBundle("web", "sha-b", async (v) => built(v));
        await store.submitBundle("web", "sha-b", async (v) => built(v));

        expect(await store.getFleetState("web")).toMatchObject({
          stableVersion: 1,
          generation: 1,
          updatedAt: new Date(START),
        });
        expect(await store.listAudit({ action: "fleet.state" })).toHaveLength(1);
      });

      it("set no state when the first bundle fails to build, and set it with the next try", async () => {
        await expect(
          store.submitBundle("web", "sha-a", async () => {
            throw new Error("boom");
          }),
        ).rejects.toThrow("boom");
        expect(await store.getFleetState("web")).toMatchObject({ stableVersion: null, generation: 0 });
        await submit(1);
        expect(await store.getFleetState("web")).toMatchObject({ stableVersion: 1, generation: 1 });
      });

      it("give each fleet its own first bundle and state", async () => {
        await store.createFleet({ name: "api" });
        await submit(3);
        await submit(1, "api");
        expect((await store.getFleetState("api"))?.stableVersion).toBe(1);
        expect((await store.getFleetState("web"))?.stableVersion).toBe(1);
      });
    });

    describe("promoteStable", () => {
      beforeEach(async () => {
        await submit(3);
        clock += 60_000;
      });

      it("sets the stable version at once, raises the generation and audits fleet.promote {from, to}", async () => {
        const result = await store.promoteStable("web", 3, "token:root");

        const expected = {
          fleet: "web",
          stableVersion: 3,
          candidateVersion: null,
          rolloutId: null,
          candidatePercent: 0,
          generation: 2,
          updatedAt: new Date(START + 60_000),
        };
        expect(result).toEqual({ status: "changed", state: expected });
        expect(await store.getFleetState("web")).toEqual(expected);
        const [entry] = await store.listAudit({ action: "fleet.promote" });
        expect(entry).toMatchObject({
          actor: "token:root",
          target: "fleet:web",
          details: { from: 1, to: 3, generation: 2 },
        });
        expect(entry?.details).not.toHaveProperty("ended_rollout");
        expect(await store.verifyAudit()).toMatchObject({ ok: true });
      });

      it("changes nothing, audits nothing and keeps the generation when the version is already stable", async () => {
        await store.promoteStable("web", 2, "token:root");
        const entries = (await store.verifyAudit()).entries;
        clock += 1000;

        const again = await store.promoteStable("web", 2, "token:root");

        expect(again).toEqual({ status: "unchanged", state: await store.getFleetState("web") });
        expect(again.state).toMatchObject({ generation: 2, updatedAt: new Date(START + 60_000) });
        expect((await store.verifyAudit()).entries).toBe(entries);
      });

      it("refuses a version the fleet does not have, and an unknown fleet, writing nothing", async () => {
        const entries = (await store.verifyAudit()).entries;
        const unknown = await storeError(store.promoteStable("web", 4, "token:root"));
        expect(unknown.code).toBe("unknown_version");
        expect(unknown.message).toBe('fleet "web" has no version 4');
        expect((await storeError(store.promoteStable("nope", 1, "token:root"))).code).toBe("unknown_fleet");
        expect(await store.getFleetState("web")).toMatchObject({ stableVersion: 1, generation: 1 });
        expect((await store.verifyAudit()).entries).toBe(entries);
      });

      it("refuses a version below the stable one, which agents would refuse, naming the fix", async () => {
        await store.promoteStable("web", 3, "token:root");
        const error = await storeError(store.promoteStable("web", 2, "token:root"));
        expect(error.code).toBe("downgrade");
        expect(error.message).toContain("version 2 is below the stable version 3");
        expect(error.message).toContain("submit that config again");
        expect(await store.getFleetState("web")).toMatchObject({ stableVersion: 3, generation: 2 });
      });

      it("ends a rollout in progress and names it in the audit entry", async () => {
        await store.setFleetState(
          "web",
          { candidateVersion: 2, rolloutId: "ro-1", candidatePercent: 10 },
          "system:controller",
        );
        const result = await store.promoteStable("web", 3, "token:root");
        expect(result.state).toMatchObject({
          stableVersion: 3,
          candidateVersion: null,
          rolloutId: null,
          candidatePercent: 0,
          generation: 3,
        });
        const [entry] = await store.listAudit({ action: "fleet.promote" });
        expect(entry?.details).toEqual({
          from: 1,
          to: 3,
          generation: 3,
          ended_rollout: { rollout_id: "ro-1", candidate_version: 2, candidate_percent: 10 },
        });
      });

      it("promotes a rollout's candidate itself, but nothing below it", async () => {
        await store.setFleetState(
          "web",
          { candidateVersion: 3, rolloutId: "ro-1", candidatePercent: 5 },
          "system:controller",
        );
        expect((await storeError(store.promoteStable("web", 2, "token:root"))).code).toBe("downgrade");
        expect((await store.promoteStable("web", 3, "token:root")).state).toMatchObject({
          stableVersion: 3,
          candidateVersion: null,
        });
      });
    });

    describe("setFleetState", () => {
      beforeEach(async () => {
        await submit(3);
        clock += 1000;
      });

      it("applies a change with the next generation and audits fleet.state with before and after", async () => {
        const started = await store.setFleetState(
          "web",
          { candidateVersion: 2, rolloutId: "ro-1", candidatePercent: 0.5 },
          "system:controller",
        );
        expect(started).toEqual({
          status: "changed",
          state: {
            fleet: "web",
            stableVersion: 1,
            candidateVersion: 2,
            rolloutId: "ro-1",
            candidatePercent: 0.5,
            generation: 2,
            updatedAt: new Date(START + 1000),
          },
        });
        await store.setFleetState("web", { candidatePercent: 10 }, "system:controller");

        expect(await store.getFleetState("web")).toMatchObject({ candidatePercent: 10, generation: 3 });
        const [raised] = await store.listAudit({ action: "fleet.state" });
        expect(raised).toMatchObject({
          actor: "system:controller",
          details: {
            generation: 3,
            from: { stable_version: 1, candidate_version: 2, rollout_id: "ro-1", candidate_percent: 0.5 },
            to: { stable_version: 1, candidate_version: 2, rollout_id: "ro-1", candidate_percent: 10 },
          },
        });
      });

      it("writes nothing for a change that changes nothing", async () => {
        const entries = (await store.verifyAudit()).entries;
        expect(await store.setFleetState("web", { stableVersion: 1 }, "a")).toMatchObject({
          status: "unchanged",
          state: { generation: 1 },
        });
        expect((await store.verifyAudit()).entries).toBe(entries);
      });

      it("refuses an inconsistent state, an unknown version and a downgrade, writing nothing", async () => {
        const refused = async (change: Parameters<AuthorityStore["setFleetState"]>[1]) =>
          (await storeError(store.setFleetState("web", change, "a"))).code;
        expect(await refused({ candidateVersion: 2, rolloutId: "ro-1", candidatePercent: 150 })).toBe(
          "invalid_fleet_state",
        );
        expect(await refused({ candidateVersion: 2, candidatePercent: 10 })).toBe("invalid_fleet_state");
        expect(await refused({ candidateVersion: 1, rolloutId: "ro-1" })).toBe("invalid_fleet_state");
        expect(await refused({ candidateVersion: 9, rolloutId: "ro-1" })).toBe("unknown_version");
        expect(await refused({ stableVersion: 9 })).toBe("unknown_version");

        await store.setFleetState(
          "web",
          { candidateVersion: 3, rolloutId: "ro-1", candidatePercent: 20 },
          "a",
        );
        expect(await refused({ candidatePercent: 10 })).toBe("downgrade");
        expect(await refused({ candidateVersion: 2 })).toBe("downgrade");
        expect(await refused({ candidateVersion: null, rolloutId: null, candidatePercent: 0 })).toBe(
          "downgrade",
        );
        expect(await store.getFleetState("web")).toMatchObject({ candidatePercent: 20, generation: 2 });
        expect(await store.listAudit({ action: "fleet.state" })).toHaveLength(2);
      });

      it("is refused by the database's checks too, whoever writes", async () => {
        await expect(
          sql`update fleet_states set candidate_percent = 5 where fleet = 'web'`.execute(test.database.db),
        ).rejects.toThrow(/fleet_states_rollout/);
        await expect(
          sql`update fleet_states set stable_version = 99 where fleet = 'web'`.execute(test.database.db),
        ).rejects.toThrow(/fleet_states_stable_fk/);
      });

      it("gives 20 concurrent changes consecutive generations, one change at a time", async () => {
        await store.setFleetState(
          "web",
          { candidateVersion: 3, rolloutId: "ro-1", candidatePercent: 0 },
          "a",
        );
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            store.setFleetState("web", { candidatePercent: i + 1 }, "a").catch((e: unknown) => e),
          ),
        );
        // Whichever order they ran in, each got the next generation; one that would lower the
        // share after a higher one was refused as a downgrade.
        const changed = results.filter((r) => !(r instanceof StoreError));
        const generations = changed.map((r) => (r as { state: { generation: number } }).state.generation);
        expect(generations.sort((a, b) => a - b)).toEqual(
          Array.from({ length: changed.length }, (_, i) => i + 3),
        );
        expect(results.filter((r) => r instanceof StoreError).every((e) => e.code === "downgrade")).toBe(
          true,
        );
        expect(await store.getFleetState("web")).toMatchObject({
          candidatePercent: 20,
          generation: 2 + changed.length,
        });
      });
    });

    describe("announcements", () => {
      it("announce each change after commit, and nothing for unchanged or refused ones", async () => {
        const seen = collect<FleetStateChangedEvent>(2);
        const unsubscribe = await store.onFleetStateChanged(seen.fn);
        await submit(2);
        await store.promoteStable("web", 1, "a");
        await store.promoteStable("web", 7, "a").catch(() => undefined);
        await store.promoteStable("web", 2, "a");

        expect(await within(seen.all, 5000)).toEqual([
          { fleet: "web", generation: 1 },
          { fleet: "web", generation: 2 },
        ]);
        await unsubscribe();
      });

      it("announce the first bundle before the state that names it", async () => {
        const heard = collect<string>(2);
        const bundles = await store.onBundleCreated((e) => heard.fn(`bundle ${e.version}`));
        const states = await store.onFleetStateChanged((e) => heard.fn(`state ${e.generation}`));
        await submit(1);
        expect(await within(heard.all, 5000)).toEqual(["bundle 1", "state 1"]);
        await bundles();
        await states();
      });
    });

    describe("migration 0002", () => {
      it("makes the latest bundle of a fleet that had bundles before it its stable version", async () => {
        const db = test.database.db;
        const { rows } = await sql<{ schema: string }>`select current_schema() as schema`.execute(db);
        const migrator = new Migrator({
          db,
          provider: { getMigrations: async () => ({ ...MIGRATIONS }) },
          migrationTableSchema: rows[0]?.schema ?? "public",
        });
        expect((await migrator.migrateTo("0001_initial")).error).toBeUndefined();
        for (const version of [1, 2, 3]) {
          await db
            .insertInto("bundles")
            .values({
              fleet: "web",
              version,
              parent: version === 1 ? null : version - 1,
              content_sha256: `sha-${version}`,
              jws: "h.p.s",
              config: "{}",
              created_by: "alice",
              created_at: new Date(START),
            })
            .execute();
        }
        await store.createFleet({ name: "empty" });

        expect(await migrateToLatest(db)).toEqual({
          applied: ["0002_fleet_states", "0003_agent_status", "0004_rollouts"],
        });
        expect(await store.getFleetState("web")).toMatchObject({ stableVersion: 3, generation: 1 });
        expect(await store.getFleetState("empty")).toMatchObject({ stableVersion: null, generation: 0 });
      });
    });

    // PGlite is one process's in-memory database: a second connection to the same data exists only on Postgres.
    describe.skipIf(target.dialect !== "postgres")("with a second process on the same database", () => {
      let other: AuthorityStore;
      let otherDatabase: Database;

      beforeAll(async () => {
        otherDatabase = await test.openAnother();
      });

      beforeEach(() => {
        other = new AuthorityStore(otherDatabase, { now: () => clock });
      });

      it("hears a promote made through the other", async () => {
        await submit(2);
        const seen = collect<FleetStateChangedEvent>(1);
        const unsubscribe = await other.onFleetStateChanged(seen.fn);
        await store.promoteStable("web", 2, "token:root");
        expect(await within(seen.all, 5000)).toEqual([{ fleet: "web", generation: 2 }]);
        expect(await other.getFleetState("web")).toMatchObject({ stableVersion: 2, generation: 2 });
        await unsubscribe();
      });

      it("hears the first bundle's state, and serializes promotes and submits through both", async () => {
        const seen = collect<FleetStateChangedEvent>(1);
        const unsubscribe = await other.onFleetStateChanged(seen.fn);
        await submit(1);
        expect(await within(seen.all, 5000)).toEqual([{ fleet: "web", generation: 1 }]);
        await unsubscribe();

        await Promise.all(
          Array.from({ length: 10 }, (_, i) =>
            (i % 2 === 0 ? store : other).submitBundle("web", `sha-x${i}`, async (v) => built(v)),
          ),
        );
        const promotes = await Promise.all(
          [2, 4, 6, 8, 10].map((version, i) =>
            (i % 2 === 0 ? other : store).promoteStable("web", version, "a").catch((e: unknown) => e),
          ),
        );
        const generations = promotes
          .filter((r) => !(r instanceof StoreError))
          .map((r) => (r as { state: { generation: number } }).state.generation)
          .sort((a, b) => a - b);
        expect(generations).toEqual(Array.from({ length: generations.length }, (_, i) => i + 2));
        const state = await store.getFleetState("web");
        expect(state?.generation).toBe(1 + generations.length);
        expect(await other.verifyAudit()).toMatchObject({ ok: true });
      });
    });
  });
}
