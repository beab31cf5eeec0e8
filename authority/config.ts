/**
 * The authority's process settings, from (highest first) command-line flags, COHERENT_*
 * environment variables, the authority's config file, and defaults. Without a database URL
 * it runs on embedded PGlite under the data directory (.coherent/ by default), with a dev
 * signing key made there on first start.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import type { WebhookSettings } from "../rollout-controller/notifier.js";
import { duration, listenAddress, size } from "../services/config/schema/primitives.js";
import { readSettingsFile, SettingsFileError } from "../services/config/settings-file.js";
import type { ServerTlsFiles } from "../services/net/tls.js";
import { DEFAULT_GOVERNANCE, type GovernanceSettings } from "./governance.js";

export interface AuthorityFlags {
  /** The authority's config file (YAML or JSON). */
  readonly config?: string;
  readonly listen?: string;
  readonly feedListen?: string;
  readonly feedTlsCert?: string;
  readonly feedTlsKey?: string;
  readonly feedTlsClientCa?: string;
  readonly databaseUrl?: string;
  readonly dataDir?: string;
  readonly signingKeyFile?: string;
  readonly logLevel?: string;
  /** Run the rollout controller in this process (undefined: the default for the database). */
  readonly controller?: boolean;
  /** How often the controller looks at each rollout, as a duration ("1s"). */
  readonly controllerTick?: string;
}

/** Where a private key comes from: a PKCS#8 PEM file, or the PEM text itself (from the env). */
export interface KeySource {
  readonly file?: string;
  readonly pem?: string;
}

export interface AuthoritySettings {
  /** postgres://… for a shared Postgres; otherwise PGlite in `dataDir`/pglite. */
  readonly database: { readonly url?: string; readonly dataDir?: string; readonly schema?: string };
  /** Holds the embedded database and the dev signing key. */
  readonly dataDir: string;
  /** host:port; port 0 picks a free port. */
  readonly listen: string;
  /**
   * host:port of the AuthorityFeed gRPC service distributors subscribe to (TLS with `feedTls`);
   * port 0 picks a free port. Undefined: not served, for in-process callers that need no feed.
   */
  readonly feedListen?: string;
  /** The feed over TLS, with client certificates required when a client CA is given; plaintext when undefined. */
  readonly feedTls?: ServerTlsFiles;
  /** Undefined: the dev default, a key pair under `dataDir`/keys (embedded database only). */
  readonly signingKey: KeySource | undefined;
  /** Public key PEM files trusted besides the signing key's, e.g. the previous key after a rotation. */
  readonly trustedKeyFiles: readonly string[];
  readonly governance: GovernanceSettings;
  /** The largest request body the API reads, in bytes. */
  readonly bodyLimit: number;
  /**
   * Milliseconds after which the API shows an agent as stale when neither it nor its distributor
   * was heard of (a distributor's feed heartbeats every few seconds); undefined:
   * DEFAULT_AGENT_STALE_AFTER_MS.
   */
  readonly agentStaleAfterMs?: number;
  /** The rollout controller in this process; see ControllerSettings. */
  readonly controller: ControllerSettings;
  readonly logLevel: string;
}

export interface ControllerSettings {
  /**
   * Whether this process runs a rollout controller. By default it does on the embedded
   * database (no other process can reach it) and does not on Postgres, where `coherent
   * controller` runs apart (two replicas elect a leader).
   */
  readonly enabled: boolean;
  readonly tickMs: number;
  /** Hook secrets read from their files here, so they never pass through the database. */
  readonly webhooks: readonly WebhookSettings[];
}

export const DEFAULT_LISTEN = "127.0.0.1:7400";
export const DEFAULT_FEED_LISTEN = "127.0.0.1:7401";
export const DEFAULT_DATA_DIR = ".coherent";
export const DEFAULT_BODY_LIMIT = 8 * 1024 * 1024;

export class AuthorityConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AuthorityConfigError";
  }
}

const GovernanceFileSchema = z.strictObject({
  route_timeout_required: z
    .boolean()
    .optional()
    .describe(
      "Refuse configs with a route that states no timeout, inline or through policy_ref (default true)",
    ),
  route_pool_required: z
    .boolean()
    .optional()
    .describe(
      "Refuse configs with a route that sends nowhere: no pool and no traffic plan's stable_pool (default true)",
    ),
  max_routes: z
    .union([z.int().min(1), z.literal(false)])
    .optional()
    .describe("The most routes a config may have; false switches the rule off (default 5000)"),
  require_tls_kept: z
    .boolean()
    .optional()
    .describe(
      "Refuse a config in which a route that required TLS in the fleet's previous config no longer does (default true)",
    ),
});

