/**
 * The authority process: open the database and migrate it, load the signing key and register
 * its public half, serve the API, and hear of bundles other replicas create. Start once,
 * close idempotently; a failed start releases what it opened.
 */
import { createPublicKey } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { sql } from "kysely";
import { type ControllerHandle, startController } from "../rollout-controller/main.js";
import {
  Keyring,
  loadSigningKey,
  publicJwkOf,
  type SigningKey,
  writeKeyPair,
} from "../services/bundle/index.js";
import { createLogger, type Logger } from "../services/telemetry/logger.js";
import { createApiServer } from "./api/server.js";
import { BundleService } from "./bundle-service.js";
import { AuthorityConfigError, type AuthoritySettings, parseListen } from "./config.js";
import { AuthorityFeedServer } from "./feed/index.js";
import { AuthorityStore, type Database, migrateToLatest, openDatabase } from "./store/index.js";

export interface StartOptions {
  /** Default: JSON lines on stdout at the settings' level. */
  readonly logger?: Logger;
  /** Wall clock in ms, for the times the store writes (bundles, audit entries, tokens). */
  readonly now?: () => number;
}

export interface AuthorityHandle {
  /** http://host:port the API listens on. */
  readonly url: string;
  /** host:port the AuthorityFeed gRPC service listens on; undefined when settings.feedListen is. */
  readonly feedAddress: string | undefined;
  /** The kid bundles are signed under. */
  readonly kid: string;
  /** For in-process callers (the demo, tests): the same store the API uses. */
  readonly store: AuthorityStore;
  readonly database: Database;
  /** Idempotent. */
  close(): Promise<void>;
}

/** How long in-flight API requests get to finish at close before their connections are cut. */
const API_CLOSE_GRACE_MS = 5_000;

/**
 * Closes the API: no new requests, in-flight ones finish, then any connection still open
 * (a client's kept-alive socket the server cannot tell is idle) is cut, so a stop never hangs.
 */
async function closeApi(app: FastifyInstance): Promise<void> {
  const force = setTimeout(() => app.server.closeAllConnections(), API_CLOSE_GRACE_MS);
  try {
    await app.close();
  } finally {
    clearTimeout(force);
  }
}

/** The audit log's name for the authority acting on its own (at start). */
const SYSTEM_ACTOR = "system:authority";

export async function startAuthority(
  settings: AuthoritySettings,
  options: StartOptions = {},
): Promise<AuthorityHandle> {
  const logger = options.logger ?? createLogger({ name: "authority", level: settings.logLevel });
  const database = await openDatabase(settings.database);
  let app: FastifyInstance | undefined;
  let feed: AuthorityFeedServer | undefined;
  let unsubscribe: (() => Promise<void>) | undefined;
  let controller: ControllerHandle | undefined;
  const release = async () => {
    await controller?.close();
    await feed?.close();
    if (app) await closeApi(app);
    await unsubscribe?.();
    await database.close();
  };
  try {
    const { applied } = await migrateToLatest(database.db);
    if (applied.length > 0)
      logger.info({ event: "migrations_applied", migrations: applied }, "database migrated");
    const store = new AuthorityStore(database, {
      ...(options.now ? { now: options.now } : {}),
      ...(settings.agentStaleAfterMs === undefined ? {} : { agentStaleAfterMs: settings.agentStaleAfterMs }),
    });
    const key = await signingKey(settings, database.dialect);
    await registerKeys(store, key, settings.trustedKeyFiles, logger);
    const bundles = new BundleService({ store, signingKey: key, governance: settings.governance });
    app = await createApiServer({
      store,
      bundles,
      logger,
      bodyLimit: settings.bodyLimit,
      probes: {
        ping: async () => {
          await sql`select 1`.execute(database.db);
        },
        feedSessions: () => feed?.sessionCount ?? 0,
      },
    });
    unsubscribe = await store.onBundleCreated((event) =>
      logger.info({ event: "bundle_created", fleet: event.fleet, version: event.version }, "bundle created"),
    );
    const { host, port } = parseListen(settings.listen);
    await app.listen({ host, port });
    const url = listeningUrl(app, host);
    let feedAddress: string | undefined;
    if (settings.feedListen !== undefined) {
      feed = new AuthorityFeedServer({
        store,
        logger,
        ...(options.now ? { now: options.now } : {}),
        ...(settings.feedTls ? { tls: settings.feedTls } : {}),
      });
      const bound = parseListen(settings.feedListen);
      const shown = bound.host.includes(":") ? `[${bound.host}]` : bound.host;
      feedAddress = `${shown}:${await feed.listen(`${shown}:${bound.port}`)}`;
    }
    if (settings.controller.enabled) {
      controller = startController({
        store,
        bundles,
        dialect: database.dialect,
        settings,
        logger,
        now: options.now,
      });
    }
    logger.info(
      {
        event: "authority_started",
        url,
        feed: feedAddress,
        dialect: database.dialect,
        kid: key.kid,
        controller: settings.controller.enabled,
      },
      "authority listening",
    );
    let closing: Promise<void> | undefined;
    return {
      url,
      feedAddress,
      kid: key.kid,
      store,
      database,
      close: () => {
        closing ??= release();
        return closing;
      },
    };
  } catch (error) {
    await release().catch(() => undefined);
    throw error;
  }
}

