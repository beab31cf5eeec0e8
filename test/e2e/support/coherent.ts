/**
 * The control plane as real processes: `coherent authority` on a fresh Postgres database or
 * on embedded PGlite, `coherent distributor`, one-shot `coherent` commands, and the
 * authority's API as an admin. Each start resolves once the process logged the line that
 * gives its bound addresses.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { inheritedEnv, type LoggedProcess, ROOT, spawnLogged } from "./processes.js";

export const POSTGRES_ADMIN_URL = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
/** COHERENT_TEST_NO_POSTGRES=1 (no Postgres on the machine) skips what needs one. */
export const NO_POSTGRES = process.env.COHERENT_TEST_NO_POSTGRES === "1";

/** Where an authority keeps its data: a Postgres URL, or a PGlite directory. */
export type AuthorityDatabase = { readonly url: string } | { readonly dataDir: string };

export function databaseArgs(database: AuthorityDatabase): string[] {
  return "url" in database ? ["--database-url", database.url] : ["--data-dir", database.dataDir];
}

export interface PostgresDatabase {
  readonly url: string;
  /** Drops it, closing what is still connected. */
  drop(): Promise<void>;
}

/** A new database on the test Postgres, so processes of this suite see no other suite's rows. */
export async function createPostgresDatabase(): Promise<PostgresDatabase> {
  const name = `coherent_e2e_${randomBytes(6).toString("hex")}`;
  const admin = async (statement: string) => {
    const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
    await client.connect();
    try {
      await client.query(statement);
    } finally {
      await client.end();
    }
  };
  await admin(`CREATE DATABASE ${name}`);
  return {
    url: POSTGRES_ADMIN_URL.replace(/\/[^/]*$/, `/${name}`),
    drop: () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`),
  };
}

/** A one-shot `coherent` command; resolves with its stdout, rejects with its stderr. */
export function coherent(args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ["--import", "tsx", join(ROOT, "cli/coherent.ts"), ...args],
      // A PGlite database is created on the first command: seconds on a busy machine.
      { cwd: ROOT, env: inheritedEnv(), timeout: 60_000 },
      (error, stdout, stderr) =>
        error
          ? reject(new Error(`${error.message}${error.killed ? " (killed after 60 s)" : ""}\n${stderr}`))
          : resolve(stdout),
    );
  });
}

/** An admin token made on the database directly, as an operator bootstraps the first one. */
export async function createAdminToken(database: AuthorityDatabase): Promise<string> {
  const issued = await coherent([
    ...databaseArgs(database),
    "token",
    "create",
    "--role",
    "admin",
    "--name",
    `e2e-${randomBytes(3).toString("hex")}`,
    "--output",
    "json",
  ]);
  return (JSON.parse(issued) as { token: string }).token;
}

export interface AuthorityProcess {
  readonly process: LoggedProcess;
  /** The API's base URL, http://127.0.0.1:PORT. */
  readonly url: string;
  /** host:port of its AuthorityFeed. */
  readonly feed: string;
}

export async function startAuthorityProcess(options: {
  readonly database: AuthorityDatabase;
  readonly signingKeyFile: string;
  readonly name?: string;
  /** False: no rollout controller in it (`--no-controller`); the database's default otherwise. */
  readonly controller?: boolean;
  /** Its settings file (`--config`), for what only a file sets, such as webhooks. */
  readonly settingsFile?: string;
  readonly logLevel?: string;
}): Promise<AuthorityProcess> {
  const process = spawnLogged({
    name: options.name ?? "authority",
    script: "cli/coherent.ts",
    args: [
      ...(options.settingsFile === undefined ? [] : ["--config", options.settingsFile]),
      ...databaseArgs(options.database),
      "authority",
      "--signing-key-file",
      options.signingKeyFile,
      "--listen",
      "127.0.0.1:0",
      "--feed-listen",
      "127.0.0.1:0",
      ...(options.controller === false ? ["--no-controller"] : []),
      ...(options.logLevel === undefined ? [] : ["--log-level", options.logLevel]),
    ],
  });
  try {
    // A PGlite database is created on the first start: seconds on a busy machine.
    const started = await process.waitFor((line) => line.event === "authority_started", 60_000);
    return { process, url: String(started.url), feed: String(started.feed) };
  } catch (error) {
    await process.stop("SIGKILL");
    throw error;
  }
}

/**
 * `coherent controller` on a Postgres database; resolves once it started (leading or waiting
 * for the lock: its "rollout controller leading" line says when it leads).
 */
export async function startControllerProcess(options: {
  readonly database: { readonly url: string };
  readonly signingKeyFile: string;
  /** `--tick`, e.g. "200ms". */
  readonly tick?: string;
  readonly name?: string;
}): Promise<LoggedProcess> {
  const process = spawnLogged({
    name: options.name ?? "controller",
    script: "cli/coherent.ts",
    args: [
      ...databaseArgs(options.database),
      "controller",
      "--signing-key-file",
      options.signingKeyFile,
      ...(options.tick === undefined ? [] : ["--tick", options.tick]),
    ],
  });
  try {
    await process.waitFor((line) => line.msg === "rollout controller started", 30_000);
    return process;
  } catch (error) {
    await process.stop("SIGKILL");
    throw error;
  }
}

export interface CtlRun {
  /** The exit code; -1 when it could not run or was killed. */
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** A `coherentctl` command against an authority; never rejects, the exit code says how it went. */
export function coherentctl(
  args: readonly string[],
  connection: { url: string; token: string },
): Promise<CtlRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--import", "tsx", join(ROOT, "cli/coherentctl.ts"), ...args],
      {
        cwd: ROOT,
        env: { ...inheritedEnv(), COHERENT_SERVER: connection.url, COHERENT_TOKEN: connection.token },
        timeout: 30_000,
      },
      (error, stdout, stderr) => {
        const code = error && typeof error.code === "number" ? error.code : error ? -1 : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

export interface ApiResponse<T = Record<string, unknown>> {
  readonly status: number;
  readonly body: T;
}

/** The authority's API (`/api/v1` + path) with a bearer token; JSON both ways. */
export async function api<T = Record<string, unknown>>(
  url: string,
  token: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<ApiResponse<T>> {
  const response = await fetch(`${url}/api/v1${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: response.status, body: (await response.json()) as T };
}

export interface DistributorProcess {
  readonly process: LoggedProcess;
  readonly id: string;
  /** host:port agents connect to. */
  readonly address: string;
  /** Base URL of its /healthz and /metrics. */
  readonly httpUrl: string;
}

export async function startDistributorProcess(options: {
  readonly id: string;
  readonly region: string;
  readonly authorities: readonly string[];
  readonly cacheDir: string;
  /** The authority's public key files. */
  readonly trustedKeys: readonly string[];
  /** `--health-flush`, e.g. "500ms"; the command's default (5 s) otherwise. */
  readonly healthFlush?: string;
}): Promise<DistributorProcess> {
  const process = spawnLogged({
    name: `distributor ${options.id}`,
    script: "cli/coherent.ts",
    args: [
      "distributor",
      "--id",
      options.id,
      "--region",
      options.region,
      "--authority",
      options.authorities.join(","),
      "--listen",
      "127.0.0.1:0",
      "--cache-dir",
      options.cacheDir,
      "--trusted-keys",
      options.trustedKeys.join(","),
      "--http-listen",
      "127.0.0.1:0",
      ...(options.healthFlush === undefined ? [] : ["--health-flush", options.healthFlush]),
    ],
  });
  try {
    const started = await process.waitFor((line) => line.msg === "distributor listening", 30_000);
    return {
      process,
      id: options.id,
      address: String(started.address),
      httpUrl: `http://${String(started.http)}`,
    };
  } catch (error) {
    await process.stop("SIGKILL");
    throw error;
  }
}

/** One agent as `GET /api/v1/agents` shows it. */
export interface AgentView {
  readonly id: string;
  readonly fleet: string;
  readonly region: string;
  readonly distributor: string;
  readonly running_version: number;
  readonly desired_version: number;
  readonly state: string;
  readonly nack: { version: number; errors: Array<{ path: string; code?: string; message: string }> } | null;
  readonly stale: boolean;
  readonly connected: boolean;
}

/** The authority's view of a fleet's agents, by id. */
export async function agentsOf(url: string, token: string, fleet: string): Promise<Map<string, AgentView>> {
  const { status, body } = await api<{ agents: AgentView[] }>(url, token, "GET", `/agents?fleet=${fleet}`);
  if (status !== 200) throw new Error(`GET /agents answered ${status}: ${JSON.stringify(body)}`);
  return new Map(body.agents.map((agent) => [agent.id, agent]));
}

/** The value of an unlabelled metric on a distributor's /metrics. */
export async function distributorMetric(distributor: DistributorProcess, name: string): Promise<number> {
  const response = await fetch(`${distributor.httpUrl}/metrics`, { signal: AbortSignal.timeout(5_000) });
  const text = await response.text();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  if (line === undefined) throw new Error(`no metric ${name} on ${distributor.id}`);
  return Number(line.slice(name.length + 1));
}

/** The rollout controllers' lease in `databaseUrl`: who leads, with which epoch (rollout-controller/leader.ts). */
export async function controllerLease(
  databaseUrl: string,
): Promise<{ holder: string | undefined; epoch: number }> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ holder: string; epoch: string }>(
      "SELECT holder, epoch FROM controller_lease WHERE id = 1",
    );
    return { holder: rows[0]?.holder, epoch: Number(rows[0]?.epoch) };
  } finally {
    await client.end();
  }
}

/** The lease holder name a `coherent controller` process on this machine takes. */
export function leaseHolderOf(controller: LoggedProcess): string {
  return `${hostname()}-${controller.child.pid}`;
}
