/**
 * `coherent dev` (what `npm start` runs) as a new user meets it, from the sources through tsx,
 * in a temporary data dir on ports away from the defaults: it gets ready, every demo agent
 * serves the demo's stable upstream, the three commands it suggests work when run as printed,
 * the README's tour works (a healthy rollout succeeds, a broken one is rolled back by itself),
 * Ctrl-C (SIGINT) stops every process it started and exits 0, a restart reuses the data (same
 * token, no bundle submitted again) and --reset starts over.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { ReadyRecord } from "../../cli/dev/ready-report.js";
import { request } from "../support/http.js";
import { type CommandRun, expectSuggestedCommandsWorked } from "./support/dev-commands.js";
import { inheritedEnv, type LoggedProcess, ROOT, spawnLogged, waitUntil } from "./support/processes.js";

/** Below the ephemeral range and away from the defaults (7400…) and the README test's ports. */
const BASE_PORT = 23_400;
/** Three agents through tsx on a busy two-core machine take a while to start. */
const READY_TIMEOUT_MS = 120_000;

/**
 * Runs a printed command as a user would, in the repository with COHERENT_CONFIG set as the
 * output says. `npx coherentctl` runs the compiled dist/, which a checkout under edit may not
 * have built yet; the test runs the same program from its sources instead.
 */
