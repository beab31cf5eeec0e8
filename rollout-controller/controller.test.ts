import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { sql } from "kysely";
import pino from "pino";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { LATENCY_BOUNDS_MS } from "../agent/control/health-recorder.js";
import { sampleConfig } from "../authority/api/test-harness.js";
import { BundleService } from "../authority/bundle-service.js";
import { DEFAULT_GOVERNANCE } from "../authority/governance.js";
import { AuthorityStore, type HealthSampleRow } from "../authority/store/index.js";
import { TEST_TARGETS, type TestDatabase } from "../authority/store/test-databases.js";
import { generateSigningKey } from "../services/bundle/index.js";
import { RolloutController } from "./controller.js";
import { EmbeddedLeadership } from "./leader.js";
import { WebhookNotifier } from "./notifier.js";
import { newRollout } from "./state-machine.js";
import { plan } from "./test-support.js";

const T0 = Date.parse("2026-06-01T00:00:00.000Z");
const PLAN = plan({
  min_requests: 50,
  stages: [
    { name: "canary", fleet_percent: 10, bake_time: "60s" },
    { name: "all", fleet_percent: 100, bake_time: "30s" },
  ],
  health_gates: [{ metric: "error_rate", threshold: 0.05 }],
});

/** 5 s of traffic of `version` reported by one distributor, ending at `end`. */
function sample(version: number, end: number, requests: number, errors = 0): HealthSampleRow {
  const counts = new Array<number>(LATENCY_BOUNDS_MS.length + 1).fill(0);
  counts[2] = requests;
  return {
    fleet: "edge",
    version,
    region: "eu",
    distributorId: "d1",
    windowStart: new Date(end - 5_000),
    windowEnd: new Date(end),
    requests,
    errors5xx: errors,
    agents: 2,
    latency: { boundsMs: LATENCY_BOUNDS_MS, counts, sumMs: requests * 20 },
  };
}

