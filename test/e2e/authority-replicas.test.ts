/**
 * Two authority processes (`coherent authority`) on one real Postgres behave as one: 20
 * submits spread over both get versions 1..20 with no gap and no duplicate, and each process
 * sees at once what the other wrote.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeKeyPair } from "../../services/bundle/index.js";

const ROOT = join(import.meta.dirname, "..", "..");
const ADMIN_URL = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const SKIP = process.env.COHERENT_TEST_NO_POSTGRES === "1";

function coherent(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ["--import", "tsx", join(ROOT, "cli/coherent.ts"), ...args],
      { cwd: ROOT, timeout: 30_000 },
      (error, stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout)),
    );
  });
}

async function startAuthorityProcess(
  databaseUrl: string,
  keyFile: string,
): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      join(ROOT, "cli/coherent.ts"),
      "authority",
      "--database-url",
      databaseUrl,
      "--signing-key-file",
      keyFile,
      "--listen",
      "127.0.0.1:0",
      "--feed-listen",
      "127.0.0.1:0",
    ],
    { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] },
  );
  for await (const line of createInterface({ input: child.stdout as NodeJS.ReadableStream })) {
    const entry = JSON.parse(line) as { event?: string; url?: string };
    if (entry.event === "authority_started" && entry.url) return { child, url: entry.url };
  }
  throw new Error("the authority exited before it started");
}

// Two processes on one database need a real Postgres; skipped when COHERENT_TEST_NO_POSTGRES=1 (none here).
describe.skipIf(SKIP)("two authority processes on one Postgres", { timeout: 90_000 }, () => {
  const database = `coherent_e2e_${randomBytes(6).toString("hex")}`;
  const databaseUrl = ADMIN_URL.replace(/\/[^/]*$/, `/${database}`);
  let dir: string;
  let token: string;
  const processes: ChildProcess[] = [];
  const urls: string[] = [];

  beforeAll(async () => {
    const admin = new pg.Client({ connectionString: ADMIN_URL });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${database}`);
    await admin.end();
    dir = await mkdtemp(join(tmpdir(), "coherent-e2e-"));
    const { privateFile } = await writeKeyPair(dir);
    const issued = await coherent([
      "--database-url",
      databaseUrl,
      "token",
      "create",
      "--role",
      "admin",
      "--name",
      "e2e",
      "--output",
      "json",
    ]);
    token = (JSON.parse(issued) as { token: string }).token;
    for (const started of await Promise.all([
      startAuthorityProcess(databaseUrl, privateFile),
      startAuthorityProcess(databaseUrl, privateFile),
    ])) {
      processes.push(started.child);
      urls.push(started.url);
    }
  });

  afterAll(async () => {
    for (const child of processes) child.kill("SIGKILL");
    await rm(dir, { recursive: true, force: true });
    const admin = new pg.Client({ connectionString: ADMIN_URL });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.end();
  });

  const call = async (url: string, method: string, path: string, body?: unknown) => {
    const res = await fetch(`${url}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

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
