/**
 * The README's first command in a fresh clone, as a new user runs it: `git clone` of the
 * repository's committed HEAD, `npm ci` (from the warm npm cache), then `npm start` — on ports
 * away from the defaults so a developer's own `npm start` does not collide. It waits for the
 * ready table, sends traffic through each agent it lists, runs the three commands it suggests
 * as printed, then sends SIGINT to the whole process group, as Ctrl-C in a terminal does, and
 * checks no process of the clone is left. The time from `npm start` to the table is printed
 * (goal: under 30 s; it includes the TypeScript build `npm start` runs first).
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readdir, readFile, readlink, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { request } from "../support/http.js";
import { type CommandRun, expectSuggestedCommandsWorked } from "./support/dev-commands.js";
import { inheritedEnv, ROOT } from "./support/processes.js";

/** Below the ephemeral range and away from the defaults (7400…) and dev.test.ts's ports. */
const BASE_PORT = 25_400;

/** The test's environment without npm's own variables (a `npm test` run sets many) or Coherent's. */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(inheritedEnv()).filter(([name]) => !name.startsWith("npm_")));
}

function run(
  command: string,
  args: readonly string[],
  cwd: string,
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
) {
  return new Promise<CommandRun>((resolve) => {
    execFile(
      command,
      args,
      { cwd, env, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        resolve({
          code: error === null ? 0 : typeof error.code === "number" ? error.code : 1,
          stdout,
          stderr,
        });
      },
    );
  });
}

/** Pids of processes whose command line names `dir` or whose working directory is inside it. */
async function processesOf(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const pid of await readdir("/proc")) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    const [cmdline, cwd] = await Promise.all([
      readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => ""),
      readlink(`/proc/${pid}/cwd`).catch(() => ""),
    ]);
    if (cmdline.includes(dir) || cwd === dir || cwd.startsWith(`${dir}/`))
      found.push(`${pid} ${cmdline.replaceAll("\0", " ").trim()}`);
  }
  return found;
}

/** The ready table's parts: each agent's URL, the coherentctl config, the suggested commands. */
function parseReady(text: string) {
  const agents = [...text.matchAll(/^\s+proxy (demo-\d+)\s+(http:\/\/\S+)$/gm)].map((m) => ({
    id: m[1] as string,
    url: m[2] as string,
  }));
  const tryNext = text.slice(text.indexOf("Try next"));
  const lines = tryNext
    .split("\n")
    .slice(1)
    .filter((line) => line.startsWith("  "))
    .map((line) => line.trim());
  const config = lines.find((line) => line.startsWith("export COHERENT_CONFIG="))?.split("=")[1];
  const commands = lines.filter((line) => !line.startsWith("export "));
  return { agents, config, commands };
}

// Reads /proc to find leftover processes: Linux only (where CI and this project's machines run).
describe.skipIf(process.platform !== "linux")("npm start in a fresh clone", { timeout: 240_000 }, () => {
  let dir: string | undefined;
  let npm: ChildProcess | undefined;

  afterAll(async () => {
    if (npm?.pid !== undefined && npm.exitCode === null && npm.signalCode === null) {
      try {
        process.kill(-npm.pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("gets ready, serves through each agent, runs its suggested commands and stops leaving nothing", async () => {
    dir = await mkdtemp(join(tmpdir(), "coherent-clone-"));
    const env = cleanEnv();
    let at = Date.now();
    const clone = await run("git", ["clone", "--quiet", ROOT, dir], tmpdir(), env, 60_000);
    expect(clone.code, clone.stderr).toBe(0);
    const ci = await run("npm", ["ci", "--prefer-offline", "--no-audit", "--no-fund"], dir, env, 150_000);
    expect(ci.code, ci.stderr.slice(-2000)).toBe(0);
    console.log(`fresh clone: git clone and npm ci took ${((Date.now() - at) / 1000).toFixed(1)} s`);

    at = Date.now();
    // Its own process group, so SIGINT can go to every process at once as a terminal's Ctrl-C does.
    npm = spawn("npm", ["start", "--", "--base-port", String(BASE_PORT)], {
      cwd: dir,
      env,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    npm.stdout?.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    npm.stderr?.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const exited = once(npm, "exit");
    const deadline = Date.now() + 120_000;
    while (!stdout.includes("Ctrl-C stops everything") && Date.now() < deadline && npm.exitCode === null)
      await new Promise((resolve) => setTimeout(resolve, 100));
    expect(stdout, `stderr:\n${stderr}`).toContain("Ctrl-C stops everything");
    const readyMs = Date.now() - at;
    console.log(`npm start: ready ${(readyMs / 1000).toFixed(1)} s after it was run (goal: under 30 s)`);
    console.log(stdout.slice(stdout.indexOf("Coherent is running")));

    const ready = parseReady(stdout);
    expect(ready.agents.map((agent) => agent.id)).toEqual(["demo-1", "demo-2", "demo-3"]);
    for (const agent of ready.agents) {
      for (let i = 0; i < 5; i++) {
        const response = await request(`${agent.url}/traffic/${i}`);
        expect(response.status).toBe(200);
        expect(await response.json()).toMatchObject({ service: "demo-api", version: "v1" });
      }
    }

    expect(ready.config).toBe(join(dir, ".coherent", "dev", "coherentctl.yaml"));
    expect(ready.commands).toHaveLength(3);
    const shellEnv = { ...env, COHERENT_CONFIG: ready.config };
    const results: CommandRun[] = [];
    for (const command of ready.commands)
      results.push(await run("sh", ["-c", command], dir, shellEnv, 60_000));
    expectSuggestedCommandsWorked(results);

    at = Date.now();
    process.kill(-(npm.pid as number), "SIGINT");
    const [code, signal] = await Promise.race([
      exited,
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error("npm start still runs 60 s after SIGINT")), 60_000),
      ),
    ]);
    console.log(`npm start: exited (${code ?? signal}) ${Date.now() - at} ms after SIGINT`);
    expect(stderr).toContain("coherent dev: stopped");
    // The processes of the clone end with npm or right after; give stragglers a moment.
    let left = await processesOf(dir);
    for (let i = 0; i < 20 && left.length > 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      left = await processesOf(dir);
    }
    expect(left).toEqual([]);
  });
});
