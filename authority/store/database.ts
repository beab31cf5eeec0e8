/**
 * One Database over two dialects: Postgres through pg (a `postgres://` url) and PGlite embedded
 * (a data directory, or ":memory:" in tests). Everything above it is the same kysely code.
 *
 * Channels for LISTEN/NOTIFY are database-wide in Postgres while tables live in a schema, so
 * with `schema` set a channel is scoped by it (`<schema>__<channel>`): stores in two schemas of
 * one database never hear each other, two stores in the same schema always do.
 */
import { type Kysely, Migrator, sql } from "kysely";
import { MIGRATIONS } from "../../migrations/index.js";
import { StoreError } from "./errors.js";
import { IN_MEMORY, openPglite } from "./pglite-database.js";
import { openPostgres } from "./postgres-database.js";
import type { Tables } from "./tables.js";

export interface DatabaseOptions {
  /** postgres://… selects Postgres; otherwise PGlite in `dataDir`. */
  readonly url?: string;
  /** PGlite's own data directory (created if missing), or ":memory:". */
  readonly dataDir?: string;
  /** Tables live in this schema (first on the search_path); made if missing. For test isolation. */
  readonly schema?: string;
  /** Postgres pool size (default 10). */
  readonly poolSize?: number;
  /** How long the Postgres LISTEN connection waits before reopening after a drop (default 1 s). */
  readonly reconnectDelayMs?: number;
  /** Errors of idle Postgres connections, which the pool has already replaced. */
  readonly onError?: (error: Error) => void;
}

export type Dialect = "postgres" | "pglite";

export interface Database {
  readonly db: Kysely<Tables>;
  readonly dialect: Dialect;
  /**
   * Resolves once subscribed; the result unsubscribes. Payloads arrive after the sender commits.
   * Postgres loses those sent while the LISTEN connection is down: `onResumed` is called once
   * it listens again, for the subscriber to read what it may have missed.
   */
  listen(
    channel: string,
    fn: (payload: string) => void,
    onResumed?: () => void,
  ): Promise<() => Promise<void>>;
  /** Sent when `executor`'s transaction commits (at once without one); dropped on rollback. */
  notify(channel: string, payload: string, executor?: Kysely<Tables>): Promise<void>;
  /** Idempotent. */
  close(): Promise<void>;
}

/** What each dialect provides; database.ts adds channel scoping, notify and lifecycle. */
export interface DatabaseBackend {
  readonly db: Kysely<Tables>;
  readonly dialect: Dialect;
  listen(
    channel: string,
    fn: (payload: string) => void,
    onResumed?: () => void,
  ): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

// Unquoted Postgres identifiers that need no escaping anywhere; short enough that a scoped
// channel stays under Postgres's 63-byte name limit.
const IDENTIFIER = /^[a-z_][a-z0-9_]{0,29}$/;

export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  const { schema } = options;
  if (schema !== undefined && !IDENTIFIER.test(schema)) {
    throw new StoreError(
      "invalid_options",
      `schema "${schema}" is not a plain identifier (lower case letters, digits, _; at most 30)`,
    );
  }
  let backend: DatabaseBackend;
  if (options.url !== undefined) {
    if (!/^postgres(ql)?:\/\//.test(options.url)) {
      throw new StoreError(
        "invalid_options",
        "the database url must start with postgres:// or postgresql://",
      );
    }
    backend = await openPostgres({ ...options, url: options.url });
  } else if (options.dataDir !== undefined) {
    backend = await openPglite({ dataDir: options.dataDir, ...(schema ? { schema } : {}) });
  } else {
    throw new StoreError("invalid_options", "set a database url (postgres://…) or a data directory");
  }
  return new ScopedDatabase(backend, schema);
}

class ScopedDatabase implements Database {
  readonly db: Kysely<Tables>;
  readonly dialect: Dialect;
  readonly #backend: DatabaseBackend;
  readonly #prefix: string;
  #closing: Promise<void> | undefined;

  constructor(backend: DatabaseBackend, schema: string | undefined) {
    this.#backend = backend;
    this.db = backend.db;
    this.dialect = backend.dialect;
    this.#prefix = schema ? `${schema}__` : "";
  }

  async listen(
    channel: string,
    fn: (payload: string) => void,
    onResumed?: () => void,
  ): Promise<() => Promise<void>> {
    const unlisten = await this.#backend.listen(this.#scoped(channel), fn, onResumed);
    return async () => {
      if (!this.#closing) await unlisten();
    };
  }

  async notify(channel: string, payload: string, executor: Kysely<Tables> = this.db): Promise<void> {
    await sql`select pg_notify(${this.#scoped(channel)}, ${payload})`.execute(executor);
  }

  close(): Promise<void> {
    this.#closing ??= this.#backend.close();
    return this.#closing;
  }

  #scoped(channel: string): string {
    if (!IDENTIFIER.test(channel)) {
      throw new StoreError("invalid_options", `channel "${channel}" is not a plain identifier`);
    }
    return this.#prefix + channel;
  }
}

/**
 * Applies every migration not applied yet, in order, each in its own transaction. kysely's
 * Migrator takes a lock row first, so replicas starting together apply each migration once.
 * Its bookkeeping tables go in the current schema, beside the tables they describe.
 */
export async function migrateToLatest(db: Kysely<Tables>): Promise<{ applied: string[] }> {
  const { rows } = await sql<{ schema: string }>`select current_schema() as schema`.execute(db);
  const schema = rows[0]?.schema;
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => ({ ...MIGRATIONS }) },
    ...(schema ? { migrationTableSchema: schema } : {}),
  });
  const { error, results = [] } = await migrator.migrateToLatest();
  if (error !== undefined) {
    const failed = results.find((result) => result.status === "Error")?.migrationName ?? "(setup)";
    throw new StoreError("migration_failed", `migration ${failed} failed: ${String(error)}`, {
      cause: error,
    });
  }
  return { applied: results.filter((r) => r.status === "Success").map((r) => r.migrationName) };
}

export { IN_MEMORY };
