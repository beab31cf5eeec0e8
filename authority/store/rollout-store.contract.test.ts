import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { command, newRollout, step } from "../../rollout-controller/state-machine.js";
import { plan, traffic } from "../../rollout-controller/test-support.js";
import type { RolloutChangedEvent } from "./rollout-store.js";
import { AuthorityStore, type BuiltBundle } from "./store.js";
import { TEST_TARGETS, type TestDatabase } from "./test-databases.js";
import { collect, storeError, within } from "./test-support.js";

const START = Date.parse("2026-01-01T00:00:00.000Z");
const PLAN = plan({
  stages: [
    { name: "canary", fleet_percent: 10, bake_time: "1m" },
    { name: "all", fleet_percent: 100 },
  ],
});

function built(version: number): BuiltBundle {
  return { jws: `h.p${version}.s`, config: { routes: [] }, createdBy: "alice" };
}

for (const target of TEST_TARGETS) {
  // Skipped only when COHERENT_TEST_NO_POSTGRES=1 (no Postgres on the machine): the PGlite run still covers it.
  describe.skipIf(target.skip)(`rollouts in the store on ${target.dialect}`, () => {
    let test: TestDatabase;
    let store: AuthorityStore;

    beforeAll(async () => {
      test = await target.create();
    });
    afterAll(async () => {
      await test?.dispose();
    });
    beforeEach(async () => {
      await test.reset();
      store = new AuthorityStore(test.database, { now: () => START });
      await store.createFleet({ name: "edge" });
      await store.createFleet({ name: "core" });
      for (const fleet of ["edge", "core"])
        for (const sha of ["a", "b"])
          await store.submitBundle(fleet, `${fleet}-${sha}`, async (v) => built(v));
    });

    const rollout = (id: string, fleet = "edge") =>
      newRollout({ id, fleet, candidateVersion: 2, stableVersion: 1, plan: PLAN, now: START });

    it("stores a pending rollout whole and reads it back", async () => {
      const created = await store.rollouts.create(rollout("r1"), "alice");
      expect(created).toMatchObject({
        id: "r1",
        phase: "pending",
        revision: 1,
        applied: false,
        createdBy: "alice",
      });
      expect(created.plan).toEqual(PLAN);
      expect(await store.rollouts.get("r1")).toEqual(created);
      const audit = await store.listAudit({});
      // Newest first.
      expect(audit[0]).toMatchObject({
        action: "rollout.create",
        target: "fleet:edge",
        details: { rollout_id: "r1" },
      });
    });

    it("announces each rollout created or changed, after commit", async () => {
      const heard = collect<RolloutChangedEvent>(2);
      const unlisten = await store.onRolloutChanged(heard.fn);
      try {
        const created = await store.rollouts.create(rollout("r1"), "alice");
        await store.rollouts.save(created, command(created, { kind: "abort" }, "bob", START + 1), "bob");
        expect(await within(heard.all, 3_000)).toEqual([
          { id: "r1", fleet: "edge", revision: 1 },
          { id: "r1", fleet: "edge", revision: 2 },
        ]);
      } finally {
        await unlisten();
      }
    });

    it("allows one live rollout per fleet", async () => {
      await store.rollouts.create(rollout("r1"), "alice");
      expect((await storeError(store.rollouts.create(rollout("r2"), "bob"))).code).toBe("rollout_active");
      await store.rollouts.create(rollout("r3", "core"), "bob");
      expect((await store.rollouts.list({ live: true })).map((r) => r.id).sort()).toEqual(["r1", "r3"]);
    });

    it("saves a transition with its event and audit entry, by compare-and-set on the revision", async () => {
      const created = await store.rollouts.create(rollout("r1"), "alice");
      const started = step(created, {
        now: START + 1_000,
        candidate: traffic(0),
        stable: traffic(0),
        burnShort: traffic(0),
        burnLong: traffic(0),
        nacks: { count: 0 },
        cohortAgents: 1,
      });
      const saved = await store.rollouts.save(created, started, "controller");
      expect(saved).toMatchObject({
        phase: "running",
        revision: 2,
        applied: false,
        stageStartedAt: START + 1_000,
      });
      // A command computed from the old read loses.
      const stale = command(created, { kind: "abort" }, "bob", START + 2_000);
      expect((await storeError(store.rollouts.save(created, stale, "bob"))).code).toBe("conflict");

      const paused = await store.rollouts.save(
        saved,
        command(saved, { kind: "pause" }, "bob", START + 3_000),
        "bob",
      );
      const events = await store.rollouts.events("r1");
      expect(events.map((e) => [e.from, e.to, e.actor])).toEqual([
        ["pending", "running", "controller"],
        ["running", "paused", "bob"],
      ]);
      expect(events[1]?.reason).toEqual({ kind: "command", command: "pause", actor: "bob" });
      expect(paused.bakedMs).toBe(2_000);
      const actions = (await store.listAudit({})).map((a) => a.action);
      expect(actions.slice(0, 2)).toEqual(["rollout.paused", "rollout.running"]);
    });

    it("lists what the controller must do: live rollouts and finished ones not yet applied", async () => {
      const created = await store.rollouts.create(rollout("r1"), "alice");
      const aborted = await store.rollouts.save(
        created,
        command(created, { kind: "abort" }, "bob", START + 1),
        "bob",
      );
      expect((await store.rollouts.pendingWork()).map((r) => r.id)).toEqual(["r1"]);
      expect(await store.rollouts.markApplied("r1", aborted.revision - 1)).toBe(false);
      expect(await store.rollouts.markApplied("r1", aborted.revision)).toBe(true);
      expect(await store.rollouts.pendingWork()).toEqual([]);
      expect((await store.rollouts.get("r1"))?.finishedAt).toBe(START + 1);
      await store.rollouts.setRestoreVersion("r1", 3);
      await store.rollouts.setRestoreVersion("r1", 4);
      expect((await store.rollouts.get("r1"))?.restoreVersion).toBe(3);
    });

    it("refuses a deposed leader's writes, to rollouts and to fleet states", async () => {
      const first = await store.rollouts.acquireEpoch("controller-a");
      const second = await store.rollouts.acquireEpoch("controller-b");
      expect(second).toBe(first + 1);
      const created = await store.rollouts.create(rollout("r1"), "alice");
      const pause = command(created, { kind: "promote", full: false }, "controller", START + 1);
      expect((await storeError(store.rollouts.save(created, pause, "controller", first))).code).toBe(
        "stale_leader",
      );
      expect((await storeError(store.rollouts.markApplied("r1", 1, first))).code).toBe("stale_leader");
      const guard = (trx: Parameters<typeof store.rollouts.requireEpoch>[0]) =>
        store.rollouts.requireEpoch(trx, first);
      const refused = store.setFleetState(
        "edge",
        { candidateVersion: 2, rolloutId: "r1", candidatePercent: 10 },
        "controller",
        guard,
      );
      expect((await storeError(refused)).code).toBe("stale_leader");
      expect((await store.getFleetState("edge"))?.candidateVersion).toBeNull();
      const saved = await store.rollouts.save(created, pause, "controller", second);
      expect(saved.phase).toBe("running");
    });

    it("keeps a fleet's default plan, audited, and refuses an unknown fleet", async () => {
      expect(await store.rollouts.defaultPlan("edge")).toBeUndefined();
      await store.rollouts.setDefaultPlan("edge", PLAN, "admin");
      expect(await store.rollouts.defaultPlan("edge")).toEqual(PLAN);
      expect((await store.listAudit({}))[0]).toMatchObject({
        action: "fleet.default_plan",
        actor: "admin",
      });
      expect((await storeError(store.rollouts.defaultPlan("nope"))).code).toBe("unknown_fleet");
    });
  });
}
