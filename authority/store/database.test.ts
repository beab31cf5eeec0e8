import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "kysely";
import pg from "pg";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { MIGRATIONS } from "../../migrations/index.js";
import { type Database, type DatabaseOptions, migrateToLatest, openDatabase } from "./database.js";
import { StoreError } from "./errors.js";
import { AuthorityStore } from "./store.js";
import { TEST_POSTGRES_URL, TEST_TARGETS } from "./test-databases.js";

const postgres = TEST_TARGETS.find((t) => t.dialect === "postgres");

async function optionsError(options: DatabaseOptions): Promise<StoreError> {
  const error = await openDatabase(options).then(
    async (db) => {
      await db.close();
      return undefined;
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StoreError);
  return error as StoreError;
}

/** Waits for the next payload on `channel`, or fails after `ms`. */
function next(database: Database, channel: string, ms = 5000) {
  let unlisten: () => Promise<void> = async () => {};
  const payload = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`nothing on ${channel} within ${ms} ms`)), ms);
    database
      .listen(channel, (p) => {
        clearTimeout(timer);
        resolve(p);
      })
      .then((fn) => {
        unlisten = fn;
      }, reject);
  });
  return { payload, stop: () => unlisten() };
}

describe("openDatabase", () => {
  it("refuses options that name no database", async () => {
    expect((await optionsError({})).code).toBe("invalid_options");
  });

  it("refuses a url that is not postgres", async () => {
    expect((await optionsError({ url: "mysql://localhost/x" })).code).toBe("invalid_options");
  });

  it("refuses a schema that is not a plain identifier", async () => {
    expect((await optionsError({ dataDir: ":memory:", schema: 'x"; drop table y' })).code).toBe(
      "invalid_options",
    );
  });
});

describe("PGlite in a data directory", () => {
  const dirs: string[] = [];
  afterAll(async () => {
    await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it("keeps its data and its migrations across a reopen", async () => {
    const dir = await mkdtemp(join(tmpdir(), "coherent-store-"));
    dirs.push(dir);
    const dataDir = join(dir, "nested", "pglite");

    const first = await openDatabase({ dataDir });
    expect(await migrateToLatest(first.db)).toEqual({ applied: Object.keys(MIGRATIONS) });
    await new AuthorityStore(first).createFleet({ name: "web" });
    await first.close();
    await first.close();

    const second = await openDatabase({ dataDir });
    try {
      expect(await migrateToLatest(second.db)).toEqual({ applied: [] });
      expect((await new AuthorityStore(second).getFleet("web"))?.name).toBe("web");
    } finally {
      await second.close();
    }
  });

  it("delivers a notification in process once the transaction commits", async () => {
    const database = await openDatabase({ dataDir: ":memory:" });
    try {
      const heard: string[] = [];
      const unlisten = await database.listen("ping", (p) => heard.push(p));
      await database.db.transaction().execute(async (trx) => {
        await database.notify("ping", "in-trx", trx);
        expect(heard).toEqual([]);
      });
      await database.db
        .transaction()
        .execute(async (trx) => {
          await database.notify("ping", "rolled-back", trx);
          throw new Error("rollback");
        })
        .catch(() => undefined);
      await database.notify("ping", "direct");
      await expect.poll(() => heard).toEqual(["in-trx", "direct"]);
      await unlisten();
    } finally {
      await database.close();
    }
  });
});

// Skipped only when COHERENT_TEST_NO_POSTGRES=1 (no Postgres on the machine): the PGlite suite above still runs.
describe.skipIf(postgres?.skip ?? true)("Postgres", () => {
  const schemas: string[] = [];
  const opened: Database[] = [];
  const open = async (schema: string, extra: Partial<DatabaseOptions> = {}) => {
    if (!schemas.includes(schema)) schemas.push(schema);
    const database = await openDatabase({ url: TEST_POSTGRES_URL, schema, ...extra });
    opened.push(database);
    return database;
  };
  const unique = () => `test_${Math.random().toString(36).slice(2, 12)}`;

  afterEach(async () => {
    await Promise.all(opened.splice(0).map((db) => db.close()));
  });

  afterAll(async () => {
    const client = new pg.Client({ connectionString: TEST_POSTGRES_URL });
    await client.connect();
    for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await client.end();
  });

  it("puts the tables and the migration bookkeeping in its schema", async () => {
    const schema = unique();
    const database = await open(schema);
    await migrateToLatest(database.db);
    const { rows } = await sql<{ name: string }>`
      select table_name as name from information_schema.tables where table_schema = ${schema} order by 1
    `.execute(database.db);
    expect(rows.map((r) => r.name)).toEqual([
      "agents",
      "api_tokens",
      "audit_log",
      "bundles",
      "controller_lease",
      "distributors",
      "fleet_states",
      "fleets",
      "health_samples",
      "kysely_migration",
      "kysely_migration_lock",
      "rollout_events",
      "rollouts",
      "signing_keys",
    ]);
  });

  it("delivers a notification to another connection on the same schema, not to another schema", async () => {
    const schema = unique();
    const sender = await open(schema);
    const sameSchema = next(await open(schema), "ping");
    const otherSchema = next(await open(unique()), "ping", 300);
    // Let both LISTENs reach the server before sending.
    await new Promise((resolve) => setTimeout(resolve, 100));
    await sender.notify("ping", "hello");
    expect(await sameSchema.payload).toBe("hello");
    await expect(otherSchema.payload).rejects.toThrow("nothing on ping");
  });

  it("listens again after its LISTEN connection is killed", async () => {
    const schema = unique();
    const listener = await open(schema, { reconnectDelayMs: 50 });
    const sender = await open(schema);
    const heard: string[] = [];
    await listener.listen("ping", (p) => heard.push(p));

    const killed = await sql<{ killed: boolean }>`
      select pg_terminate_backend(pid) as killed from pg_stat_activity
      where query = ${`LISTEN "${schema}__ping"`}
    `.execute(sender.db);
    expect(killed.rows).toEqual([{ killed: true }]);

    // Notifications sent while it is down are lost by design; keep sending until one lands.
    let sent = 0;
    await expect
      .poll(
        async () => {
          await sender.notify("ping", `after-${++sent}`);
          return heard.length;
        },
        { timeout: 5000, interval: 100 },
      )
      .toBeGreaterThan(0);
    expect(heard[0]).toMatch(/^after-\d+$/);
  });

  it("tells the subscriber when it listens again after a drop, for what was sent meanwhile", async () => {
    const schema = unique();
    const listener = await open(schema, { reconnectDelayMs: 50 });
    const sender = await open(schema);
    let resumed = 0;
    await listener.listen(
      "ping",
      () => undefined,
      () => resumed++,
    );
    expect(resumed).toBe(0);

    const killed = await sql<{ killed: boolean }>`
      select pg_terminate_backend(pid) as killed from pg_stat_activity
      where query = ${`LISTEN "${schema}__ping"`}
    `.execute(sender.db);
    expect(killed.rows).toEqual([{ killed: true }]);
    await expect.poll(() => resumed, { timeout: 5000, interval: 50 }).toBe(1);
  });

  it("applies migrations once when two replicas start together", async () => {
    const schema = unique();
    const [a, b] = await Promise.all([open(schema), open(schema)]);
    const results = await Promise.all([migrateToLatest(a.db), migrateToLatest(b.db)]);
    expect(results.flatMap((r) => r.applied)).toEqual(Object.keys(MIGRATIONS));
  });
});
