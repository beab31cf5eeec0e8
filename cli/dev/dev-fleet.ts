/**
 * The demo fleet's agents: real `proxy` processes in managed mode (--static-config naming the
 * distributor), one directory each under the data dir for the static config and the last
 * good bundle, logs to a file each. Every bundle gives all agents the same listener address,
 * 127.0.0.1:0, so each agent's port is read from its admin API (a fixed port per agent).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { mkdir, open, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { AGENT_NODE_FLAGS } from "../../agent/runtime/node-flags.js";
import { packageRoot } from "./demo-configs.js";
import { HOST } from "./ports.js";

export interface DevAgentOptions {
  readonly id: string;
  readonly fleet: string;
  readonly region: string;
  readonly distributor: string;
  readonly trustedKey: { readonly kid: string; readonly publicFile: string };
  readonly dir: string;
  readonly logFile: string;
  readonly adminPort: number;
  readonly adminToken: string;
  /** Told when the agent exits while it was not asked to stop. */
  readonly onUnexpectedExit: (agent: DevAgent, code: number | string) => void;
}

export interface DevAgent {
  readonly id: string;
  readonly pid: number;
  readonly logFile: string;
  readonly adminUrl: string;
  /** The exit code or signal once it exited. */
  readonly exit: number | string | undefined;
  /** http://127.0.0.1:PORT of its listener once a bundle gave it one; undefined before. */
  listenerUrl(): Promise<string | undefined>;
  /** SIGTERM (it drains), SIGKILL after `graceMs`; resolves at its exit. Idempotent. */
  stop(graceMs: number): Promise<void>;
}

/**
 * How to run the agent from here: the compiled main.js next to this module's compiled tree
 * (`npm start` runs dist/), else the TypeScript source through tsx, as tests run the CLI;
 * with the V8 flags agents run with (agent/runtime/node-flags.ts).
 */
export function agentCommand(): { execPath: string; args: string[] } {
  const compiled = join(import.meta.dirname, "..", "..", "agent", "main.js");
  if (existsSync(compiled)) return { execPath: process.execPath, args: [...AGENT_NODE_FLAGS, compiled] };
  return {
    execPath: process.execPath,
    args: [...AGENT_NODE_FLAGS, "--import", "tsx", join(packageRoot(), "agent", "main.ts")],
  };
}

/** This process's environment without settings meant for the developer's own agents or control plane. */
function agentEnv(adminToken: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith("PROXY_") && !name.startsWith("COHERENT_")) env[name] = value;
  }
  return { ...env, PROXY_ADMIN_TOKEN: adminToken };
}

export async function startDevAgent(options: DevAgentOptions): Promise<DevAgent> {
  await mkdir(options.dir, { recursive: true });
  const staticFile = join(options.dir, "static.json");
  // JSON is YAML: the static config needs no YAML writer.
  await writeFile(
    staticFile,
    `${JSON.stringify(
      {
        control_plane: {
          distributors: [options.distributor],
          fleet: options.fleet,
          region: options.region,
          agent_id: options.id,
          trusted_keys: [{ kid: options.trustedKey.kid, public_key_file: options.trustedKey.publicFile }],
          state_dir: join(options.dir, "state"),
          // Fresh health every second, so the demo's short rollout stages see traffic soon.
          health_report_interval: "1s",
        },
        // The demo's 20 requests a second would bury everything else in the log.
        logging: { level: "info", access_log: false },
        // No load balancer to wait for: Ctrl-C drains at once, in-flight requests get 5 s.
        shutdown: { drain_delay: "0s", drain_timeout: "5s" },
      },
      null,
      2,
    )}\n`,
  );
  const log = await open(options.logFile, "a");
  const { execPath, args } = agentCommand();
  let child: ChildProcess;
  try {
    child = spawn(
      execPath,
      [...args, "--static-config", staticFile, "--admin", `${HOST}:${options.adminPort}`],
      { cwd: packageRoot(), env: agentEnv(options.adminToken), stdio: ["ignore", log.fd, log.fd] },
    );
  } finally {
    // The child has its own copy of the descriptor.
    await log.close();
  }
  let exit: number | string | undefined;
  let stopping = false;
  const exited = once(child, "exit").then(([code, signal]) => {
    exit = (code as number | null) ?? (signal as string);
  });
  const adminUrl = `http://${HOST}:${options.adminPort}`;
  const agent: DevAgent = {
    id: options.id,
    pid: child.pid ?? -1,
    logFile: options.logFile,
    adminUrl,
    get exit() {
      return exit;
    },
    async listenerUrl() {
      const response = await fetch(`${adminUrl}/api/v2/listeners`, {
        headers: { authorization: `Bearer ${options.adminToken}` },
        signal: AbortSignal.timeout(2_000),
      }).catch(() => undefined);
      if (!response?.ok) return undefined;
      const body = (await response.json()) as { listeners?: Array<{ port?: number }> };
      const port = body.listeners?.[0]?.port;
      return port === undefined ? undefined : `http://${HOST}:${port}`;
    },
    async stop(graceMs) {
      stopping = true;
      if (exit !== undefined) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
  void exited.then(() => {
    if (!stopping) options.onUnexpectedExit(agent, exit ?? "unknown");
  });
  return agent;
}

/** Waits until the agent's listener answers HTTP; throws after `timeoutMs`, or when it exits. */
export async function waitServing(agent: DevAgent, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (agent.exit !== undefined) {
      throw new Error(`agent ${agent.id} exited (${agent.exit}) before serving: see ${agent.logFile}`);
    }
    const url = await agent.listenerUrl();
    if (url !== undefined) {
      const answered = await fetch(`${url}/`, { signal: AbortSignal.timeout(2_000) })
        .then(async (response) => {
          await response.arrayBuffer();
          return true;
        })
        .catch(() => false);
      if (answered) return url;
    }
    await sleep(200);
  }
  throw new Error(`agent ${agent.id} does not serve after ${timeoutMs / 1000} s: see ${agent.logFile}`);
}
