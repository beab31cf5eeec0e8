/** The pg backend: a pg.Pool for queries, a dedicated client for LISTEN (see pg-listener.ts). */
import { Kysely, PostgresDialect } from "kysely";
import pg from "pg";
import type { DatabaseBackend } from "./database.js";
import { PgListener } from "./pg-listener.js";
import type { Tables } from "./tables.js";

const UNIQUE_VIOLATION = "23505";
const DUPLICATE_SCHEMA = "42P06";

export interface PostgresBackendOptions {
  readonly url: string;
  /** Already checked to be a plain identifier. */
  readonly schema?: string;
  readonly poolSize?: number;
  readonly reconnectDelayMs?: number;
  readonly onError?: (error: Error) => void;
}

export async function openPostgres(options: PostgresBackendOptions): Promise<DatabaseBackend> {
  const client: pg.ClientConfig = {
    connectionString: options.url,
    ...(options.schema ? { options: `-c search_path=${options.schema}` } : {}),
  };
  const pool = new pg.Pool({ ...client, max: options.poolSize ?? 10 });
  // An idle pooled connection that dies emits here; without a handler that kills the process.
  // The pool has already dropped it and opens a new one on demand.
  pool.on("error", (error) => options.onError?.(error));
  if (options.schema) {
    await pool
      .query(`CREATE SCHEMA IF NOT EXISTS ${pg.escapeIdentifier(options.schema)}`)
      .catch(async (error: { code?: string }) => {
        // Two replicas creating the schema at once: IF NOT EXISTS does not stop the loser's
        // catalog insert from failing (23505); the schema exists all the same.
        if (error.code === UNIQUE_VIOLATION || error.code === DUPLICATE_SCHEMA) return;
        await pool.end();
        throw error;
      });
  }
  const listener = new PgListener({
    client,
    ...(options.reconnectDelayMs !== undefined ? { reconnectDelayMs: options.reconnectDelayMs } : {}),
  });
  const db = new Kysely<Tables>({ dialect: new PostgresDialect({ pool }) });
  return {
    db,
    dialect: "postgres",
    listen: (channel, fn, onResumed) => listener.listen(channel, fn, onResumed),
    async close() {
      await listener.close();
      await db.destroy();
    },
  };
}
