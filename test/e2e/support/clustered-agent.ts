/**
 * A managed agent running its data plane in several worker processes (static config
 * `workers: N`, agent/runtime/cluster.ts): the primary holds the control side and replaces a
 * worker that dies. A managed agent (managed-agent.ts) started with `workers`, plus the pids of
 * the workers alive now.
 */
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { promisify } from "node:util";
import { type ManagedAgent, type ManagedAgentOptions, startManagedAgent } from "./managed-agent.js";

const run = promisify(execFile);

export interface ClusteredAgent extends ManagedAgent {
  /** The pids of its workers now: the primary's children. */
  workerPids(): Promise<number[]>;
}

export async function startClusteredAgent(
  options: ManagedAgentOptions & { readonly workers: number },
): Promise<ClusteredAgent> {
  const agent = await startManagedAgent(options);
  return {
    ...agent,
    async workerPids() {
      const pid = agent.process.child.pid;
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
