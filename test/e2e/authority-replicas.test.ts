/**
 * Two authority processes (`coherent authority`) on one real Postgres behave as one: 20
 * submits spread over both get versions 1..20 with no gap and no duplicate, and each process
 * sees at once what the other wrote.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeKeyPair } from "../../services/bundle/index.js";
import {
  type AuthorityProcess,
  api,
  createAdminToken,
  createPostgresDatabase,
  NO_POSTGRES,
  type PostgresDatabase,
  startAuthorityProcess,
} from "./support/coherent.js";
import { stopAll } from "./support/processes.js";

// Two processes on one database need a real Postgres; skipped when COHERENT_TEST_NO_POSTGRES=1 (none here).
describe.skipIf(NO_POSTGRES)("two authority processes on one Postgres", { timeout: 90_000 }, () => {
  let database: PostgresDatabase;
  let dir: string;
  let token: string;
  const authorities: AuthorityProcess[] = [];
  const urls: string[] = [];

  beforeAll(async () => {
    database = await createPostgresDatabase();
    dir = await mkdtemp(join(tmpdir(), "coherent-e2e-"));
    const { privateFile } = await writeKeyPair(dir);
    token = await createAdminToken(database);
    for (const started of await Promise.all([
      startAuthorityProcess({ database, signingKeyFile: privateFile, name: "authority a" }),
      startAuthorityProcess({ database, signingKeyFile: privateFile, name: "authority b" }),
    ])) {
      authorities.push(started);
      urls.push(started.url);
    }
  }, 60_000);

  afterAll(async () => {
    await stopAll(authorities.map((a) => a.process));
    if (dir) await rm(dir, { recursive: true, force: true });
    await database?.drop();
  });

  const call = (url: string, method: string, path: string, body?: unknown) =>
    api(url, token, method, path, body);

  it("numbers 20 concurrent submits through both 1..20, and each sees the other's at once", async () => {
    const [a, b] = urls as [string, string];
    expect((await call(a, "POST", "/fleets", { name: "shared" })).status).toBe(201);
    const submits = Array.from({ length: 20 }, (_, i) =>
      call(i % 2 === 0 ? a : b, "POST", "/fleets/shared/bundles", {
        config: {
          routes: [{ id: "api", path_prefix: "/", pool: "p", policy: { timeout: `${1000 + i}ms` } }],
          pools: [{ id: "p", endpoints: [{ address: "127.0.0.1:9001" }] }],
        },
      }),
    );
    const results = await Promise.all(submits);
    expect(results.map((r) => r.status)).toEqual(Array(20).fill(201));
    const versions = results.map((r) => Number(r.body.version)).sort((x, y) => x - y);
    expect(versions).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    const listed = await call(b, "GET", "/fleets/shared/bundles?limit=50");
    expect((listed.body.bundles as unknown[]).length).toBe(20);
    const latestFromA = await call(a, "GET", "/fleets/shared/bundles/20");
    expect(latestFromA.status).toBe(200);
    const verified = await call(b, "GET", "/audit/verify");
    expect(verified.body).toMatchObject({ ok: true });
  });
});
