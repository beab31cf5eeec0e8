/**
 * `coherentctl fleet state|promote` as real processes against a real authority (PGlite in
 * memory, started in this test process), stdin a pipe as in a script or a CI job.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sampleConfig, startTestAuthority, type TestAuthority } from "../authority/api/test-harness.js";

const ROOT = join(import.meta.dirname, "..");

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

type Env = Record<string, string | undefined>;

function ctl(args: string[], env: Env, stdin = ""): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      ["--import", "tsx", join(ROOT, "cli", "coherentctl.ts"), ...args],
      { cwd: ROOT, env, timeout: 15_000 },
      (error, stdout, stderr) => {
        const code = error && typeof error.code === "number" ? error.code : error ? -1 : 0;
        resolve({ code, stdout, stderr });
      },
    );
    child.stdin?.end(stdin);
  });
}

// Each command is a process of its own (about a second each, more on a busy machine).
describe("coherentctl fleet state and promote", { timeout: 60_000 }, () => {
  let home: string;
  let authority: TestAuthority;
  let env: Env;
  let operator: string;

  const state = async (fleet: string) => {
    const run = await ctl(["fleet", "state", fleet, "-o", "json"], env);
    expect(run.code).toBe(0);
    return JSON.parse(run.stdout);
  };

  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), "coherent-fleet-cli-"));
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
      COHERENT_TOKEN: authority.adminToken,
    };
    const token = await authority.call("POST", "/api/v1/tokens", { body: { name: "ci", role: "operator" } });
    operator = (token.body as { token: string }).token;
    expect((await authority.call("POST", "/api/v1/fleets", { body: { name: "web" } })).status).toBe(201);
  }, 60_000);

  afterAll(async () => {
    await authority?.close();
    await rm(home, { recursive: true, force: true });
  });

  it("shows a fleet without bundles as having no stable version, as JSON and as text", async () => {
    expect(await state("web")).toEqual({
      fleet: "web",
      stable_version: null,
      candidate_version: null,
      rollout_id: null,
      candidate_percent: 0,
      generation: 0,
      updated_at: null,
    });
    const text = await ctl(["fleet", "state", "web"], env);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^stable version:\s+none yet \(no bundle submitted\)$/m);
    expect(text.stdout).toMatch(/^generation:\s+0$/m);
  });

  it("shows the first bundle as the stable version once submitted", async () => {
    for (const routes of [1, 2, 3]) {
      const res = await authority.call("POST", "/api/v1/fleets/web/bundles", {
        body: { config: sampleConfig(routes) },
      });
      expect(res.status).toBe(201);
    }
    const text = await ctl(["fleet", "state", "web"], env);
    expect(text.stdout).toMatch(/^fleet:\s+web$/m);
    expect(text.stdout).toMatch(/^stable version:\s+1$/m);
    expect(text.stdout).toMatch(/^candidate version:\s+-$/m);
    expect(text.stdout).toMatch(/^generation:\s+1$/m);
    expect(text.stdout).toMatch(/^updated:\s+\S+Z$/m);
  });

  it("promotes with --yes, and says so when the version is already stable", async () => {
    const promoted = await ctl(["fleet", "promote", "web", "2", "--yes"], env);
    expect(promoted).toMatchObject({
      code: 0,
      stdout: "fleet web: version 2 is now the stable version (generation 2)\n",
      stderr: "",
    });
    expect(await state("web")).toMatchObject({ stable_version: 2, generation: 2 });

    const again = await ctl(["fleet", "promote", "web", "2", "--yes", "-o", "json"], env);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ stable_version: 2, generation: 2, changed: false });
  });

  it("refuses to promote without --yes when stdin is not a terminal, even with a y piped in", async () => {
    const refused = await ctl(["fleet", "promote", "web", "3"], env, "y\n");
    expect(refused.code).toBe(2);
    expect(refused.stderr).toBe(
      'coherentctl: this asks "promote web to v3 as its stable version?" and stdin is not a terminal: pass --yes to confirm without asking\n',
    );
    expect(refused.stdout).toBe("");
    expect(await state("web")).toMatchObject({ stable_version: 2, generation: 2 });
  });

  it("reports an unknown version, a downgrade, a missing role and a bad version with exit 1 or 2", async () => {
    const [unknown, downgrade, forbidden, fleet, usage] = await Promise.all([
      ctl(["fleet", "promote", "web", "9", "--yes"], env),
      ctl(["fleet", "promote", "web", "1", "--yes"], env),
      ctl(["fleet", "promote", "web", "3", "--yes"], { ...env, COHERENT_TOKEN: operator }),
      ctl(["fleet", "state", "nope"], env),
      ctl(["fleet", "promote", "web", "v3", "--yes"], env),
    ]);
    expect(unknown).toMatchObject({
      code: 1,
      stderr: 'coherentctl: fleet "web" has no version 9 (unknown_version)\n',
    });
    expect(downgrade.code).toBe(1);
    expect(downgrade.stderr).toContain("version 1 is below the stable version 2");
    expect(downgrade.stderr).toContain("(downgrade)");
    expect(forbidden).toMatchObject({
      code: 1,
      stderr: "coherentctl: this needs a token with the admin role (forbidden)\n",
    });
    expect(fleet).toMatchObject({ code: 1, stderr: 'coherentctl: no fleet "nope" (unknown_fleet)\n' });
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain("must be a positive integer");
    expect(await state("web")).toMatchObject({ stable_version: 2, generation: 2 });
  });

  it("answers --help for both commands", async () => {
    const [stateHelp, promoteHelp] = await Promise.all([
      ctl(["fleet", "state", "--help"], env),
      ctl(["fleet", "promote", "--help"], env),
    ]);
    expect(stateHelp.stdout).toContain("Usage: coherentctl fleet state [options] <fleet>");
    expect(promoteHelp.stdout).toContain("Usage: coherentctl fleet promote [options] <fleet> <version>");
    expect(promoteHelp.stdout).toContain("-y, --yes");
  });
});
