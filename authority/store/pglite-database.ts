/**
 * The embedded backend: PGlite in this process, in a data directory or in memory. PGlite has a
 * single connection, which kysely-pglite-dialect hands to one caller at a time; a transaction
 * holds it to the end, so code inside a transaction must use that transaction, not the pool.
 */
import { mkdir } from "node:fs/promises";
import { PGlite } from "@electric-sql/pglite";
import { Kysely } from "kysely";
import { PGliteDialect } from "kysely-pglite-dialect";
import type { DatabaseBackend } from "./database.js";
import type { Tables } from "./tables.js";

export const IN_MEMORY = ":memory:";

export async function openPglite(options: { dataDir: string; schema?: string }): Promise<DatabaseBackend> {
  if (options.dataDir !== IN_MEMORY) await mkdir(options.dataDir, { recursive: true });
  const pglite = await PGlite.create(options.dataDir === IN_MEMORY ? undefined : options.dataDir);
  if (options.schema) {
    // One connection, so a session setting holds for every query.
    await pglite.exec(`CREATE SCHEMA IF NOT EXISTS ${options.schema}; SET search_path TO ${options.schema}`);
  }
  const db = new Kysely<Tables>({ dialect: new PGliteDialect(pglite) });
  // LISTEN goes through PGlite directly; taking the kysely connection around it keeps it from
  // landing inside someone's open transaction, whose rollback would undo it.
  const exclusive = <T>(fn: () => Promise<T>): Promise<T> => db.connection().execute(fn);
  return {
    db,
    dialect: "pglite",
    async listen(channel, fn) {
      const unlisten = await exclusive(() => pglite.listen(channel, fn));
      return () => exclusive(() => unlisten());
    },
    close: () => db.destroy(),
  };
}