function runPrinted(command: string, record: ReadyRecord): Promise<CommandRun> {
  const line = command.replace(/^npx coherentctl /, `node --import tsx ${join(ROOT, "cli/coherentctl.ts")} `);
  return new Promise((resolve) => {
    execFile(
      "sh",
      ["-c", line],
      { cwd: ROOT, env: { ...inheritedEnv(), ...record.env }, timeout: 90_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

const ctl = (args: string, record: ReadyRecord) => runPrinted(`npx coherentctl ${args}`, record);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("coherent dev", { timeout: 360_000 }, () => {
  let dataDir: string;
  const started: LoggedProcess[] = [];

  afterAll(async () => {
    await Promise.all(started.map((p) => p.stop("SIGKILL")));
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  async function start(...extra: string[]): Promise<{ dev: LoggedProcess; record: ReadyRecord }> {
    const dev = spawnLogged({
      name: "coherent dev",
      script: "cli/coherent.ts",
      args: ["--data-dir", dataDir, "dev", "--base-port", String(BASE_PORT), "--output", "json", ...extra],
    });
    started.push(dev);
    const record = (await dev.waitFor(
      (line) => line.event === "ready",
      READY_TIMEOUT_MS,
    )) as unknown as ReadyRecord;
    console.log(
      `coherent dev ${extra.join(" ") || "(no flags)"}: ready in ${(record.ready_ms / 1000).toFixed(1)} s ` +
        `(first start: ${record.first_start})`,
    );
    return { dev, record };
  }

  /** SIGINT as Ctrl-C sends it: exit 0 and none of the agents it started left running. */
  async function interrupt(dev: LoggedProcess, record: ReadyRecord): Promise<void> {
    const at = Date.now();
    await dev.stop("SIGINT", 30_000);
    console.log(`coherent dev: stopped ${Date.now() - at} ms after SIGINT`);
    expect(dev.exit).toBe(0);
    expect(record.agents.filter((agent) => alive(agent.pid)).map((agent) => agent.id)).toEqual([]);
    expect(alive(dev.child.pid ?? -1)).toBe(false);
  }

  /** What each agent answers at `/`: its status and the demo-api version that served it. */
  async function servedBy(record: ReadyRecord): Promise<Array<[number, string | undefined]>> {
    return Promise.all(
      record.agents.map(async (agent) => {
        const response = await request(`${agent.url}/`);
        const body = await response.json<{ version?: string }>();
        return [response.status, body.version] as [number, string | undefined];
      }),
    );
  }

  it("starts everything, serves through every agent, runs its suggested commands and the tour, and stops cleanly", async () => {
    dataDir = await mkdtemp(join(tmpdir(), "coherent-dev-"));
    const { dev, record } = await start();
    expect(record).toMatchObject({ first_start: true, fleet: "demo", stable_version: 1 });
    expect(record.agents.map((agent) => agent.id)).toEqual(["demo-1", "demo-2", "demo-3"]);
    expect(record.authority).toBe(`http://127.0.0.1:${BASE_PORT}`);
    expect(await servedBy(record)).toEqual([
      [200, "v1"],
      [200, "v1"],
      [200, "v1"],
    ]);
    const dashboard = await request(record.dashboard);
    await dashboard.drain();
    expect(dashboard.status).toBe(200);

    // The three suggested commands, as printed.
    expect(record.commands).toHaveLength(3);
    expectSuggestedCommandsWorked(
      await Promise.all(record.commands.map((command) => runPrinted(command, record))),
    );

    // The tour: roll v2 out on the demo plan; it ends by itself with every agent on v2.
    let at = Date.now();
    expect((await ctl("rollout start demo 2 --yes", record)).code).toBe(0);
    const healthy = await ctl("rollout status --fleet demo --watch --interval 500ms", record);
    console.log(`tour: the rollout of v2 ended in ${Date.now() - at} ms`);
    expect(healthy.code, healthy.stdout + healthy.stderr).toBe(0);
    expect(healthy.stdout).toContain("succeeded: v2 is the fleet's stable version");
    expect(await servedBy(record)).toEqual([
      [200, "v2"],
      [200, "v2"],
      [200, "v2"],
    ]);

    // Break it on purpose: the controller rolls the broken bundle back at its first stage.
    const broken = await ctl(`bundle submit --fleet demo ${join(dataDir, "demo", "broken.yaml")}`, record);
    expect(broken.stdout).toContain("version 3 created");
    at = Date.now();
    expect((await ctl("rollout start demo 3 --yes", record)).code).toBe(0);
    const failed = await ctl("rollout status --fleet demo --watch --interval 500ms", record);
    console.log(`tour: the broken v3 was rolled back ${Date.now() - at} ms after its rollout started`);
    expect(failed.code, failed.stdout + failed.stderr).toBe(4);
    expect(failed.stdout).toContain("rolled back: v2's content restored as v4");
    expect(failed.stdout).toMatch(/reason: error rate \d+\.\d+% > 5\.00%/);
    const fleet = await ctl("fleet status demo", record);
    expect(fleet.stdout).toMatch(/stable version:\s+v4/);
    expect(await servedBy(record)).toEqual([
      [200, "v2"],
      [200, "v2"],
      [200, "v2"],
    ]);

    await interrupt(dev, record);

    // A second start reuses everything: the token, the fleet's versions, no bundle submitted.
    const again = await start();
    expect(again.record).toMatchObject({ first_start: false, token: record.token, stable_version: 4 });
    const bundles = await ctl("bundle list --fleet demo -o json", again.record);
    expect(bundles.code, bundles.stderr).toBe(0);
    expect((JSON.parse(bundles.stdout) as { bundles: Array<{ version: number }> }).bundles[0]?.version).toBe(
      4,
    );
    expect(await servedBy(again.record)).toEqual([
      [200, "v2"],
      [200, "v2"],
      [200, "v2"],
    ]);
    await interrupt(again.dev, again.record);

    // --reset starts over: a new token, the demo's first bundle again.
    const reset = await start("--reset");
    expect(reset.record).toMatchObject({ first_start: true, stable_version: 1 });
    expect(reset.record.token).not.toBe(record.token);
    expect(await servedBy(reset.record)).toEqual([
      [200, "v1"],
      [200, "v1"],
      [200, "v1"],
    ]);
    await interrupt(reset.dev, reset.record);
  });

  it("names the port that is taken and starts nothing", async () => {
    const dir = await mkdtemp(join(tmpdir(), "coherent-dev-ports-"));
    const { createServer } = await import("node:net");
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(BASE_PORT + 2, "127.0.0.1", resolve));
    try {
      const dev = spawnLogged({
        name: "coherent dev (port taken)",
        script: "cli/coherent.ts",
        args: ["--data-dir", dir, "dev", "--base-port", String(BASE_PORT)],
      });
      started.push(dev);
      expect(await waitUntil("coherent dev exits", () => dev.exit, 60_000)).toBe(1);
      const message = dev.lines.map((line) => String(line.raw ?? "")).join("\n");
      expect(message).toContain(`${BASE_PORT + 2} (distributor): taken`);
      expect(message).toContain("--base-port");
    } finally {
      blocker.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
