import { type ClientDuplexStream, credentials, status } from "@grpc/grpc-js";
import { sql } from "kysely";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  type AuthorityDownstream,
  AuthorityFeedClient,
  type DistributorUpstream,
  type KnownFleet,
} from "../../proto/coherent/v1/authority.js";
import { createLogger } from "../../services/telemetry/logger.js";
import { AuthorityStore, type BuiltBundle } from "../store/index.js";
import { TEST_TARGETS, type TestDatabase } from "../store/test-databases.js";
import { AuthorityFeedServer } from "./feed-server.js";

const silent = createLogger({ name: "feed", level: "silent" });
const NOW = Date.parse("2025-03-01T12:00:00.000Z");

function built(version: number): BuiltBundle {
  return { jws: `h.p-${version}.s`, config: { version: "v1", routes: [] }, createdBy: "alice" };
}

type Kind = NonNullable<AuthorityDownstream["kind"]>;

/** A distributor's end of one stream: what came down, in order, and a way to wait for more. */
class Distributor {
  readonly received: Kind[] = [];
  readonly call: ClientDuplexStream<DistributorUpstream, AuthorityDownstream>;
  readonly closed: Promise<{ code: number }>;
  #waiters: (() => void)[] = [];

  constructor(client: AuthorityFeedClient) {
    this.call = client.subscribe();
    this.call.on("data", (message: AuthorityDownstream) => {
      if (message.kind) this.received.push(message.kind);
      for (const wake of this.#waiters.splice(0)) wake();
    });
    this.closed = new Promise((resolve) => {
      this.call.on("status", (end) => resolve({ code: end.code }));
      this.call.on("error", () => undefined);
    });
  }

  subscribe(knownFleets: KnownFleet[] = []): void {
    this.call.write({
      kind: { $case: "subscribe", value: { distributorId: "d-1", region: "eu", knownFleets } },
    });
  }

  /** Resolves once `count` messages came down in all; fails after 3 s. */
  async until(count: number): Promise<Kind[]> {
    const deadline = Date.now() + 3_000;
    while (this.received.length < count) {
      if (Date.now() > deadline) throw new Error(`got ${this.received.length} of ${count} messages`);
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
    return this.received;
  }
}

for (const target of TEST_TARGETS) {
  // Skipped only when COHERENT_TEST_NO_POSTGRES=1 (no Postgres on the machine): the PGlite run still covers it.
  describe.skipIf(target.skip)(`AuthorityFeed on ${target.dialect}`, () => {
    let test: TestDatabase;
    let store: AuthorityStore;
    let server: AuthorityFeedServer;
    let client: AuthorityFeedClient;
    const open: Distributor[] = [];

    function distributor(): Distributor {
      const made = new Distributor(client);
      open.push(made);
      return made;
    }

    async function submit(fleet: string, content: string): Promise<number> {
      const result = await store.submitBundle(fleet, content, async (v) => built(v));
      return result.bundle.version;
    }

    beforeAll(async () => {
      test = await target.create();
      store = new AuthorityStore(test.database, { now: () => NOW });
    }, 60_000);

    afterAll(async () => {
      await test?.dispose();
    });

    beforeEach(async () => {
      await test.reset();
      server = new AuthorityFeedServer({ store, logger: silent, now: () => NOW, heartbeatIntervalMs: 0 });
      const port = await server.listen("127.0.0.1:0");
      client = new AuthorityFeedClient(`127.0.0.1:${port}`, credentials.createInsecure());
      await store.createFleet({ name: "web" });
      await submit("web", "sha-1");
      await submit("web", "sha-2");
      await store.setFleetState("web", { candidateVersion: 2, rolloutId: "r-1", candidatePercent: 5 }, "ctl");
    });

    afterEach(async () => {
      for (const each of open.splice(0)) each.call.cancel();
      await server.close();
      client.close();
    });

    it("catches a cold distributor up: the bundles a state names, then the state, then SyncComplete", async () => {
      const feed = distributor();
      feed.subscribe();
      const received = await feed.until(4);
      expect(received.map((kind) => kind.$case)).toEqual(["bundle", "bundle", "fleetState", "syncComplete"]);
      expect(received[0]).toMatchObject({ value: { fleet: "web", version: 1, contentSha256: "sha-1" } });
      expect(received[1]).toMatchObject({ value: { version: 2 } });
      expect(received[1]?.$case === "bundle" && received[1].value.signedBundle.toString("ascii")).toBe(
        "h.p-2.s",
      );
      expect(received[2]).toEqual({
        $case: "fleetState",
        value: {
          fleet: "web",
          stableVersion: 1,
          candidateVersion: 2,
          rolloutId: "r-1",
          candidatePercent: 5,
          generation: 2,
          updatedAtUnixMs: NOW,
        },
      });
    });

    it("sends a warm distributor nothing but SyncComplete", async () => {
      const feed = distributor();
      feed.subscribe([{ fleet: "web", latestBundleVersion: 2, fleetStateGeneration: 2 }]);
      await feed.until(1);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(feed.received).toEqual([{ $case: "syncComplete", value: {} }]);
    });

    it("sends only what is newer than the distributor's cache", async () => {
      const feed = distributor();
      feed.subscribe([{ fleet: "web", latestBundleVersion: 1, fleetStateGeneration: 1 }]);
      const received = await feed.until(3);
      expect(
        received.map((kind) => [kind.$case, "version" in kind.value ? kind.value.version : undefined]),
      ).toEqual([
        ["bundle", 2],
        ["fleetState", undefined],
        ["syncComplete", undefined],
      ]);
    });

    it("pushes bundles submitted and states changed after SyncComplete, bundles before states", async () => {
      const feed = distributor();
      feed.subscribe([{ fleet: "web", latestBundleVersion: 2, fleetStateGeneration: 2 }]);
      await feed.until(1);
      await submit("web", "sha-3");
      await feed.until(2);
      await store.promoteStable("web", 3, "alice");
      await store.createFleet({ name: "api" });
      await submit("api", "sha-a");
      const received = await feed.until(5);
      expect(received.slice(1).map((kind) => kind.$case)).toEqual([
        "bundle",
        "fleetState",
        "bundle",
        "fleetState",
      ]);
      expect(received[1]).toMatchObject({ value: { fleet: "web", version: 3 } });
      expect(received[2]).toMatchObject({
        value: { fleet: "web", stableVersion: 3, candidateVersion: 0, rolloutId: "", generation: 3 },
      });
      expect(received[3]).toMatchObject({ value: { fleet: "api", version: 1 } });
      expect(received[4]).toMatchObject({ value: { fleet: "api", stableVersion: 1, generation: 1 } });
    });

    // PGlite is one process's in-memory database: a second connection to the same data exists only on Postgres.
    it.runIf(target.dialect === "postgres")(
      "pushes what another replica commits, heard through NOTIFY",
      async () => {
        const other = new AuthorityStore(await test.openAnother(), { now: () => NOW });
        const feed = distributor();
        feed.subscribe([{ fleet: "web", latestBundleVersion: 2, fleetStateGeneration: 2 }]);
        await feed.until(1);
        await other.submitBundle("web", "sha-3", async (v) => built(v));
        await other.promoteStable("web", 3, "alice");
        const received = await feed.until(3);
        expect(received.slice(1)).toMatchObject([
          { $case: "bundle", value: { version: 3 } },
          { $case: "fleetState", value: { stableVersion: 3, generation: 3 } },
        ]);
      },
    );

    // Only Postgres delivers NOTIFY over a connection that can drop; PGlite's stay in the process.
    it.runIf(target.dialect === "postgres")(
      "sends a state changed while its LISTEN connection was down once it listens again",
      async () => {
        const feed = distributor();
        feed.subscribe([{ fleet: "web", latestBundleVersion: 2, fleetStateGeneration: 2 }]);
        await feed.until(1);
        const killed = await sql<{ killed: boolean }>`
          select pg_terminate_backend(pid) as killed from pg_stat_activity
          where query like ${`LISTEN "${test.options.schema}\\_\\_%`}
        `.execute(test.database.db);
        expect(killed.rows).toEqual([{ killed: true }]);
        // Committed before the listener reconnects (1 s later): their NOTIFYs reach no one.
        await submit("web", "sha-3");
        await store.promoteStable("web", 3, "alice");
        const received = await feed.until(3);
        expect(received.slice(1)).toMatchObject([
          { $case: "bundle", value: { version: 3 } },
          { $case: "fleetState", value: { stableVersion: 3, generation: 3 } },
        ]);
      },
    );

    it("refuses reports before Subscribe", async () => {
      const feed = distributor();
      feed.call.write({ kind: { $case: "healthBatch", value: { samples: [] } } });
      expect((await feed.closed).code).toBe(status.FAILED_PRECONDITION);
    });

    it("ends every stream with OK on close", async () => {
      const feed = distributor();
      feed.subscribe([{ fleet: "web", latestBundleVersion: 2, fleetStateGeneration: 2 }]);
      await feed.until(1);
      expect(server.sessionCount).toBe(1);
      await server.close();
      await server.close();
      expect((await feed.closed).code).toBe(status.OK);
      expect(server.sessionCount).toBe(0);
    });
  });
}
