/**
 * A managed agent as a real process (`agent/main.ts --static-config`, no config file): it
 * takes its config from the distributors named, keeps its last good bundle in `stateDir`, and
 * its admin API tells which listener port the bundle gave it. Bundles made by `routesTo` send
 * every request to one upstream, so the `x-upstream` header of a response names the bundle
 * that served it.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { request } from "../../support/http.js";
import { type LoggedProcess, spawnLogged } from "./processes.js";

export const ADMIN_TOKEN = "e2e-admin-token-0123456789";
/** The listener every bundle of these suites declares: port 0, so each agent gets its own. */
export const LISTENER = "127.0.0.1:0";

export interface TrustedKeyFile {
  readonly kid: string;
  readonly publicFile: string;
}

export interface ManagedAgentOptions {
  readonly agentId: string;
  readonly distributors: readonly string[];
  readonly trustedKeys: readonly TrustedKeyFile[];
  /** Holds the static config and, under `state`, the last good bundle; kept across restarts. */
  readonly dir: string;
  readonly fleet?: string;
  readonly region?: string;
  /** `workers` in the static config: a primary and that many worker processes; one process when absent. */
  readonly workers?: number;
}

export interface ManagedAgent {
  readonly process: LoggedProcess;
  readonly adminUrl: string;
  /** The agent's listener URL once a bundle gave it one; undefined before. */
  listenerUrl(): Promise<string | undefined>;
  /** The `x-upstream` of a GET through the agent; undefined when it has no listener yet. */
  servedBy(path?: string): Promise<{ status: number; upstream: string | undefined } | undefined>;
  /** The bundle version the agent logged last as serving or restored; 0 before any. */
  runningVersion(): number;
  /** The NACKs it logged ("bundle refused"), oldest first. */
  refusals(): Array<{ version: number; errors: Array<{ path: string; code: string; message: string }> }>;
}

/** The dynamic config of a bundle whose one route sends everything to `upstream`. */
export function routesTo(upstream: { name: string; address: string }): Record<string, unknown> {
  return {
    listeners: [{ address: LISTENER }],
    // A timeout, as the authority's governance requires of every route.
    routes: [{ id: "all", path_prefix: "/", pool: upstream.name, policy: { timeout: "5s" } }],
    pools: [{ id: upstream.name, endpoints: [{ address: upstream.address }] }],
  };
}

export async function startManagedAgent(options: ManagedAgentOptions): Promise<ManagedAgent> {
  const staticFile = join(options.dir, "static.json");
  // JSON is YAML: the static config is written as JSON to need no YAML writer here.
  await writeFile(
    staticFile,
    JSON.stringify({
      ...(options.workers === undefined ? {} : { workers: options.workers }),
      control_plane: {
        distributors: options.distributors,
        fleet: options.fleet ?? "edge",
        region: options.region ?? "eu-west",
        agent_id: options.agentId,
        trusted_keys: options.trustedKeys.map((k) => ({ kid: k.kid, public_key_file: k.publicFile })),
        state_dir: join(options.dir, "state"),
        health_report_interval: "500ms",
      },
    }),
  );
  const process = spawnLogged({
    name: `agent ${options.agentId}${options.workers === undefined ? "" : ` (${options.workers} workers)`}`,
    script: "agent/main.ts",
    args: ["--static-config", staticFile, "--admin", "127.0.0.1:0"],
    env: { PROXY_ADMIN_TOKEN: ADMIN_TOKEN, PROXY_LOG_LEVEL: "info" },
  });
  // Generous: several agents starting at once through tsx take tens of seconds on a busy machine.
  const adminLine = await process.waitFor((line) => line.msg === "admin API listening", 60_000);
  const adminUrl = `http://${String(adminLine.address)}`;

  const listenerUrl = async (): Promise<string | undefined> => {
    const response = await request(`${adminUrl}/api/v2/listeners`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    const body = await response.json<{ listeners?: Array<{ address: string; port: number }> }>();
    const port = body.listeners?.find((l) => l.address === LISTENER)?.port;
    return port === undefined ? undefined : `http://127.0.0.1:${port}`;
  };

  return {
    process,
    adminUrl,
    listenerUrl,
    async servedBy(path = "/who") {
      const base = await listenerUrl();
      if (base === undefined) return undefined;
      const response = await request(`${base}${path}`);
      await response.drain();
      const upstream = response.headers["x-upstream"];
      return { status: response.status, upstream: typeof upstream === "string" ? upstream : undefined };
    },
    runningVersion() {
      let version = 0;
      for (const line of process.lines) {
        if (line.msg === "bundle serving" || line.msg === "serving the last good bundle")
          version = Number(line.version);
      }
      return version;
    },
    refusals() {
      return process.lines
        .filter((line) => line.msg === "bundle refused")
        .map((line) => ({
          version: Number(line.version),
          errors: line.errors as Array<{ path: string; code: string; message: string }>,
        }));
    },
  };
}
