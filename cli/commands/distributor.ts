/**
 * `coherent distributor`: run a regional distributor until SIGINT or SIGTERM, then close it
 * (agents' streams end so they reconnect elsewhere, the last merged health goes up, the feed
 * stream ends) and exit 0. Every flag can come from a COHERENT_DISTRIBUTOR_* variable. Its
 * log lines go to stdout; the "distributor listening" line carries the bound addresses.
 */
import { once } from "node:events";
import { hostname } from "node:os";
import { type Command, InvalidArgumentError, Option } from "commander";
import { KeyError } from "../../services/bundle/index.js";
import { listenAddress } from "../../services/config/schema/primitives.js";
import { parseDuration } from "../../services/config/units.js";
import type { DistributorSettings } from "../../services/distributor/main.js";
import { ExitCode } from "../exit-codes.js";
import { CliError, runAction } from "./run.js";

interface DistributorOptions {
  readonly region: string;
  readonly authority: string[];
  readonly listen: string;
  readonly cacheDir: string;
  readonly trustedKeys: string[];
  readonly id?: string;
  readonly httpListen: string;
  readonly tlsCert?: string;
  readonly tlsKey?: string;
  readonly tlsClientCa?: string;
  readonly authorityCa?: string;
  readonly authorityCert?: string;
  readonly authorityKey?: string;
  readonly authorityServerName?: string;
  readonly healthFlush: number;
  readonly logLevel: string;
}

const ENV = "COHERENT_DISTRIBUTOR_";

function address(value: string): string {
  if (!listenAddress().safeParse(value).success) throw new InvalidArgumentError("must be host:port.");
  return value;
}

function addresses(value: string): string[] {
  const list = value.split(",").map((each) => each.trim());
  if (list.some((each) => !listenAddress().safeParse(each).success || each.startsWith(":"))) {
    throw new InvalidArgumentError("must be host:port, or several separated by commas.");
  }
  return list;
}

const paths = (value: string): string[] => value.split(",").map((each) => each.trim());

/** The least an agent's health_report_interval may be: flushing faster would send nothing new. */
const MIN_HEALTH_FLUSH_MS = 100;

function healthFlush(value: string): number {
  const parsed = parseDuration(value);
  if (!parsed.ok || parsed.value < MIN_HEALTH_FLUSH_MS) {
    throw new InvalidArgumentError(`must be a duration of at least ${MIN_HEALTH_FLUSH_MS}ms, e.g. 5s.`);
  }
  return parsed.value;
}