export const AuthorityFileSchema = z.strictObject({
  listen: listenAddress()
    .optional()
    .describe("The operator API's address; also --listen, COHERENT_LISTEN (default 127.0.0.1:7400)"),
  feed_listen: listenAddress()
    .optional()
    .describe(
      "The AuthorityFeed gRPC address distributors subscribe to; also --feed-listen, COHERENT_FEED_LISTEN (default 127.0.0.1:7401)",
    ),
  feed_tls: z
    .strictObject({
      cert_file: z.string().min(1).describe("The feed's certificate chain (PEM)"),
      key_file: z.string().min(1).describe("Private key (PEM) of cert_file"),
      client_ca_file: z
        .string()
        .min(1)
        .optional()
        .describe(
          "CA certificates (PEM) distributors' client certificates must chain to; given, a client certificate is required",
        ),
    })
    .optional()
    .describe("Serve the feed over TLS; also --feed-tls-*, COHERENT_FEED_TLS_* (plaintext when absent)"),
  database_url: z
    .string()
    .min(1)
    .optional()
    .describe(
      "postgres://… of a shared Postgres; also --database-url, COHERENT_DATABASE_URL, DATABASE_URL (default: embedded PGlite under data_dir)",
    ),
  database_schema: z
    .string()
    .min(1)
    .optional()
    .describe(
      "Postgres schema the authority's tables live in, made if missing; also COHERENT_DATABASE_SCHEMA (default: the connection's search_path)",
    ),
  data_dir: z
    .string()
    .min(1)
    .optional()
    .describe(
      "Holds the embedded database and the dev signing key; also --data-dir, COHERENT_DATA_DIR (default .coherent)",
    ),
  signing_key_file: z
    .string()
    .min(1)
    .optional()
    .describe(
      "Ed25519 private key (PKCS#8 PEM) bundles are signed with; also --signing-key-file, COHERENT_SIGNING_KEY(_FILE) (default: a dev key under data_dir, embedded database only)",
    ),
  trusted_key_files: z
    .array(z.string().min(1))
    .optional()
    .describe(
      "Public key PEM files trusted besides the signing key's, e.g. the previous key after a rotation",
    ),
  governance: GovernanceFileSchema.optional().describe(
    "Rules every submitted config must pass besides validation",
  ),
  body_limit: size({ min: 1024 })
    .optional()
    .describe("Largest request body the API reads; also COHERENT_BODY_LIMIT (default 8MB)"),
  agent_stale_after: duration({ min: 1000 })
    .optional()
    .describe(
      "An agent not heard of for this long shows as stale; also COHERENT_AGENT_STALE_AFTER (default 1m)",
    ),
  controller: z
    .strictObject({
      enabled: z
        .boolean()
        .optional()
        .describe(
          "Run the rollout controller here; also --controller/--no-controller, COHERENT_CONTROLLER=on|off (default: on with the embedded database, off with Postgres)",
        ),
      tick: duration({ min: 50, max: 60_000 })
        .optional()
        .describe(
          "How often the controller looks at each rollout; also --controller-tick, COHERENT_CONTROLLER_TICK (default 1s)",
        ),
      webhooks: z
        .array(
          z.strictObject({
            fleet: z.string().min(1).describe("The fleet whose events go to this hook"),
            url: z.url({ protocol: /^https?$/ }).describe("Where events are POSTed"),
            secret_file: z
              .string()
              .min(1)
              .optional()
              .describe("A file holding the secret events are signed with"),
          }),
        )
        .optional()
        .describe("Hooks told of each fleet's rollout events"),
    })
    .optional()
    .describe("The rollout controller in this process"),
  log_level: z
    .enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"])
    .optional()
    .describe("Lowest level logged; also --log-level, COHERENT_LOG_LEVEL (default info)"),
});

type FileSettings = z.output<typeof AuthorityFileSchema>;

export async function resolveAuthoritySettings(
  flags: AuthorityFlags,
  env: NodeJS.ProcessEnv,
): Promise<AuthoritySettings> {
  const configFile = flags.config ?? env.COHERENT_AUTHORITY_CONFIG;
  const file = configFile ? await readAuthorityFile(configFile) : {};
  const dataDir = flags.dataDir ?? env.COHERENT_DATA_DIR ?? file.data_dir ?? DEFAULT_DATA_DIR;
  const url = flags.databaseUrl ?? env.COHERENT_DATABASE_URL ?? env.DATABASE_URL ?? file.database_url;
  const schema = env.COHERENT_DATABASE_SCHEMA ?? file.database_schema;
  const listen = flags.listen ?? env.COHERENT_LISTEN ?? file.listen ?? DEFAULT_LISTEN;
  checkValue("listen address", listenAddress(), listen);
  const feedListen = flags.feedListen ?? env.COHERENT_FEED_LISTEN ?? file.feed_listen ?? DEFAULT_FEED_LISTEN;
  checkValue("feed listen address", listenAddress(), feedListen);
  const bodyLimit = env.COHERENT_BODY_LIMIT
    ? checkValue("COHERENT_BODY_LIMIT", size({ min: 1024 }), env.COHERENT_BODY_LIMIT)
    : (file.body_limit ?? DEFAULT_BODY_LIMIT);
  const staleAfter = env.COHERENT_AGENT_STALE_AFTER
    ? checkValue("COHERENT_AGENT_STALE_AFTER", duration({ min: 1000 }), env.COHERENT_AGENT_STALE_AFTER)
    : file.agent_stale_after;
  return {
    database: url
      ? { url, ...(schema ? { schema } : {}) }
      : { dataDir: dataDir === ":memory:" ? dataDir : join(dataDir, "pglite") },
    dataDir,
    listen,
    feedListen,
    ...feedTlsOf(flags, env, file),
    signingKey: signingKeySource(flags, env, file),
    trustedKeyFiles: file.trusted_key_files ?? [],
    governance: { ...DEFAULT_GOVERNANCE, ...file.governance },
    bodyLimit,
    ...(staleAfter === undefined ? {} : { agentStaleAfterMs: staleAfter }),
    controller: await controllerOf(flags, env, file, url === undefined),
    logLevel: flags.logLevel ?? env.COHERENT_LOG_LEVEL ?? file.log_level ?? "info",
  };
}