for (const target of TEST_TARGETS) {
  // Skipped only when COHERENT_TEST_NO_POSTGRES=1 (no Postgres on the machine): the PGlite run still covers it.
  describe.skipIf(target.skip)(`the rollout controller on ${target.dialect}`, () => {
    let test: TestDatabase;
    let store: AuthorityStore;
    let bundles: BundleService;
    let clock: number;
    let controller: RolloutController;

    beforeAll(async () => {
      test = await target.create();
    });
    afterAll(async () => {
      await test?.dispose();
    });
    beforeEach(async () => {
      await test.reset();
      clock = T0;
      store = new AuthorityStore(test.database, { now: () => clock });
      const { key } = await generateSigningKey();
      bundles = new BundleService({ store, signingKey: key, governance: DEFAULT_GOVERNANCE });
      await store.createFleet({ name: "edge" });
      for (const routes of [1, 2])
        await bundles.submit("edge", { data: sampleConfig(routes) }, { actor: "alice" });
      controller = await leading("controller-a");
    });

    async function leading(id: string, notifier?: WebhookNotifier): Promise<RolloutController> {
      const leadership = new EmbeddedLeadership();
      const made = new RolloutController({
        store,
        leadership,
        logger: pino({ level: "silent" }),
        id,
        ...(notifier ? { notifier } : {}),
        now: () => clock,
        tickMs: 3_600_000,
        restore: async (fleet, contentOf, rollbackOf) =>
          (await bundles.restore(fleet, contentOf, rollbackOf, { actor: "rollout-controller" })).version,
      });
      made.start();
      // Leading starts with a pass of its own; the tests drive every later one.
      while (made.passes === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      return made;
    }

    const start = () =>
      store.rollouts.create(
        newRollout({
          id: "r1",
          fleet: "edge",
          candidateVersion: 2,
          stableVersion: 1,
          plan: PLAN,
          now: clock,
        }),
        "alice",
      );

    async function report(candidateErrors: number): Promise<void> {
      await store.insertHealthSamples([sample(2, clock, 100, candidateErrors), sample(1, clock, 900)]);
    }

    it("walks a healthy candidate through its stages to stable, publishing each split", async () => {
      await start();
      await controller.tick();
      expect(await store.getFleetState("edge")).toMatchObject({
        stableVersion: 1,
        candidateVersion: 2,
        rolloutId: "r1",
        candidatePercent: 10,
      });

      clock += 30_000;
      await report(1);
      await controller.tick();
      expect((await store.rollouts.get("r1"))?.stage).toBe(0);

      clock += 30_000;
      await report(0);
      await controller.tick();
      expect(await store.rollouts.get("r1")).toMatchObject({ phase: "running", stage: 1, applied: true });
      expect((await store.getFleetState("edge"))?.candidatePercent).toBe(100);

      clock += 30_000;
      await report(0);
      await controller.tick();
      expect(await store.rollouts.get("r1")).toMatchObject({ phase: "succeeded", applied: true });
      expect(await store.getFleetState("edge")).toMatchObject({
        stableVersion: 2,
        candidateVersion: null,
        rolloutId: null,
      });
      const events = await store.rollouts.events("r1");
      expect(events.map((e) => `${e.from}->${e.to}:${e.reason.kind}`)).toEqual([
        "pending->running:started",
        "running->running:bake_complete",
        "running->succeeded:bake_complete",
      ]);
    });

    it("rolls back a failing candidate mid-bake by publishing the stable content as a new version", async () => {
      await start();
      await controller.tick();
      clock += 10_000;
      await report(20);
      await controller.tick();
      const rolled = await store.rollouts.get("r1");
      expect(rolled).toMatchObject({ phase: "rolled_back", restoreVersion: 3, applied: true });
      expect(rolled?.reason).toMatchObject({
        kind: "check_failed",
        check: { check: "error_rate", verdict: "fail", threshold: 0.05 },
      });
      expect(await store.getFleetState("edge")).toMatchObject({ stableVersion: 3, candidateVersion: null });
      const [v1, v3] = await Promise.all([store.getBundle("edge", 1), store.getBundle("edge", 3)]);
      expect(v3).toMatchObject({ rollbackOf: 2, contentSha256: v1?.contentSha256 });
      const audit = await store.listAudit({ action: "rollout.rolled_back" });
      expect(audit[0]?.details).toMatchObject({ rollout_id: "r1", reason: { kind: "check_failed" } });
      // Nothing left to do: another tick publishes nothing more.
      await controller.tick();
      expect((await store.latestBundle("edge"))?.version).toBe(3);
    });

    it("posts every transition it makes to the fleet's webhooks, with the reason", async () => {
      const received: Array<{ transition: { from: string; to: string; reason: { kind: string } } }> = [];
      const hook = createServer(async (req, res) => {
        let body = "";
        for await (const chunk of req) body += chunk;
        received.push(JSON.parse(body));
        res.writeHead(204).end();
      });
      await new Promise<void>((resolve) => hook.listen(0, "127.0.0.1", resolve));
      try {
        const url = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/`;
        const notifier = new WebhookNotifier({
          hooks: [{ fleet: "edge", url }],
          logger: pino({ level: "silent" }),
        });
        await controller.stop();
        const notifying = await leading("controller-n", notifier);
        await start();
        await notifying.tick();
        clock += 10_000;
        await report(20);
        await notifying.tick();
        await notifier.flush(3_000);
        expect(
          received.map((r) => `${r.transition.from}->${r.transition.to}:${r.transition.reason.kind}`),
        ).toEqual(["pending->running:started", "running->rolled_back:check_failed"]);
        await notifying.stop();
      } finally {
        await new Promise((resolve) => hook.close(resolve));
      }
    });

    it("halts on an agent's NACK of the candidate", async () => {
      await start();
      await controller.tick();
      await store.upsertAgentStatuses([
        {
          id: "agent-7",
          fleet: "edge",
          region: "eu",
          distributorId: "d1",
          runningVersion: 1,
          desiredVersion: 2,
          state: "nacked",
          nack: {
            version: 2,
            errors: [{ path: "routes[0].pool", message: "unknown pool", code: "unknown_reference" }],
          },
          labels: {},
          connected: true,
          lastSeen: new Date(clock),
        },
      ]);
      await controller.tick();
      expect((await store.rollouts.get("r1"))?.reason).toEqual({
        kind: "nack",
        nacks: 1,
        agentId: "agent-7",
        detail: "routes[0].pool: unknown pool",
      });
    });

    it("acts no more once another controller took the lease, and the new leader continues", async () => {
      await start();
      // Another controller took the lease; this one has not noticed yet.
      await store.rollouts.acquireEpoch("controller-b");
      await controller.tick();
      expect((await store.rollouts.get("r1"))?.phase).toBe("pending");
      const other = await leading("controller-c");
      await other.tick();
      expect((await store.rollouts.get("r1"))?.phase).toBe("running");
      await other.stop();
    });

    it("lives through a pass the database failed, and the next pass does its work", async () => {
      await start();
      // The read every pass begins with fails, as it does while Postgres restarts.
      await sql`alter table rollouts rename to rollouts_away`.execute(test.database.db);
      try {
        await controller.tick();
      } finally {
        await sql`alter table rollouts_away rename to rollouts`.execute(test.database.db);
      }
      expect(controller.epoch).toBeDefined();
      expect((await store.rollouts.get("r1"))?.phase).toBe("pending");
      await controller.tick();
      expect((await store.rollouts.get("r1"))?.phase).toBe("running");
    });

    it("ends a rollout whose candidate an emergency promote has passed, restoring nothing", async () => {
      await start();
      await controller.tick();
      await bundles.submit("edge", { data: sampleConfig(3) }, { actor: "alice" });
      await store.promoteStable("edge", 3, "admin");
      await controller.tick();
      expect(await store.rollouts.get("r1")).toMatchObject({
        phase: "aborted",
        applied: true,
        restoreVersion: 3,
      });
      expect((await store.latestBundle("edge"))?.version).toBe(3);
      expect(await store.getFleetState("edge")).toMatchObject({ stableVersion: 3, candidateVersion: null });
    });
  });
}
