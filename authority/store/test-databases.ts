/**
 * The databases a contract suite runs on: PGlite in memory, and Postgres at TEST_DATABASE_URL
 * (the local default below otherwise) in a schema of its own, dropped afterwards, so suites and
 * test files running at once never see each other. COHERENT_TEST_NO_POSTGRES=1 skips Postgres.
 *
 * Making one takes seconds on PGlite (initdb runs each time), so a suite makes one in beforeAll
 * and calls reset() before each test.
 */
import { randomBytes } from "node:crypto";
import { sql } from "kysely";
import pg from "pg";
import {
  type Database,
  type DatabaseOptions,
  type Dialect,
  migrateToLatest,
  openDatabase,
} from "./database.js";

export const TEST_POSTGRES_URL = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";

export interface TestDatabase {
  /** Migrated and empty. */
  readonly database: Database;
  /** The migrations that made it. */
  readonly migrated: readonly string[];
  /** What opens it again (Postgres only: another pool, as another process would). */
  readonly options: DatabaseOptions;
  /** Another Database on the same data, closed by dispose(). Postgres only. */
  openAnother(extra?: Partial<DatabaseOptions>): Promise<Database>;
  /** Empties every table (the migrations stay applied). */
  reset(): Promise<void>;
  /** Closes every Database opened here and drops the schema. */
  dispose(): Promise<void>;
}

export interface TestTarget {
  readonly dialect: Dialect;
  readonly skip: boolean;
  create(): Promise<TestDatabase>;
}

export const TEST_TARGETS: readonly TestTarget[] = [
  { dialect: "pglite", skip: false, create: () => createTestDatabase({ dataDir: ":memory:" }, undefined) },
  {
    dialect: "postgres",
    skip: process.env.COHERENT_TEST_NO_POSTGRES === "1",
    create: () => {
      const schema = `test_${randomBytes(8).toString("hex")}`;
      return createTestDatabase({ url: TEST_POSTGRES_URL, schema }, schema);
    },
  },
];

async function createTestDatabase(
  options: DatabaseOptions,
  schema: string | undefined,
): Promise<TestDatabase> {
  const database = await openDatabase(options);
  const opened: Database[] = [database];
  const { applied } = await migrateToLatest(database.db).catch(async (error: unknown) => {
    await database.close();
    throw error;
  });
  return {
    database,
    migrated: applied,
    options,
    async openAnother(extra = {}) {
      if (options.url === undefined) throw new Error("PGlite in memory cannot be opened twice");
      const another = await openDatabase({ ...options, ...extra });
      opened.push(another);
      return another;
    },
    async reset() {
      const { rows } = await sql<{ name: string }>`
        select table_name as name from information_schema.tables
        where table_schema = current_schema() and table_type = 'BASE TABLE' and table_name not like 'kysely_%'
      `.execute(database.db);
      await sql`truncate table ${sql.join(rows.map((row) => sql.id(row.name)))}`.execute(database.db);
    },
    async dispose() {
      await Promise.all(opened.map((db) => db.close()));
      if (schema === undefined || options.url === undefined) return;
      const client = new pg.Client({ connectionString: options.url });
      await client.connect();
      try {
        await client.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
      } finally {
        await client.end();
      }
    },
  };
}
