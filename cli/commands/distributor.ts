/**
 * `coherent distributor`: run a regional distributor until SIGINT or SIGTERM, then close it
 * (agents' streams end so they reconnect elsewhere, the last merged health goes up, the feed
 * stream ends) and exit 0. Every setting comes from (highest first) its flag, its
 * COHERENT_DISTRIBUTOR_* variable, the settings file (`coherent --config FILE distributor`, or
 * COHERENT_DISTRIBUTOR_CONFIG; services/distributor/settings-file.ts), then the default. Its
 * log lines go to stdout; the "distributor listening" line carries the bound addresses.
 */
import { hostname } from "node:os";
import { type Command, InvalidArgumentError, Option } from "commander";
import { KeyError } from "../../services/bundle/index.js";
import { listenAddress } from "../../services/config/schema/primitives.js";
import { SettingsFileError } from "../../services/config/settings-file.js";
import { parseDuration } from "../../services/config/units.js";
import type { DistributorSettings } from "../../services/distributor/main.js";
import {
  type DistributorFile,
  MIN_HEALTH_FLUSH_MS,
  readDistributorFile,
} from "../../services/distributor/settings-file.js";
import { ExitCode } from "../exit-codes.js";
import { CliError, runAction } from "./run.js";

interface DistributorOptions {
  readonly region?: string;
  readonly authority?: string[];
  readonly listen: string;
  readonly cacheDir?: string;
  readonly trustedKeys?: string[];
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
      option("--region <name>", "the region whose agents this distributor serves (required)", "REGION"),
    )
    .addOption(
      option(
        "--authority <host:port,...>",
        "the authority's feed (--feed-listen); several replicas comma-separated, tried in turn (required)",
        "AUTHORITY",
      ).argParser(addresses),
    )
    .addOption(
      option("--listen <host:port>", "where agents connect (gRPC); port 0 for any free port", "LISTEN")
        .argParser(address)
        .default("127.0.0.1:7402"),
    )
    .addOption(
      option(
        "--cache-dir <dir>",
        "bundles and fleet states kept on disk, served at start before the authority answers (required)",
        "CACHE_DIR",
      ),
    )
    .addOption(
      option(
        "--trusted-keys <path,...>",
        "public keys (PEM) bundles must be signed by: files, or directories of *.pem (the authority's signing.pub.pem) (required)",
        "TRUSTED_KEYS",
      ).argParser(paths),
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
    .addHelpText(
      "after",
      "\nSettings file: coherent --config FILE distributor (or COHERENT_DISTRIBUTOR_CONFIG), YAML or JSON,\nwith each flag's snake_case name (region, authority: [...], cache_dir, trusted_keys: [...],\ntls: {cert_file, key_file, client_ca_file}, authority_tls: {ca_file, cert_file, key_file,\nserver_name}, ...). A flag wins over its environment variable, which wins over the file.",
    )
    .action(
      runAction("coherent", exit, async (_options: DistributorOptions, command: Command) => {
        const settings = distributorSettings(await mergedOptions(command));
        // Loaded here, not at the top: `--help` and the other commands need none of it.
        const { startDistributor } = await import("../../services/distributor/main.js");
        // Listened for before the start: a signal as the "listening" line goes out still closes cleanly.
        const stopped = new Promise((resolve) => {
          process.once("SIGINT", resolve);
          process.once("SIGTERM", resolve);
        });
        let distributor: Awaited<ReturnType<typeof startDistributor>>;
        try {
          distributor = await startDistributor(settings);
        } catch (error) {
          if (error instanceof KeyError) throw new CliError(error.message, ExitCode.Usage);
          throw error;
        }
        await stopped;
        await distributor.close();
        return ExitCode.Ok;
      }),
    );
}

/**
 * The flags and their variables over the settings file over the defaults. The file is named by
 * the program's --config flag (its COHERENT_AUTHORITY_CONFIG variable is the authority's, so
 * it is not read here) or by COHERENT_DISTRIBUTOR_CONFIG.
 */
async function mergedOptions(command: Command): Promise<DistributorOptions> {
  const options = command.opts<DistributorOptions>();
  const program = command.parent;
  const configFlag = program?.getOptionValueSource("config") === "cli" ? program.opts().config : undefined;
  const path = (configFlag as string | undefined) ?? process.env[`${ENV}CONFIG`];
  if (path === undefined) return options;
  let file: DistributorFile;
  try {
    file = await readDistributorFile(path);
  } catch (error) {
    if (error instanceof SettingsFileError) throw new CliError(error.message, ExitCode.Usage);
    throw error;
  }
  const given = (name: keyof DistributorOptions) => {
    const source = command.getOptionValueSource(name);
    return source === "cli" || source === "env";
  };
  const pick = <K extends keyof DistributorOptions>(name: K, fromFile: DistributorOptions[K] | undefined) =>
    given(name) || fromFile === undefined ? options[name] : fromFile;
  const tls = file.tls;
  const authorityTls = file.authority_tls;
  return {
    region: pick("region", file.region),
    authority: pick("authority", file.authority),
    listen: pick("listen", file.listen),
    cacheDir: pick("cacheDir", file.cache_dir),
    trustedKeys: pick("trustedKeys", file.trusted_keys),
    id: pick("id", file.id),
    httpListen: pick("httpListen", file.http_listen),
    tlsCert: pick("tlsCert", tls?.cert_file),
    tlsKey: pick("tlsKey", tls?.key_file),
    tlsClientCa: pick("tlsClientCa", tls?.client_ca_file),
    authorityCa: pick("authorityCa", authorityTls?.ca_file),
    authorityCert: pick("authorityCert", authorityTls?.cert_file),
    authorityKey: pick("authorityKey", authorityTls?.key_file),
    authorityServerName: pick("authorityServerName", authorityTls?.server_name),
    healthFlush: pick("healthFlush", file.health_flush),
    logLevel: pick("logLevel", file.log_level),
  };
}

/** The flags checked together: TLS files come in pairs, a client CA needs a server certificate. */
function distributorSettings(options: DistributorOptions): DistributorSettings {
  const required = <T>(value: T | undefined, flag: string, key: string): T => {
    if (value === undefined) {
      throw new CliError(
        `missing ${flag}: give the flag, ${ENV}${key}, or ${key.toLowerCase()}: in the settings file`,
        ExitCode.Usage,
      );
    }
    return value;
  };
  const region = required(options.region, "--region", "REGION");
  const authorities = required(options.authority, "--authority", "AUTHORITY");
  const cacheDir = required(options.cacheDir, "--cache-dir", "CACHE_DIR");
  const trustedKeys = required(options.trustedKeys, "--trusted-keys", "TRUSTED_KEYS");
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
    region,
    authorities,
    listen: options.listen,
    httpListen: options.httpListen === "off" ? undefined : options.httpListen,
    cacheDir,
    trustedKeys,
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
