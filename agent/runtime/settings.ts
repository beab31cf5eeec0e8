/**
 * The agent's process settings, from (highest first) command-line flags, the spec's PROXY_*
 * environment variables, the static config file, and defaults.
 */
import { readFile } from "node:fs/promises";
import { type ConfigIssue, parseStaticConfig, type StaticConfig } from "../../services/config/index.js";

export interface Flags {
  readonly config?: string;
  readonly admin?: string;
  readonly staticConfig?: string;
}

export interface Settings {
  readonly configFile: string | undefined;
  readonly adminAddress: string | undefined;
  readonly metricsAddress: string | undefined;
  readonly logLevel: string;
  readonly adminTokens: readonly string[];
  readonly workers: number;
  readonly drainDelayMs: number;
  readonly drainTimeoutMs: number;
  /** OTLP/HTTP traces endpoint; undefined: tracing off, at no cost per request. */
  readonly traceEndpoint: string | undefined;
  /** The static config with the environment's overrides folded in. */
  readonly staticConfig: StaticConfig;
}

export class SettingsError extends Error {
  constructor(
    message: string,
    readonly issues: readonly ConfigIssue[] = [],
  ) {
    super(message);
  }
}

export async function resolveSettings(
  flags: Flags,
  env: NodeJS.ProcessEnv,
  cores: number,
): Promise<Settings> {
  let file: StaticConfig = {};
  if (flags.staticConfig) {
    const text = await readText(flags.staticConfig);
    const parsed = parseStaticConfig(text);
    if (!parsed.ok) throw new SettingsError(`invalid static config ${flags.staticConfig}`, parsed.errors);
    file = parsed.value;
  }
  const tlsCert = env.PROXY_TLS_CERT;
  const tlsKey = env.PROXY_TLS_KEY;
  if ((tlsCert === undefined) !== (tlsKey === undefined)) {
    throw new SettingsError("set both PROXY_TLS_CERT and PROXY_TLS_KEY, or neither");
  }
  const staticConfig: StaticConfig = {
    ...file,
    ...(tlsCert && tlsKey ? { tls: { cert_file: tlsCert, key_file: tlsKey } } : {}),
  };
  const tokens = [...(file.admin?.tokens ?? [])];
  if (file.admin?.token_file) tokens.push((await readText(file.admin.token_file)).trim());
  if (env.PROXY_ADMIN_TOKEN) tokens.push(env.PROXY_ADMIN_TOKEN);
  const workers = file.workers === "auto" ? cores : (file.workers ?? 1);
  return {
    configFile: flags.config ?? env.PROXY_CONFIG_FILE,
    adminAddress: flags.admin ?? env.PROXY_ADMIN_ADDRESS ?? file.admin_address,
    metricsAddress: env.PROXY_METRICS_ADDRESS ?? file.metrics?.address,
    logLevel: env.PROXY_LOG_LEVEL ?? file.logging?.level ?? "info",
    adminTokens: tokens.filter((t) => t.length > 0),
    workers,
    drainDelayMs: file.shutdown?.drain_delay ?? 10_000,
    drainTimeoutMs: file.shutdown?.drain_timeout ?? 30_000,
    traceEndpoint: env.PROXY_TRACE_ENDPOINT ?? file.tracing?.endpoint,
    staticConfig,
  };
}

async function readText(file: string): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch (error) {
    throw new SettingsError(`cannot read ${file}: ${(error as Error).message}`);
  }
}
