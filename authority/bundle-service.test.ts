import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateSigningKey, Keyring, verifyBundle } from "../services/bundle/index.js";
import { sampleConfig } from "./api/test-harness.js";
import { BundleService } from "./bundle-service.js";
import { DEFAULT_GOVERNANCE } from "./governance.js";
import {
  AuthorityStore,
  type BundleBuilder,
  type Database,
  migrateToLatest,
  openDatabase,
  type SubmitResult,
} from "./store/index.js";

/** A store where another submit lands between a submit's governance check and its version lock. */
class RacingStore extends AuthorityStore {
  race: (() => Promise<unknown>) | undefined;

  override async submitBundle(fleet: string, sha: string, build: BundleBuilder): Promise<SubmitResult> {
    const race = this.race;
    this.race = undefined;
    await race?.();
    return super.submitBundle(fleet, sha, build);
  }
}

const withTls = (routes: number) => {
  const config = sampleConfig(routes);
  for (const route of config.routes as Array<Record<string, unknown>>) route.require_tls = true;
  return config;
};

describe("BundleService", () => {
  let database: Database;
  let store: RacingStore;
  let service: BundleService;
  let keyring: Keyring;
  let times = 0;

  beforeAll(async () => {
    database = await openDatabase({ dataDir: ":memory:" });
    await migrateToLatest(database.db);
    store = new RacingStore(database, { now: () => Date.UTC(2030, 0, 1, 0, 0, times++) });
    const { key, publicPem } = await generateSigningKey();
    keyring = await Keyring.from([{ pem: publicPem }]);
    service = new BundleService({ store, signingKey: key, governance: DEFAULT_GOVERNANCE });
  });

  afterAll(async () => {
    await database?.close();
  });

  it("signs what it stores: the JWS carries the stored version, parent, time, hash and config", async () => {
    await store.createFleet({ name: "signed" });
    const first = await service.submit(
      "signed",
      { data: sampleConfig(1) },
      { actor: "alice", message: "hello" },
    );
    const second = await service.submit(
      "signed",
      { text: JSON.stringify(sampleConfig(2)) },
      { actor: "bob" },
    );
    expect(second).toMatchObject({ status: "created", bundle: { version: 2, parent: 1 } });
    if (first.status === "invalid" || second.status === "invalid") throw new Error("unexpected");
    const payload = await verifyBundle(second.bundle.jws, { keyring, fleet: "signed", floor: 1 });
    expect(payload).toEqual({
      schema: "coherent.bundle/v1",
      fleet: "signed",
      version: 2,
      parent: 1,
      created_at: second.bundle.createdAt.toISOString(),
      created_by: "bob",
      content_sha256: second.bundle.contentSha256,
      config: second.bundle.config,
    });
    expect((await verifyBundle(first.bundle.jws, { keyring, fleet: "signed" })).message).toBe("hello");
    const audit = await store.listAudit({ action: "bundle.submit", target: "fleet:signed" });
    expect(audit.map((e) => [e.actor, e.details.version])).toEqual([
      ["bob", 2],
      ["alice", 1],
    ]);
  });

  it("re-checks governance when another submit took the version it checked against", async () => {
    await store.createFleet({ name: "raced" });
    await service.submit("raced", { data: sampleConfig(1) }, { actor: "alice" });
    // Between bob's check (against v1, no TLS) and his lock, alice makes the route require TLS.
    store.race = () => service.submit("raced", { data: withTls(1) }, { actor: "alice" });
    const result = await service.submit("raced", { data: sampleConfig(2) }, { actor: "bob" });
    expect(result).toMatchObject({
      status: "invalid",
      errors: [{ code: "require_tls_kept", path: "routes[0].require_tls" }],
    });
    expect((await store.listBundles("raced")).map((b) => b.version)).toEqual([2, 1]);
  });

  it("does not retry when nothing in governance looks at the previous bundle", async () => {
    const lenient = new BundleService({
      store,
      signingKey: (await generateSigningKey()).key,
      governance: { ...DEFAULT_GOVERNANCE, require_tls_kept: false },
    });
    await store.createFleet({ name: "lenient" });
    await lenient.submit("lenient", { data: withTls(1) }, { actor: "alice" });
    store.race = () => lenient.submit("lenient", { data: withTls(2) }, { actor: "alice" });
    expect(await lenient.submit("lenient", { data: sampleConfig(3) }, { actor: "bob" })).toMatchObject({
      status: "created",
      bundle: { version: 3, parent: 2 },
    });
  });

  it("reports parse, schema and governance errors with paths, and writes nothing", async () => {
    await store.createFleet({ name: "strict" });
    const audit = (await store.verifyAudit()).entries;
    expect(await service.submit("strict", { text: "routes: [" }, { actor: "a" })).toMatchObject({
      status: "invalid",
      errors: [{ code: "config_syntax" }],
    });
    expect(await service.submit("strict", { data: { routes: "none" } }, { actor: "a" })).toMatchObject({
      status: "invalid",
      errors: [{ path: "routes" }],
    });
    expect(
      await service.submit(
        "strict",
        { data: { ...sampleConfig(), routes: [{ id: "r", path: "/", pool: "api" }] } },
        {
          actor: "a",
        },
      ),
    ).toMatchObject({ status: "invalid", errors: [{ code: "route_timeout_required" }] });
    await expect(service.submit("absent", { data: sampleConfig() }, { actor: "a" })).rejects.toMatchObject({
      code: "unknown_fleet",
    });
    expect(await store.listBundles("strict")).toEqual([]);
    expect((await store.verifyAudit()).entries).toBe(audit);
  });

  it("restores an old content as the next version, signed with rollback_of, once however often asked", async () => {
    await store.createFleet({ name: "restored" });
    for (const routes of [1, 2])
      await service.submit("restored", { data: sampleConfig(routes) }, { actor: "alice" });
    const restored = await service.restore("restored", 1, 2, { actor: "rollout-controller" });
    expect(restored).toMatchObject({ version: 3, rollbackOf: 2, createdBy: "rollout-controller" });
    const first = await store.getBundle("restored", 1);
    expect(restored.contentSha256).toBe(first?.contentSha256);
    const verified = await verifyBundle(restored.jws, { keyring, fleet: "restored", floor: 2 });
    expect(verified).toMatchObject({ version: 3, parent: 2, rollback_of: 2 });
    // A retry finds the content already latest: the same bundle, no fourth version.
    expect((await service.restore("restored", 1, 2, { actor: "rollout-controller" })).version).toBe(3);
    const audit = await store.listAudit({ action: "bundle.rollback" });
    expect(audit.map((a) => a.details)).toMatchObject([{ version: 3, rollback_of: 2 }]);
  });

  it("diffs two versions and names unknown ones", async () => {
    await store.createFleet({ name: "diffed" });
    await service.submit("diffed", { data: sampleConfig(1) }, { actor: "a" });
    await service.submit("diffed", { data: sampleConfig(1, "9s") }, { actor: "a" });
    expect(await service.diff("diffed", 1, 2)).toEqual([
      {
        kind: "changed",
        path: ["routes", { key: "route-0" }, "policy", "timeout"],
        before: 5000,
        after: 9000,
      },
    ]);
    await expect(service.diff("diffed", 1, 7)).rejects.toMatchObject({ code: "unknown_version" });
    await expect(service.diff("nowhere", 1, 2)).rejects.toMatchObject({ code: "unknown_fleet" });
  });
});
