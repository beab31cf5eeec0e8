/**
 * The distributor process: load the trusted keys and the disk cache (so the region is served
 * before, or without, the authority), serve agents, then subscribe to the authority. Ready
 * (/healthz 200, grpc.health.v1 SERVING) once the cache holds a fleet or the authority said
 * SyncComplete. Start once, close idempotently: agents' streams end, the last merged health
 * goes up, the feed stream ends.
 */
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import type { ClientOptions } from "@grpc/grpc-js";
import { KeyError, KeyErrorCode, Keyring } from "../bundle/index.js";
import { boundAddress, parseListen } from "../net/listen.js";
import { type ClientTlsFiles, channelCredentials, type ServerTlsFiles } from "../net/tls.js";
import { createLogger, type Logger } from "../telemetry/logger.js";
import { AuthorityClient } from "./authority-client.js";
import { DiskCache } from "./disk-cache.js";
import { createDistributorMetrics } from "./metrics.js";
import { DistributorServer } from "./server.js";

export interface DistributorSettings {
  readonly id: string;
  readonly region: string;
  /** host:port of each authority replica's feed, tried in turn. */
  readonly authorities: readonly string[];
  /** host:port agents connect to; port 0 picks a free port. */
  readonly listen: string;
  /** host:port of /healthz and /metrics; undefined: not served. */
  readonly httpListen: string | undefined;
  readonly cacheDir: string;
  /** Public key PEM files, or directories of them (*.pem), that bundles must be signed by. */
  readonly trustedKeys: readonly string[];
  /** Agents connect over TLS (mTLS with a client CA); plaintext when undefined. */
  readonly tls?: ServerTlsFiles;
  /** The hop to the authority over TLS (mTLS with a certificate); plaintext when undefined. */
  readonly authorityTls?: ClientTlsFiles;
  /** The name the authority's certificate carries, when it is not the host dialled. */
  readonly authorityServerName?: string;
  /** How often merged health and changed statuses go up; DistributorServer's default (5 s) when undefined. */
  readonly healthFlushMs?: number;
  readonly logLevel: string;
}

export interface StartOptions {
  /** Default: JSON lines on stdout at the settings' level. */
  readonly logger?: Logger;
  /** Tuning of the agent side and the feed client, for tests. */
  readonly server?: Partial<ConstructorParameters<typeof DistributorServer>[0]>;
  readonly client?: Partial<ConstructorParameters<typeof AuthorityClient>[0]>;
}

export interface DistributorHandle {
  /** host:port agents connect to. */
  readonly address: string;
  /** host:port of /healthz and /metrics; undefined when not served. */
  readonly httpAddress: string | undefined;
  readonly server: DistributorServer;
  readonly client: AuthorityClient;
  readonly cache: DiskCache;
  /** Idempotent. */
  close(): Promise<void>;
}

export async function startDistributor(
  settings: DistributorSettings,
  options: StartOptions = {},
): Promise<DistributorHandle> {
  const logger = options.logger ?? createLogger({ name: "distributor", level: settings.logLevel });
  const keyring = await Keyring.from(await readTrustedKeys(settings.trustedKeys));
  const cache = await DiskCache.open({
    dir: settings.cacheDir,
    keyring,
    onInvalid: (file, error) =>
      logger.warn(
        { event: "cache_file_invalid", file, err: (error as Error).message },
        "cached file skipped: it no longer verifies",
      ),
  });
  const cachedFleets = cache.knownFleets().length;
  const channelOptions: Partial<ClientOptions> =
    settings.authorityServerName === undefined
      ? {}
      : {
          "grpc.ssl_target_name_override": settings.authorityServerName,
          "grpc.default_authority": settings.authorityServerName,
        };
  const metrics = createDistributorMetrics();
  let server: DistributorServer | undefined;
  const client = new AuthorityClient({
    metrics,
    addresses: settings.authorities,
    distributorId: settings.id,
    region: settings.region,
    cache,
    logger,
    credentials: await channelCredentials(settings.authorityTls),
    channelOptions,
    onSynced: () => server?.setReady(true),
    ...options.client,
  });
  server = new DistributorServer({
    source: cache,
    sink: client,
    distributorId: settings.id,
    region: settings.region,
    ready: cachedFleets > 0,
    metrics,
    ...(settings.tls ? { tls: settings.tls } : {}),
    ...(settings.healthFlushMs === undefined ? {} : { healthFlushMs: settings.healthFlushMs }),
    ...options.server,
  });
  const agents = server;
  try {
    const port = await agents.listen(settings.listen);
    const address = boundAddress(parseListen(settings.listen).host, port);
    let httpAddress: string | undefined;
    if (settings.httpListen !== undefined) {
      const { host, port: httpPort } = parseListen(settings.httpListen);
      httpAddress = boundAddress(host, await agents.listenHttp(httpPort, host));
    }
    client.start();
    logger.info(
      {
        event: "distributor_started",
        id: settings.id,
        region: settings.region,
        address,
        http: httpAddress,
        authorities: settings.authorities,
        cached_fleets: cachedFleets,
        tls: settings.tls !== undefined,
      },
      "distributor listening",
    );
    let closing: Promise<void> | undefined;
    return {
      address,
      httpAddress,
      server: agents,
      client,
      cache,
      close: () => {
        // The agent side first: its close hands the last merged health to the client.
        closing ??= agents.close().then(() => client.close());
        return closing;
      },
    };
  } catch (error) {
    await agents.close();
    await client.close();
    throw error;
  }
}

/**
 * Each path is a PEM file, or a directory whose *.pem files are read; Keyring refuses a private
 * key among them. None at all is refused too: a distributor that trusts no key caches nothing.
 */
async function readTrustedKeys(paths: readonly string[]): Promise<{ pem: string }[]> {
  const files: string[] = [];
  try {
    for (const path of paths) {
      if ((await stat(path)).isDirectory()) {
        const names = (await readdir(path)).filter((name) => name.endsWith(".pem")).sort();
        files.push(...names.map((name) => join(path, name)));
      } else files.push(path);
    }
    if (files.length === 0) {
      throw new KeyError(
        KeyErrorCode.NoSource,
        `no trusted key in ${paths.join(", ") || "(none given)"}: give the authority's public key (*.pub.pem)`,
      );
    }
    return await Promise.all(files.map(async (file) => ({ pem: await readFile(file, "utf8") })));
  } catch (error) {
    if (error instanceof KeyError) throw error;
    throw new KeyError(KeyErrorCode.Unreadable, `trusted keys: ${(error as Error).message}`, {
      cause: error,
    });
  }
}
