/**
 * A managed agent running its data plane in several worker processes (static config
 * `workers: N`, agent/runtime/cluster.ts): the primary holds the control side and replaces a
 * worker that dies. Otherwise as managed-agent.ts: the same static config, the same admin
 * token, the same log lines, plus the pids of the workers alive now.
 */
import { execFile } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { request } from "../../support/http.js";
import { ADMIN_TOKEN, LISTENER, type ManagedAgent, type ManagedAgentOptions } from "./managed-agent.js";
import { spawnLogged } from "./processes.js";

const run = promisify(execFile);

export interface ClusteredAgent extends ManagedAgent {
  /** The pids of its workers now: the primary's children. */
  workerPids(): Promise<number[]>;
}

export async function startClusteredAgent(
  options: ManagedAgentOptions & { readonly workers: number },
): Promise<ClusteredAgent> {
  const staticFile = join(options.dir, "static.json");
  await writeFile(
    staticFile,
    JSON.stringify({
      workers: options.workers,
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
    name: `agent ${options.agentId} (${options.workers} workers)`,
    script: "agent/main.ts",
    args: ["--static-config", staticFile, "--admin", "127.0.0.1:0"],
    env: { PROXY_ADMIN_TOKEN: ADMIN_TOKEN, PROXY_LOG_LEVEL: "info" },
  });
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
    async workerPids() {
      const pid = process.child.pid;
      if (pid === undefined) return [];
      // pgrep exits 1 when there is no child: no worker alive.
      const listed = await run("pgrep", ["-P", String(pid)]).catch(() => ({ stdout: "" }));
      const children = listed.stdout
        .split("\n")
        .filter((line) => line.trim() !== "")
        .map(Number);
      // tsx runs esbuild as a child service of the primary too; workers are the node children.
      const isWorker = async (child: number) =>
        !(await readFile(`/proc/${child}/cmdline`, "utf8").catch(() => "")).includes("esbuild");
      const workers = await Promise.all(children.map(isWorker));
      return children.filter((_, i) => workers[i]);
    },
  };
}