/**
 * `coherent controller`: the rollout controller alone, with the authority's settings, over the
 * shared Postgres its replicas use; replicas of it elect one leader. The embedded database
 * belongs to the one process that opened it, where `coherent authority` runs the controller.
 */
export async function startControllerProcess(
  settings: AuthoritySettings,
  options: StartOptions = {},
): Promise<{ close(): Promise<void> }> {
  if (settings.database.url === undefined) {
    throw new AuthorityConfigError(
      "the controller runs apart only over a shared Postgres (COHERENT_DATABASE_URL); on the embedded database `coherent authority` runs it",
    );
  }
  const logger = options.logger ?? createLogger({ name: "controller", level: settings.logLevel });
  const database = await openDatabase(settings.database);
  try {
    await migrateToLatest(database.db);
    const store = new AuthorityStore(database, options.now ? { now: options.now } : {});
    const key = await signingKey(settings, database.dialect);
    await registerKeys(store, key, settings.trustedKeyFiles, logger);
    const bundles = new BundleService({ store, signingKey: key, governance: settings.governance });
    const handle = startController({
      store,
      bundles,
      dialect: database.dialect,
      settings,
      logger,
      now: options.now,
    });
    let closing: Promise<void> | undefined;
    return {
      close: () => {
        closing ??= handle.close().finally(() => database.close());
        return closing;
      },
    };
  } catch (error) {
    await database.close().catch(() => undefined);
    throw error;
  }
}

/**
 * The configured key; without one, the dev default: a pair under `dataDir`/keys, made on first
 * start. Replicas on a shared Postgres must all sign with one key, which a per-machine default
 * cannot promise, so there a key is required.
 */
async function signingKey(settings: AuthoritySettings, dialect: Database["dialect"]): Promise<SigningKey> {
  if (settings.signingKey) {
    return loadSigningKey({ ...settings.signingKey, label: "COHERENT_SIGNING_KEY" });
  }
  if (dialect === "postgres") {
    throw new AuthorityConfigError(
      "a shared database needs a signing key every replica uses: set COHERENT_SIGNING_KEY_FILE (or COHERENT_SIGNING_KEY) — `coherent keys generate` makes one",
    );
  }
  const dir = join(settings.dataDir, "keys");
  const existing = await readdir(dir).catch(() => [] as string[]);
  const file = existing.filter((name) => name.endsWith(".key.pem")).sort()[0];
  if (file) return loadSigningKey({ file: join(dir, file) });
  const written = await writeKeyPair(dir);
  return loadSigningKey({ file: written.privateFile });
}

/**
 * Lists the configured public keys as trusted and makes a new signing key the active one (the
 * previous active one stays trusted, so bundles it signed still verify). Each change is
 * audited; a key an operator retired is never used again.
 */
async function registerKeys(
  store: AuthorityStore,
  key: SigningKey,
  trustedKeyFiles: readonly string[],
  logger: Logger,
): Promise<void> {
  const known = new Map((await store.listSigningKeys()).map((row) => [row.kid, row]));
  const status = known.get(key.kid)?.status;
  if (status === "retired") {
    throw new AuthorityConfigError(`signing key ${key.kid} is retired: configure the active key instead`);
  }
  for (const file of trustedKeyFiles) {
    const pem = await readFile(file, "utf8");
    // Refuses a private key, or one that is not Ed25519, with a message that says so.
    await Keyring.from([{ pem }]);
    const jwk = await publicJwkOf(createPublicKey(pem));
    if (known.has(jwk.kid)) continue;
    await store.upsertSigningKey({ kid: jwk.kid, publicJwk: jwk, status: "trusted" });
    await store.appendAudit({
      actor: SYSTEM_ACTOR,
      action: "key.trust",
      target: `key:${jwk.kid}`,
      details: { file },
    });
  }
  if (status === "active") return;
  const active = [...known.values()].find((row) => row.status === "active");
  if (status === "trusted" && active) {
    // A replica started with the key a rotation replaced: its bundles still verify, and
    // re-activating the old key would undo the rotation.
    logger.warn(
      { event: "signing_key_not_active", kid: key.kid, active: active.kid },
      "signing with a trusted key that is not the active one: configure the active key",
    );
    return;
  }
  // The store makes the key active before it trusted, so bundles it signed still verify.
  await store.upsertSigningKey({ kid: key.kid, publicJwk: key.publicJwk, status: "active" });
  await store.appendAudit({ actor: SYSTEM_ACTOR, action: "key.activate", target: `key:${key.kid}` });
  logger.info({ event: "signing_key_activated", kid: key.kid }, "signing key activated");
}

function listeningUrl(app: FastifyInstance, host: string): string {
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  const shown = host === "0.0.0.0" ? "127.0.0.1" : host.includes(":") ? `[${host}]` : host;
  return `http://${shown}:${port}`;
}
