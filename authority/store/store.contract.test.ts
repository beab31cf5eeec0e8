import { sql } from "kysely";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { MIGRATIONS } from "../../migrations/index.js";
import { GENESIS_HASH } from "./audit-chain.js";
import { type Database, migrateToLatest } from "./database.js";
import { AuthorityStore, type BuiltBundle, type BundleCreatedEvent } from "./store.js";
import { TEST_TARGETS, type TestDatabase } from "./test-databases.js";
import { collect, storeError, within } from "./test-support.js";

const START = Date.parse("2025-03-01T12:00:00.000Z");

function built(version: number, extra: Partial<BuiltBundle> = {}): BuiltBundle {
  return {
    jws: `header.payload-${version}.signature`,
    config: { version: "v1", routes: [{ id: `r${version}`, pool: "web", timeout: 1500 }] },
    createdBy: "alice",
    ...extra,
  };
}

for (const target of TEST_TARGETS) {
  // Skipped only when COHERENT_TEST_NO_POSTGRES=1 (no Postgres on the machine): the PGlite run still covers it.
  describe.skipIf(target.skip)(`the authority store on ${target.dialect}`, () => {
    let test: TestDatabase;
    let store: AuthorityStore;
    let clock: number;

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
    });

    describe("migrations", () => {
      it("applied every migration in order to the empty database and apply nothing the second time", async () => {
        expect(test.migrated).toEqual(Object.keys(MIGRATIONS));
        expect(await migrateToLatest(test.database.db)).toEqual({ applied: [] });
      });
    });

    describe("fleets", () => {
      it("are created once, found by name and listed by name", async () => {
        const web = await store.createFleet({ name: "web", description: "public edge" });
        await store.createFleet({ name: "api" });
        expect(web).toEqual({ name: "web", description: "public edge", createdAt: new Date(START) });
        expect(await store.getFleet("web")).toEqual(web);
        expect(await store.getFleet("nope")).toBeUndefined();
        expect((await store.listFleets()).map((f) => f.name)).toEqual(["api", "web"]);
      });

      it("refuse a taken name with fleet_exists", async () => {
        await store.createFleet({ name: "web" });
        expect((await storeError(store.createFleet({ name: "web" }))).code).toBe("fleet_exists");
      });
    });

    describe("bundles", () => {
      beforeEach(async () => {
        await store.createFleet({ name: "web" });
      });

      it("get version 1 without a parent, then the next version with the previous as parent", async () => {
        const build = vi.fn(async (version: number) => built(version));
        const first = await store.submitBundle("web", "sha-a", build);
        clock += 1000;
        const second = await store.submitBundle("web", "sha-b", async (version) =>
          built(version, { message: "roll back", rollbackOf: 1 }),
        );

        expect(build).toHaveBeenCalledWith(1, null, new Date(START));
        expect(first.status).toBe("created");
        expect(first.bundle).toMatchObject({
          version: 1,
          parent: null,
          contentSha256: "sha-a",
          message: null,
        });
        expect(second.bundle).toMatchObject({ version: 2, parent: 1, rollbackOf: 1, message: "roll back" });
        expect(await store.getBundle("web", 2)).toEqual(second.bundle);
        expect(await store.getBundle("web", 1)).toEqual({
          fleet: "web",
          version: 1,
          parent: null,
          contentSha256: "sha-a",
          jws: "header.payload-1.signature",
          config: { version: "v1", routes: [{ id: "r1", pool: "web", timeout: 1500 }] },
          createdBy: "alice",
          createdAt: new Date(START),
          message: null,
          rollbackOf: null,
        });
      });

      it("answer unchanged for the latest content without calling build or writing", async () => {
        const first = await store.submitBundle("web", "sha-a", async (v) => built(v));
        const build = vi.fn(async (v: number) => built(v));

        const again = await store.submitBundle("web", "sha-a", build);

        expect(again).toEqual({ status: "unchanged", bundle: first.bundle });
        expect(build).not.toHaveBeenCalled();
        expect(await store.listBundles("web")).toHaveLength(1);
      });

      it("store the content of an older version again as a new version", async () => {
        await store.submitBundle("web", "sha-a", async (v) => built(v));
        await store.submitBundle("web", "sha-b", async (v) => built(v));
        const back = await store.submitBundle("web", "sha-a", async (v) => built(v, { rollbackOf: 1 }));
        expect(back.status).toBe("created");
        expect(back.bundle.version).toBe(3);
      });

      it("refuse an unknown fleet with unknown_fleet before building anything", async () => {
        const build = vi.fn(async (v: number) => built(v));
        expect((await storeError(store.submitBundle("nope", "sha-a", build))).code).toBe("unknown_fleet");
        expect(build).not.toHaveBeenCalled();
      });

      it("write nothing and keep the version free when build fails", async () => {
        await expect(
          store.submitBundle("web", "sha-a", async (v) => {
            throw new Error(`cannot sign ${v}`);
          }),
        ).rejects.toThrow("cannot sign 1");
        expect(await store.latestBundle("web")).toBeUndefined();
        const next = await store.submitBundle("web", "sha-a", async (v) => built(v));
        expect(next.bundle.version).toBe(1);
      });

      it("get versions 1..20 with no gap and no duplicate from 20 concurrent submits", async () => {
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) => store.submitBundle("web", `sha-${i}`, async (v) => built(v))),
        );
        const versions = results.map((r) => r.bundle.version).sort((a, b) => a - b);
        expect(versions).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
        const listed = await store.listBundles("web", { limit: 100 });
        expect(listed.map((b) => b.version)).toEqual(versions.slice().reverse());
        expect(listed.every((b) => b.parent === (b.version === 1 ? null : b.version - 1))).toBe(true);
      });

      it("are listed newest first, without content, a page at a time", async () => {
        for (let i = 1; i <= 7; i++) await store.submitBundle("web", `sha-${i}`, async (v) => built(v));
        const page = await store.listBundles("web", { limit: 3 });
        expect(page.map((b) => b.version)).toEqual([7, 6, 5]);
        expect(page[0]).not.toHaveProperty("jws");
        expect(page[0]).not.toHaveProperty("config");
        const next = await store.listBundles("web", { limit: 3, beforeVersion: 5 });
        expect(next.map((b) => b.version)).toEqual([4, 3, 2]);
        expect((await store.latestBundle("web"))?.version).toBe(7);
        expect(await store.listBundles("other")).toEqual([]);
      });

      it("commit the audit entry build asks for together with the bundle", async () => {
        const audit = {
          actor: "alice",
          action: "bundle.submit",
          target: "fleet:web",
          details: { version: 1 },
        };
        await store.submitBundle("web", "sha-a", async (v) => built(v, { audit }));
        await expect(
          store.submitBundle("web", "sha-b", async () => {
            throw new Error("boom");
          }),
        ).rejects.toThrow("boom");

        // The first bundle also becomes the fleet's stable version, audited right after it.
        const entries = await store.listAudit();
        expect(entries.map((e) => e.action)).toEqual(["fleet.state", "bundle.submit"]);
        expect(entries[1]).toMatchObject({ seq: 1, ...audit });
        expect(await store.verifyAudit()).toEqual({ ok: true, entries: 2 });
      });

      it("announce each created bundle after commit, and nothing for unchanged or failed submits", async () => {
        const seen = collect<BundleCreatedEvent>(2);
        const unsubscribe = await store.onBundleCreated(seen.fn);
        await store.submitBundle("web", "sha-a", async (v) => built(v));
        await store.submitBundle("web", "sha-a", async (v) => built(v));
        await store
          .submitBundle("web", "sha-x", async () => {
            throw new Error("boom");
          })
          .catch(() => undefined);
        await store.submitBundle("web", "sha-b", async (v) => built(v));

        expect(await within(seen.all, 5000)).toEqual([
          { fleet: "web", version: 1 },
          { fleet: "web", version: 2 },
        ]);
        await unsubscribe();
      });

      it("stop announcing to a subscriber that unsubscribed", async () => {
        const gone = collect<BundleCreatedEvent>(1);
        const stays = collect<BundleCreatedEvent>(1);
        const unsubscribe = await store.onBundleCreated(gone.fn);
        const unsubscribeStays = await store.onBundleCreated(stays.fn);
        await unsubscribe();
        await store.submitBundle("web", "sha-a", async (v) => built(v));
        await within(stays.all, 5000);
        expect(gone.events).toEqual([]);
        await unsubscribeStays();
      });
    });

    describe("the audit log", () => {
      async function appendThree() {
        await store.appendAudit({ actor: "alice", action: "token.create", target: "token:1" });
        clock += 60_000;
        await store.appendAudit({
          actor: "bob",
          action: "bundle.submit",
          target: "fleet:web",
          details: { version: 3, nested: { b: 1, a: [1, "x"] } },
        });
        clock += 60_000;
        await store.appendAudit({ actor: "alice", action: "key.rotate", target: "key:k2" });
      }

      it("chains each entry to the one before it", async () => {
        await appendThree();
        const [third, second, first] = await store.listAudit();
        expect(first).toMatchObject({ seq: 1, prevHash: GENESIS_HASH, at: new Date(START), details: {} });
        expect(second).toMatchObject({ seq: 2, prevHash: first?.hash, details: { version: 3 } });
        expect(third).toMatchObject({ seq: 3, prevHash: second?.hash });
        expect(new Set([first?.hash, second?.hash, third?.hash]).size).toBe(3);
        expect(await store.verifyAudit()).toEqual({ ok: true, entries: 3 });
      });

      it("filters by actor, action, target and time, newest first, a page at a time", async () => {
        await appendThree();
        const seqs = async (filter: Parameters<AuthorityStore["listAudit"]>[0]) =>
          (await store.listAudit(filter)).map((e) => e.seq);
        expect(await seqs({ actor: "alice" })).toEqual([3, 1]);
        expect(await seqs({ action: "bundle.submit" })).toEqual([2]);
        expect(await seqs({ target: "key:k2" })).toEqual([3]);
        expect(await seqs({ since: new Date(START + 60_000) })).toEqual([3, 2]);
        expect(await seqs({ limit: 2 })).toEqual([3, 2]);
        expect(await seqs({ limit: 2, beforeSeq: 2 })).toEqual([1]);
      });

      it("names the entry whose details were edited behind the app's back", async () => {
        await appendThree();
        await sql`update audit_log set details = '{"version": 4}'::jsonb where seq = 2`.execute(
          test.database.db,
        );
        expect(await store.verifyAudit()).toEqual({
          ok: false,
          entries: 1,
          brokenAt: { seq: 2, reason: "hash does not match the entry's content" },
        });
      });

      it("names the entry whose hash was rewritten", async () => {
        await appendThree();
        await sql`update audit_log set hash = ${"f".repeat(64)} where seq = 2`.execute(test.database.db);
        const result = await store.verifyAudit();
        expect(result).toMatchObject({ ok: false, brokenAt: { seq: 2 } });
      });

      it("names the entry after one that was deleted", async () => {
        await appendThree();
        await sql`delete from audit_log where seq = 2`.execute(test.database.db);
        expect(await store.verifyAudit()).toMatchObject({ ok: false, entries: 1, brokenAt: { seq: 3 } });
      });

      it("keeps one chain under 20 concurrent appends", async () => {
        await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            store.appendAudit({ actor: "a", action: "x", target: `t${i}` }),
          ),
        );
        expect(await store.verifyAudit()).toEqual({ ok: true, entries: 20 });
      });

      it("verifies a chain longer than one read batch", async () => {
        for (let i = 0; i < 1005; i++) await store.appendAudit({ actor: "a", action: "x", target: `t${i}` });
        expect(await store.verifyAudit()).toEqual({ ok: true, entries: 1005 });
      });
    });

    describe("tokens", () => {
      it("are found by hash until revoked, and listed with their revocation", async () => {
        const token = await store.createToken({
          name: "ci",
          role: "operator",
          tokenHash: "h1",
          createdBy: "root",
        });
        expect(token).toMatchObject({ name: "ci", role: "operator", createdBy: "root", revokedAt: null });
        expect(token).not.toHaveProperty("tokenHash");
        expect(await store.findToken("h1")).toEqual(token);
        expect(await store.findToken("h2")).toBeUndefined();

        clock += 5000;
        const revoked = await store.revokeToken(token.id);
        expect(revoked?.revokedAt).toEqual(new Date(START + 5000));
        expect(await store.findToken("h1")).toBeUndefined();
        expect(await store.revokeToken(token.id)).toBeUndefined();
        expect(await store.revokeToken("no-such-id")).toBeUndefined();
        expect(await store.listTokens()).toEqual([revoked]);
      });

      it("refuse a second token with the same hash", async () => {
        await store.createToken({ name: "a", role: "viewer", tokenHash: "same", createdBy: "root" });
        await expect(
          store.createToken({ name: "b", role: "admin", tokenHash: "same", createdBy: "root" }),
        ).rejects.toThrow();
        expect(await store.listTokens()).toHaveLength(1);
      });
    });

    describe("signing keys", () => {
      it("keep one active key: activating another makes the old one trusted", async () => {
        const jwk = { kty: "OKP", crv: "Ed25519", x: "abc" };
        await store.upsertSigningKey({ kid: "k1", publicJwk: jwk, status: "active" });
        clock += 1000;
        await store.upsertSigningKey({ kid: "k2", publicJwk: { ...jwk, x: "def" }, status: "active" });
        const statuses = async () => (await store.listSigningKeys()).map((k) => [k.kid, k.status]);
        expect(await statuses()).toEqual([
          ["k1", "trusted"],
          ["k2", "active"],
        ]);
        await store.upsertSigningKey({ kid: "k1", publicJwk: jwk, status: "retired" });
        expect(await statuses()).toEqual([
          ["k1", "retired"],
          ["k2", "active"],
        ]);
        const [k1] = await store.listSigningKeys();
        expect(k1).toMatchObject({
          publicJwk: jwk,
          createdAt: new Date(START),
          updatedAt: new Date(START + 1000),
        });
      });
    });

    // PGlite is one process's in-memory database: a second connection to the same data exists only on Postgres.
    describe.skipIf(target.dialect !== "postgres")("with a second process on the same database", () => {
      let other: AuthorityStore;
      let otherDatabase: Database;

      beforeAll(async () => {
        otherDatabase = await test.openAnother();
      });

      beforeEach(async () => {
        other = new AuthorityStore(otherDatabase, { now: () => clock });
        await store.createFleet({ name: "web" });
      });

      it("gets versions 1..20 with no gap from 10 concurrent submits through each", async () => {
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            (i % 2 === 0 ? store : other).submitBundle("web", `sha-${i}`, async (v) => built(v)),
          ),
        );
        const versions = results.map((r) => r.bundle.version).sort((a, b) => a - b);
        expect(versions).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      });

      it("sees a bundle submitted through the other at once", async () => {
        const { bundle } = await store.submitBundle("web", "sha-a", async (v) => built(v));
        expect(await other.getBundle("web", 1)).toEqual(bundle);
        expect((await other.submitBundle("web", "sha-a", async (v) => built(v))).status).toBe("unchanged");
      });

      it("keeps one audit chain under concurrent appends through both", async () => {
        await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            (i % 2 === 0 ? store : other).appendAudit({ actor: "a", action: "x", target: `t${i}` }),
          ),
        );
        expect(await other.verifyAudit()).toEqual({ ok: true, entries: 20 });
      });

      it("hears about a bundle created by the other", async () => {
        const seen = collect<BundleCreatedEvent>(1);
        const unsubscribe = await other.onBundleCreated(seen.fn);
        await store.submitBundle("web", "sha-a", async (v) => built(v));
        expect(await within(seen.all, 5000)).toEqual([{ fleet: "web", version: 1 }]);
        await unsubscribe();
      });
    });
  });
}