export function registerDistributorCommand(program: Command, exit: (code: ExitCode) => void): void {
  const option = (flags: string, description: string, name: string) =>
    new Option(flags, description).env(`${ENV}${name}`);
  program
    .command("distributor")
    .description(
      "run a regional distributor: cache the authority's bundles and fleet states on disk, serve the region's agents from it, send their status and health up",
    )
    .addOption(
      option(
        "--region <name>",
        "the region whose agents this distributor serves",
        "REGION",
      ).makeOptionMandatory(),
    )
    .addOption(
      option(
        "--authority <host:port,...>",
        "the authority's feed (--feed-listen); several replicas comma-separated, tried in turn",
        "AUTHORITY",
      )
        .argParser(addresses)
        .makeOptionMandatory(),
    )
    .addOption(
      option("--listen <host:port>", "where agents connect (gRPC); port 0 for any free port", "LISTEN")
        .argParser(address)
        .default("127.0.0.1:7402"),
    )
    .addOption(
      option(
        "--cache-dir <dir>",
        "bundles and fleet states kept on disk, served at start before the authority answers",
        "CACHE_DIR",
      ).makeOptionMandatory(),
    )
    .addOption(
      option(
        "--trusted-keys <path,...>",
        "public keys (PEM) bundles must be signed by: files, or directories of *.pem (the authority's signing.pub.pem)",
        "TRUSTED_KEYS",
      )
        .argParser(paths)
        .makeOptionMandatory(),
    )
    .addOption(option("--id <id>", "this distributor's id in agent statuses (default hostname-pid)", "ID"))
    .addOption(
      option("--http-listen <host:port|off>", "/healthz and /metrics; off to serve neither", "HTTP_LISTEN")
        .argParser((value) => (value === "off" ? value : address(value)))
        .default("127.0.0.1:9402"),
    )
    .addOption(option("--tls-cert <file>", "serve agents over TLS with this certificate (PEM)", "TLS_CERT"))
    .addOption(option("--tls-key <file>", "the private key of --tls-cert (PEM)", "TLS_KEY"))
    .addOption(
      option(
        "--tls-client-ca <file>",
        "require agents to present a certificate signed by this CA (mTLS)",
        "TLS_CLIENT_CA",
      ),
    )
    .addOption(
      option(
        "--authority-ca <file>",
        "reach the authority over TLS, trusting this CA (PEM); plaintext without",
        "AUTHORITY_CA",
      ),
    )
    .addOption(
      option(
        "--authority-cert <file>",
        "client certificate for an authority that requires mTLS",
        "AUTHORITY_CERT",
      ),
    )
    .addOption(option("--authority-key <file>", "the private key of --authority-cert", "AUTHORITY_KEY"))
    .addOption(
      option(
        "--authority-server-name <name>",
        "the name in the authority's certificate, when it is not the host dialled",
        "AUTHORITY_SERVER_NAME",
      ),
    )
    .addOption(
      option(
        "--health-flush <duration>",
        "how often agents' merged health and changed statuses go up to the authority",
        "HEALTH_FLUSH",
      )
        .argParser(healthFlush)
        .default(5_000, "5s"),
    )
    .addOption(
      option("--log-level <level>", "trace, debug, info, warn, error or silent", "LOG_LEVEL").default("info"),
    )
    .action(
      runAction("coherent", exit, async (options: DistributorOptions) => {
        const settings = distributorSettings(options);
        // Loaded here, not at the top: `--help` and the other commands need none of it.
        const { startDistributor } = await import("../../services/distributor/main.js");
        let distributor: Awaited<ReturnType<typeof startDistributor>>;
        try {
          distributor = await startDistributor(settings);
        } catch (error) {
          if (error instanceof KeyError) throw new CliError(error.message, ExitCode.Usage);
          throw error;
        }
        const stop = new AbortController();
        await Promise.race([
          once(process, "SIGINT", { signal: stop.signal }),
          once(process, "SIGTERM", { signal: stop.signal }),
        ]);
        stop.abort();
        await distributor.close();
        return ExitCode.Ok;
      }),
    );
}

/** The flags checked together: TLS files come in pairs, a client CA needs a server certificate. */
function distributorSettings(options: DistributorOptions): DistributorSettings {
  const pair = (cert: string | undefined, key: string | undefined, what: string) => {
    if ((cert === undefined) !== (key === undefined)) {
      throw new CliError(`${what}: give both the certificate and its key`, ExitCode.Usage);
    }
  };
  pair(options.tlsCert, options.tlsKey, "--tls-cert/--tls-key");
  pair(options.authorityCert, options.authorityKey, "--authority-cert/--authority-key");
  if (options.tlsClientCa !== undefined && options.tlsCert === undefined) {
    throw new CliError("--tls-client-ca needs --tls-cert and --tls-key: mTLS is TLS first", ExitCode.Usage);
  }
  const authorityTls =
    options.authorityCa !== undefined || options.authorityCert !== undefined
      ? {
          ...(options.authorityCa === undefined ? {} : { caFile: options.authorityCa }),
          ...(options.authorityCert === undefined
            ? {}
            : { certFile: options.authorityCert, keyFile: options.authorityKey as string }),
        }
      : undefined;
  return {
    id: options.id ?? `${hostname()}-${process.pid}`,
    region: options.region,
    authorities: options.authority,
    listen: options.listen,
    httpListen: options.httpListen === "off" ? undefined : options.httpListen,
    cacheDir: options.cacheDir,
    trustedKeys: options.trustedKeys,
    ...(options.tlsCert === undefined
      ? {}
      : {
          tls: {
            certFile: options.tlsCert,
            keyFile: options.tlsKey as string,
            ...(options.tlsClientCa === undefined ? {} : { clientCaFile: options.tlsClientCa }),
          },
        }),
    ...(authorityTls === undefined ? {} : { authorityTls }),
    ...(options.authorityServerName === undefined
      ? {}
      : { authorityServerName: options.authorityServerName }),
    healthFlushMs: options.healthFlush,
    logLevel: options.logLevel,
  };
}
