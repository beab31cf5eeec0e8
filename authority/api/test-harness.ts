/**
 * For the authority's tests: a real authority on 127.0.0.1:0 over either dialect, a bootstrap
 * admin token, its log lines, and a JSON client. Each Postgres authority gets a schema of its
 * own, dropped by `cleanup`, so suites running at once never see each other's rows.
 */
import { createPublicKey, randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { request } from "undici";
import { writeKeyPair } from "../../services/bundle/index.js";
import { createLogger } from "../../services/telemetry/logger.js";
import type { AuthoritySettings } from "../config.js";
import { DEFAULT_GOVERNANCE } from "../governance.js";
import { type AuthorityHandle, startAuthority } from "../main.js";
import { issueToken } from "../tokens.js";

export const POSTGRES_URL =
  process.env.COHERENT_TEST_NO_POSTGRES === "1"
    ? undefined
    : (process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test");

export type DialectName = "pglite" | "postgres";

/** The dialects to run a suite on: PGlite always, Postgres unless switched off. */
export const DIALECTS: ReadonlyArray<{ name: DialectName; skip: boolean }> = [
  { name: "pglite", skip: false },
  { name: "postgres", skip: POSTGRES_URL === undefined },
];

export interface TestAuthority {
  readonly handle: AuthorityHandle;
  readonly url: string;
  /** The signing key's public half (SPKI PEM), read from the key file, not from the authority. */
  readonly publicPem: string;
  /** An admin token made directly in the store, as `coherent token create` does. */
  readonly adminToken: string;
  /** Every log line the authority wrote so far. */
  logs(): string;
  call(method: string, path: string, options?: CallOptions): Promise<ApiResponse>;
  /** A new token of `role`, made through the API by the admin (throws if refused). */
  token(role: string): Promise<string>;
  close(): Promise<void>;
}

export interface CallOptions {
  readonly token?: string;
  /** Sent as JSON unless a string (sent as it is). */
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface ApiResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  /** Parsed JSON; tests match it with toMatchObject or read it through `as`. */
  readonly body: unknown;
}

/** A fresh database of the dialect: PGlite in memory, or a new schema on the test Postgres. */
export function testDatabase(dialect: DialectName): AuthoritySettings["database"] {
  if (dialect === "pglite") return { dataDir: ":memory:" };
  return { url: POSTGRES_URL as string, schema: `test_api_${randomBytes(6).toString("hex")}` };
}

export interface StartOptions {
  readonly database: AuthoritySettings["database"];
  /** A private key file shared by replicas; default: a new pair for this authority. */
  readonly keyFile?: string;
  readonly settings?: Partial<AuthoritySettings>;
  /** Bootstrap an admin token (default true; replicas share the first one's). */
  readonly bootstrap?: boolean;
}

export async function startTestAuthority(options: StartOptions): Promise<TestAuthority> {
  const dir = await mkdtemp(join(tmpdir(), "coherent-authority-"));
  const keyFile = options.keyFile ?? (await writeKeyPair(join(dir, "keys"))).privateFile;
  const lines: string[] = [];
  const logger = createLogger({
    name: "authority",
    level: "info",
    destination: { write: (line) => lines.push(line) },
  });
  const settings: AuthoritySettings = {
    database: options.database,
    dataDir: dir,
    listen: "127.0.0.1:0",
    signingKey: { file: keyFile },
    trustedKeyFiles: [],
    governance: DEFAULT_GOVERNANCE,
    bodyLimit: 1024 * 1024,
    controller: { enabled: false, tickMs: 1000, webhooks: [] },
    logLevel: "info",
    ...options.settings,
  };
  const handle = await startAuthority(settings, { logger });
  const adminToken =
    options.bootstrap === false
      ? ""
      : (await issueToken(handle.store, { name: "bootstrap", role: "admin", actor: "cli:test" })).token;
  const publicPem = createPublicKey(await readFile(keyFile, "utf8"))
    .export({ type: "spki", format: "pem" })
    .toString();
  return {
    handle,
    url: handle.url,
    publicPem,
    adminToken,
    logs: () => lines.join(""),
    call: (method, path, callOptions = {}) => call(handle.url, method, path, adminToken, callOptions),
    token: async (role) => {
      const res = await call(handle.url, "POST", "/api/v1/tokens", adminToken, {
        body: { name: `${role}-1`, role },
      });
      if (res.status !== 201) throw new Error(`token for ${role}: ${res.status} ${JSON.stringify(res.body)}`);
      return (res.body as { token: string }).token;
    },
    close: async () => {
      await handle.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function call(
  base: string,
  method: string,
  path: string,
  defaultToken: string,
  options: CallOptions,
): Promise<ApiResponse> {
  const token = options.token ?? defaultToken;
  const headers: Record<string, string> = {
    ...(token === "" ? {} : { authorization: `Bearer ${token}` }),
    ...(options.body === undefined ? {} : { "content-type": "application/json" }),
    ...options.headers,
  };
  const body =
    options.body === undefined || typeof options.body === "string"
      ? options.body
      : JSON.stringify(options.body);
  const response = await request(`${base}${path}`, {
    method,
    headers,
    ...(body === undefined ? {} : { body }),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await response.body.text();
  return {
    status: response.statusCode,
    headers: response.headers,
    body: text === "" ? undefined : JSON.parse(text),
  };
}

/** Drops a test schema of the test Postgres. */
export async function dropSchema(database: AuthoritySettings["database"]): Promise<void> {
  if (database.url === undefined || database.schema === undefined) return;
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(database.schema)} CASCADE`);
  } finally {
    await client.end();
  }
}

/** A valid config with `routes` routes, each with a pool and a timeout. */
export function sampleConfig(routes = 1, timeout = "5s"): Record<string, unknown> {
  return {
    version: "v1",
    pools: [{ id: "api", endpoints: [{ address: "10.0.0.1:8000" }] }],
    routes: Array.from({ length: routes }, (_, i) => ({
      id: `route-${i}`,
      path_prefix: `/r${i}`,
      pool: "api",
      policy: { timeout },
    })),
  };
}