export { parseListen } from "../services/net/listen.js";

export const DEFAULT_CONTROLLER_TICK_MS = 1000;

/** Flags over COHERENT_CONTROLLER over the file; the default follows the database. */
async function controllerOf(
  flags: AuthorityFlags,
  env: NodeJS.ProcessEnv,
  file: FileSettings,
  embedded: boolean,
): Promise<ControllerSettings> {
  const fromEnv = env.COHERENT_CONTROLLER;
  if (fromEnv !== undefined && fromEnv !== "on" && fromEnv !== "off")
    throw new AuthorityConfigError(`invalid COHERENT_CONTROLLER "${fromEnv}": use on or off`);
  const enabled =
    flags.controller ??
    (fromEnv === undefined ? undefined : fromEnv === "on") ??
    file.controller?.enabled ??
    embedded;
  const tick = flags.controllerTick ?? env.COHERENT_CONTROLLER_TICK;
  const tickMs = tick
    ? checkValue("controller tick", duration({ min: 50, max: 60_000 }), tick)
    : (file.controller?.tick ?? DEFAULT_CONTROLLER_TICK_MS);
  const webhooks = await Promise.all(
    (file.controller?.webhooks ?? []).map(async (hook) => {
      if (hook.secret_file === undefined) return { fleet: hook.fleet, url: hook.url };
      const secret = await readFile(hook.secret_file, "utf8").catch((error: Error) => {
        throw new AuthorityConfigError(
          `cannot read the webhook secret ${hook.secret_file}: ${error.message}`,
        );
      });
      return { fleet: hook.fleet, url: hook.url, secret: secret.trim() };
    }),
  );
  return { enabled, tickMs, webhooks };
}

/** Flags over COHERENT_FEED_TLS_* over the file's feed_tls, file by file. */
function feedTlsOf(
  flags: AuthorityFlags,
  env: NodeJS.ProcessEnv,
  file: FileSettings,
): { feedTls?: ServerTlsFiles } {
  const certFile = flags.feedTlsCert ?? env.COHERENT_FEED_TLS_CERT ?? file.feed_tls?.cert_file;
  const keyFile = flags.feedTlsKey ?? env.COHERENT_FEED_TLS_KEY ?? file.feed_tls?.key_file;
  const clientCaFile =
    flags.feedTlsClientCa ?? env.COHERENT_FEED_TLS_CLIENT_CA ?? file.feed_tls?.client_ca_file;
  if (certFile === undefined && keyFile === undefined) {
    if (clientCaFile !== undefined) {
      throw new AuthorityConfigError(
        "a feed client CA needs the feed's own certificate and key (feed TLS cert and key)",
      );
    }
    return {};
  }
  if (certFile === undefined || keyFile === undefined) {
    throw new AuthorityConfigError("feed TLS needs both a certificate and its key");
  }
  return { feedTls: { certFile, keyFile, ...(clientCaFile === undefined ? {} : { clientCaFile }) } };
}

function signingKeySource(
  flags: AuthorityFlags,
  env: NodeJS.ProcessEnv,
  file: FileSettings,
): KeySource | undefined {
  if (flags.signingKeyFile) return { file: flags.signingKeyFile };
  if (env.COHERENT_SIGNING_KEY && env.COHERENT_SIGNING_KEY_FILE) {
    throw new AuthorityConfigError(
      "set COHERENT_SIGNING_KEY (the PEM) or COHERENT_SIGNING_KEY_FILE, not both",
    );
  }
  if (env.COHERENT_SIGNING_KEY) return { pem: env.COHERENT_SIGNING_KEY };
  if (env.COHERENT_SIGNING_KEY_FILE) return { file: env.COHERENT_SIGNING_KEY_FILE };
  return file.signing_key_file ? { file: file.signing_key_file } : undefined;
}

async function readAuthorityFile(path: string): Promise<FileSettings> {
  try {
    return await readSettingsFile(path, AuthorityFileSchema, "authority config");
  } catch (error) {
    throw error instanceof SettingsFileError ? new AuthorityConfigError(error.message) : error;
  }
}

function checkValue<T>(label: string, schema: z.ZodType<T>, value: string): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    throw new AuthorityConfigError(
      `invalid ${label} "${value}": ${parsed.error.issues[0]?.message ?? "invalid"}`,
    );
  }
  return parsed.data;
}
