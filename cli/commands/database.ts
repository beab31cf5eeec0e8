/**
 * How `coherent` commands reach the authority's database directly (for bootstrap and key
 * management, when there may be no authority or token yet): the same settings the authority
 * resolves — flags, COHERENT_* variables, its config file — and its migrations applied first,
 * so a command works on a fresh database just as the authority would.
 */
import { userInfo } from "node:os";
import {
  AuthorityConfigError,
  type AuthorityFlags,
  type AuthoritySettings,
  resolveAuthoritySettings,
} from "../../authority/config.js";
import {
  AuthorityStore,
  type Database,
  migrateToLatest,
  openDatabase,
  StoreError,
} from "../../authority/store/index.js";
import { KeyError } from "../../services/bundle/index.js";
import { ExitCode } from "../exit-codes.js";
import { CliError, runAction } from "./run.js";

/** The program-wide options of `coherent`, as commander collected them. */
export interface DatabaseFlags {
  readonly config?: string;
  readonly databaseUrl?: string;
  readonly dataDir?: string;
}

/**
 * runAction for `coherent`: the authority's own errors about settings, keys and the store are
 * written for the operator, so they end the command with their message instead of a stack.
 */
export function coherentAction<Args extends unknown[]>(
  exit: (code: ExitCode) => void,
  work: (...args: Args) => Promise<ExitCode>,
): (...args: Args) => Promise<void> {
  return runAction("coherent", exit, async (...args: Args) => {
    try {
      return await work(...args);
    } catch (err) {
      if (err instanceof AuthorityConfigError) throw new CliError(err.message, ExitCode.Usage);
      if (err instanceof KeyError || err instanceof StoreError) throw new CliError(err.message);
      throw err;
    }
  });
}

export function resolveSettings(flags: AuthorityFlags): Promise<AuthoritySettings> {
  return resolveAuthoritySettings(flags, process.env);
}

/** Opens the database, or says which one could not be opened (never with its password). */
export async function openSettingsDatabase(settings: AuthoritySettings): Promise<Database> {
  try {
    return await openDatabase(settings.database);
  } catch (err) {
    throw new CliError(`cannot open ${describeDatabase(settings)}: ${(err as Error).message}`);
  }
}

export function describeDatabase(settings: AuthoritySettings): string {
  const { url, dataDir } = settings.database;
  if (url === undefined) return `the embedded database in ${dataDir}`;
  try {
    const parsed = new URL(url);
    return `Postgres at ${parsed.host}${parsed.pathname}`;
  } catch {
    return "Postgres";
  }
}

/** Applies pending migrations, telling stderr which, and hands `work` a store on the migrated database. */
export async function withStore<T>(
  flags: DatabaseFlags,
  work: (store: AuthorityStore) => Promise<T>,
): Promise<T> {
  const settings = await resolveSettings(flags);
  const database = await openSettingsDatabase(settings);
  try {
    const { applied } = await migrateToLatest(database.db);
    if (applied.length > 0) process.stderr.write(`applied migrations: ${applied.join(", ")}\n`);
    return await work(new AuthorityStore(database));
  } finally {
    await database.close();
  }
}

/** How the audit log names an operator working on the database directly. */
export function localActor(): string {
  let name: string | undefined;
  try {
    name = userInfo().username;
  } catch {
    // A container user without a passwd entry has no name to read.
    name = process.env.USER;
  }
  return `cli:${name || "unknown"}`;
}
