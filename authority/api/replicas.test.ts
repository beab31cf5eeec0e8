import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeKeyPair } from "../../services/bundle/index.js";
import {
  dropSchema,
  POSTGRES_URL,
  sampleConfig,
  startTestAuthority,
  type TestAuthority,
  testDatabase,
} from "./test-harness.js";

// Replicas share a database only on Postgres; skipped when COHERENT_TEST_NO_POSTGRES=1 (no Postgres here).
describe.skipIf(POSTGRES_URL === undefined)("two authority replicas on one Postgres", () => {
  const database = testDatabase("postgres");
  let keyDir: string;
  let a: TestAuthority;
  let b: TestAuthority;

  beforeAll(async () => {
    keyDir = await mkdtemp(join(tmpdir(), "coherent-replicas-"));
    const { privateFile } = await writeKeyPair(keyDir);
    a = await startTestAuthority({ database, keyFile: privateFile });
    b = await startTestAuthority({ database, keyFile: privateFile, bootstrap: false });
    expect((await a.call("POST", "/api/v1/fleets", { body: { name: "shared" } })).status).toBe(201);
  });

  afterAll(async () => {
    await a?.close();
    await b?.close();
    await dropSchema(database);
    await rm(keyDir, { recursive: true, force: true });
  });

  const through = (replica: TestAuthority, path: string, body?: unknown) =>
    replica.call(body === undefined ? "GET" : "POST", path, { token: a.adminToken, body });

  it("share one key: the second replica found it active and changed nothing", async () => {
    expect(b.handle.kid).toBe(a.handle.kid);
    const activations = await a.handle.store.listAudit({ action: "key.activate" });
    expect(activations).toHaveLength(1);
  });

  it("give concurrent submits through both versions 1..N with no collision", async () => {
    const submits = Array.from({ length: 20 }, (_, i) =>
      through(i % 2 === 0 ? a : b, "/api/v1/fleets/shared/bundles", { config: sampleConfig(i + 1) }),
    );
    const results = await Promise.all(submits);
    expect(results.map((r) => r.status)).toEqual(Array(20).fill(201));
    const versions = results.map((r) => (r.body as { version: number }).version).sort((x, y) => x - y);
    expect(versions).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    const listed = await through(b, "/api/v1/fleets/shared/bundles?limit=100");
    expect((listed.body as { bundles: Array<{ version: number }> }).bundles.map((x) => x.version)).toEqual(
      Array.from({ length: 20 }, (_, i) => 20 - i),
    );
    expect((await through(a, "/api/v1/audit/verify")).body).toMatchObject({ ok: true });
  });

  it("show a submit through one replica through the other at once, and tell it by NOTIFY", async () => {
    const created = await through(a, "/api/v1/fleets/shared/bundles", { config: sampleConfig(30) });
    expect(created.status).toBe(201);
    const { version } = created.body as { version: number };
    expect(await through(b, `/api/v1/fleets/shared/bundles/${version}`)).toMatchObject({
      status: 200,
      body: { version, config: { routes: expect.any(Array) } },
    });
    const line = `"event":"bundle_created","fleet":"shared","version":${version}`;
    for (let waited = 0; !b.logs().includes(line) && waited < 5_000; waited += 20) await sleep(20);
    expect(b.logs()).toContain(line);
  });

  it("accept a token made through one replica on the other, and refuse it there once revoked", async () => {
    const created = await through(a, "/api/v1/tokens", { name: "roaming", role: "viewer" });
    const { id, token } = created.body as { id: string; token: string };
    expect((await b.call("GET", "/api/v1/fleets", { token })).status).toBe(200);
    expect((await b.call("DELETE", `/api/v1/tokens/${id}`, { token: a.adminToken })).status).toBe(200);
    expect((await a.call("GET", "/api/v1/fleets", { token })).status).toBe(401);
  });
});
