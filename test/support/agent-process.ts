/**
 * Runs the real agent (`agent/main.ts`) as a child process for end-to-end tests: a config
 * file in a temp directory, the admin API on a free port, every stdout line kept.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { AGENT_NODE_FLAGS } from "../../agent/runtime/node-flags.js";

const ROOT = join(import.meta.dirname, "..", "..");
export const ADMIN_TOKEN = "test-admin-token-0123456789";

export interface AgentProcess {
  readonly child: ChildProcess;
  readonly dir: string;
  readonly configFile: string;
  readonly adminUrl: string;
  /** Every stdout line parsed as JSON (non-JSON lines as {raw}). */
  readonly lines: Array<Record<string, unknown>>;
  /** The port a listener of the config is bound to, by its configured address. */
  port(address: string): Promise<number>;
  /** Calls the admin API with the token. */
  admin(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }>;
  writeConfig(yaml: string): Promise<void>;
  /** Waits for a stdout line matching the predicate. */
  waitFor(
    predicate: (line: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  /** Sends the signal and waits for the process to exit; returns its exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface StartOptions {
  /** The dynamic config file; none for a managed agent (static `control_plane`). */
  readonly config?: string;
  readonly staticConfig?: string;
  readonly env?: Record<string, string>;
  readonly args?: readonly string[];
}

export async function startAgent(options: StartOptions): Promise<AgentProcess> {
  const dir = await mkdtemp(join(tmpdir(), "coherent-agent-"));
  const configFile = join(dir, "config.yaml");
  // With the V8 flags the agent ships with, so tests and benches run it as deployed.
  const args = [
    ...AGENT_NODE_FLAGS,
    "--import",
    "tsx",
    join(ROOT, "agent/main.ts"),
    "--admin",
    "127.0.0.1:0",
  ];
  if (options.config !== undefined) {
    await writeFile(configFile, options.config);
    args.push("--config", configFile);
  }
  if (options.staticConfig !== undefined) {
    const staticFile = join(dir, "static.yaml");
    await writeFile(staticFile, options.staticConfig);
    args.push("--static-config", staticFile);
  }
  args.push(...(options.args ?? []));
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, PROXY_ADMIN_TOKEN: ADMIN_TOKEN, PROXY_LOG_LEVEL: "info", ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: Array<Record<string, unknown>> = [];
  const waiters = new Set<() => void>();
  const record = (text: string) => {
    let line: Record<string, unknown>;
    try {
      line = JSON.parse(text) as Record<string, unknown>;
    } catch {
      line = { raw: text };
    }
    lines.push(line);
    for (const wake of waiters) wake();
  };
  createInterface({ input: child.stdout! }).on("line", record);
  createInterface({ input: child.stderr! }).on("line", (text) => record(text));
  const exited = once(child, "exit");

  const waitFor: AgentProcess["waitFor"] = (predicate, timeoutMs = 15_000) =>
    new Promise((resolve, reject) => {
      const check = () => {
        const found = lines.find(predicate);
        if (found) {
          waiters.delete(check);
          clearTimeout(timer);
          resolve(found);
        }
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(
          new Error(
            `timed out waiting for a log line; last lines:\n${lines
              .slice(-10)
              .map((l) => JSON.stringify(l))
              .join("\n")}`,
          ),
        );
      }, timeoutMs);
      waiters.add(check);
      check();
    });

  let adminLine: Record<string, unknown>;
  try {
    adminLine = await Promise.race([
      waitFor((line) => line.msg === "admin API listening"),
      exited.then(() => {
        throw new Error(`agent exited during start:\n${lines.map((l) => JSON.stringify(l)).join("\n")}`);
      }),
    ]);
  } catch (error) {
    child.kill("SIGKILL");
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  const adminUrl = `http://${String(adminLine.address)}`;

  const admin: AgentProcess["admin"] = async (method, path, body) => {
    const response = await fetch(`${adminUrl}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${ADMIN_TOKEN}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: text === "" ? undefined : JSON.parse(text) };
  };

  return {
    child,
    dir,
    configFile,
    adminUrl,
    lines,
    waitFor,
    admin,
    async port(address) {
      const { body } = await admin("GET", "/api/v2/listeners");
      const listener = (body as { listeners: Array<{ address: string; port: number }> }).listeners.find(
        (l) => l.address === address,
      );
      if (!listener) throw new Error(`no listener ${address}`);
      return listener.port;
    },
    writeConfig: (yaml) => writeFile(configFile, yaml),
    async stop(signal = "SIGTERM") {
      if (child.exitCode === null) child.kill(signal);
      const [code] = (await exited) as [number | null];
      await rm(dir, { recursive: true, force: true });
      return code;
    },
  };
}
