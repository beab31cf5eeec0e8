/**
 * `coherentctl agents` and `coherentctl fleet status` as real processes against a real
 * authority (PGlite in memory, started in this test process) holding agents as distributors
 * reported them.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sampleConfig, startTestAuthority, type TestAuthority } from "../authority/api/test-harness.js";
import type { AgentReport } from "../authority/store/index.js";

const ROOT = join(import.meta.dirname, "..");

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

type Env = Record<string, string | undefined>;

function ctl(args: string[], env: Env): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--import", "tsx", join(ROOT, "cli", "coherentctl.ts"), ...args],
      { cwd: ROOT, env, timeout: 15_000 },
      (error, stdout, stderr) => {
        const code = error && typeof error.code === "number" ? error.code : error ? -1 : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

function report(id: string, extra: Partial<AgentReport> = {}): AgentReport {
  return {
    id,
    fleet: "web",
    region: "eu",
    distributorId: "d-eu-1",
    runningVersion: 1,
    desiredVersion: 1,
    state: "acked",
    nack: null,
    labels: {},
    connected: true,
    lastSeen: new Date(),
    ...extra,
  };
}

// Each command is a process of its own (about a second each, more on a busy machine).
describe("coherentctl agents and fleet status", { timeout: 60_000 }, () => {
  let home: string;
  let authority: TestAuthority;
  let env: Env;

  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), "coherent-agents-cli-"));
    authority = await startTestAuthority({ database: { dataDir: ":memory:" } });
    const clean: Env = {};
    for (const [name, value] of Object.entries(process.env)) {
      if (!name.startsWith("COHERENT_")) clean[name] = value;
    }
    env = {
      ...clean,
      HOME: home,
      XDG_CONFIG_HOME: join(home, ".config"),
      COHERENT_SERVER: authority.url,
      COHERENT_TOKEN: await authority.token("viewer"),
    };
    for (const fleet of ["web", "api"]) {
      expect((await authority.call("POST", "/api/v1/fleets", { body: { name: fleet } })).status).toBe(201);
    }
    for (const routes of [1, 2]) {
      const res = await authority.call("POST", "/api/v1/fleets/web/bundles", {
        body: { config: sampleConfig(routes) },
      });
      expect(res.status).toBe(201);
    }
    await authority.handle.store.upsertAgentStatuses([
      report("web-1"),
      report("web-2", {
        desiredVersion: 2,
        state: "nacked",
        nack: {
          version: 2,
          errors: [
            { path: "routes[1].pool", message: 'unknown pool "x"', code: "unknown_reference" },
            { path: "routes[1].policy", message: "timeout too long", code: "out_of_range" },
          ],
        },
      }),
      report("web-3", { region: "us", distributorId: "d-us-1", desiredVersion: 2, state: "pending" }),
      report("web-4", { connected: false }),
    ]);
  }, 60_000);

  afterAll(async () => {
    await authority?.close();
    await rm(home, { recursive: true, force: true });
  });

  it("lists agents as a table: versions, state, distributor, the NACK reason, stale ones flagged", async () => {
    const run = await ctl(["agents", "--fleet", "web"], env);
    expect(run.code).toBe(0);
    const lines = run.stdout.trimEnd().split("\n");
    expect(lines[0]?.split(/\s{2,}/)).toEqual([
      "AGENT",
      "FLEET",
      "REGION",
      "DISTRIBUTOR",
      "VERSION",
      "DESIRED",
      "STATE",
      "LAST SEEN",
      "NACK",
    ]);
    expect(lines.slice(1).map((line) => line.split(/\s{2,}/)[0])).toEqual([
      "web-1",
      "web-2",
      "web-4",
      "web-3",
    ]);
    const web2 = lines.find((line) => line.startsWith("web-2"))?.split(/\s{2,}/);
    expect(web2?.slice(0, 7)).toEqual(["web-2", "web", "eu", "d-eu-1", "v1", "v2", "nacked"]);
    expect(web2?.[8]).toBe('v2: routes[1].pool: unknown pool "x" (+1 more)');
    expect(lines.find((line) => line.startsWith("web-4"))).toMatch(/Z \(disconnected\)\s+-$/);
    expect(lines.find((line) => line.startsWith("web-1"))).not.toMatch(/stale|disconnected/);
  });

  const agentsJson = async (args: string[]) => {
    const run = await ctl(["agents", ...args, "-o", "json"], env);
    expect(run.code).toBe(0);
    return (JSON.parse(run.stdout) as { agents: Array<{ id: string }> }).agents;
  };

  it("filters by region and staleness", async () => {
    expect((await agentsJson(["--region", "us"])).map((agent) => agent.id)).toEqual(["web-3"]);
    expect((await agentsJson(["--stale"])).map((agent) => agent.id)).toEqual(["web-4"]);
  });

  it("filters by state with every field in JSON, says when none match, and refuses an unknown state", async () => {
    expect(await agentsJson(["--state", "nacked"])).toEqual([
      expect.objectContaining({
        id: "web-2",
        distributor: "d-eu-1",
        running_version: 1,
        desired_version: 2,
        state: "nacked",
        nack: expect.objectContaining({ version: 2 }),
        stale: false,
        connected: true,
      }),
    ]);
    expect(await ctl(["agents", "--fleet", "api"], env)).toMatchObject({
      code: 0,
      stdout: "no agents match\n",
    });

    const bad = await ctl(["agents", "--state", "dead"], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("Allowed choices are pending, acked, nacked, unknown");
  });

  it("shows a fleet's status with counts per version, and fails for an unknown fleet", async () => {
    const run = await ctl(["fleet", "status", "web"], env);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("stable version:  v1");
    expect(run.stdout).toContain("agents:          4 (1 stale)");
    const table = run.stdout.slice(run.stdout.indexOf("VERSION")).trimEnd().split("\n");
    expect(table.map((line) => line.split(/\s{2,}/))).toEqual([
      ["VERSION", "RUNNING", "ACKED", "PENDING", "NACKED", "STALE"],
      ["v2", "0", "0", "1", "1", "0"],
      ["v1", "3", "1", "0", "0", "1"],
    ]);

    const json = await ctl(["fleet", "status", "web", "-o", "json"], env);
    expect(JSON.parse(json.stdout)).toMatchObject({
      fleet: "web",
      stable_version: 1,
      agents: { total: 4, stale: 1 },
    });

    const empty = await ctl(["fleet", "status", "api"], env);
    expect(empty.stdout).toContain("no agents reported yet");
    const unknown = await ctl(["fleet", "status", "nope"], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain("unknown_fleet");
  });
});
