/**
 * `coherentctl rollout …` as real processes against a real authority on each dialect, stdin a
 * pipe as in a script or a CI job (so nothing asks for confirmation unless it must, and the
 * watch prints instead of redrawing).
 */
import { execFile, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  DIALECTS,
  dropSchema,
  sampleConfig,
  startTestAuthority,
  type TestAuthority,
  testDatabase,
} from "../authority/api/test-harness.js";

const ROOT = join(import.meta.dirname, "..");
const CTL = ["--import", "tsx", join(ROOT, "cli", "coherentctl.ts")];

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
      [...CTL, ...args],
      { cwd: ROOT, env, timeout: 15_000 },
      (error, stdout, stderr) => {
        const code = error && typeof error.code === "number" ? error.code : error ? -1 : 0;
        resolve({ code, stdout, stderr });
      },
    );
    child.stdin?.end(stdin);
  });
}

/** A running coherentctl whose output can be waited on while it runs. */
function ctlRunning(args: string[], env: Env) {
  const child = spawn(process.execPath, [...CTL, ...args], {
    cwd: ROOT,
    env,
    stdio: ["pipe", "pipe", "pipe"],
  });
  child.stdin.end();
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const killer = setTimeout(() => child.kill(), 15_000);
  const done = new Promise<Run>((resolve) =>
    child.once("close", (code) => {
      clearTimeout(killer);
      resolve({ code: code ?? -1, stdout, stderr });
    }),
  );
  return {
    done,
    stdout: () => stdout,
    async output(pattern: RegExp): Promise<string> {
      const deadline = Date.now() + 10_000;
      while (!pattern.test(stdout)) {
        if (Date.now() > deadline) throw new Error(`no ${pattern} in ${JSON.stringify({ stdout, stderr })}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      return stdout;
    },
  };
}

/** The test's environment without the caller's COHERENT_* settings or config file. */
function cliEnv(home: string, server: string, token: string): Env {
  const clean: Env = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith("COHERENT_")) clean[key] = value;
  }
  return {
    ...clean,
    HOME: home,
    XDG_CONFIG_HOME: join(home, ".config"),
    COHERENT_SERVER: server,
    COHERENT_TOKEN: token,
  };
}

const PLAN = `rollout:
  stages:
    - name: canary
      fleet_percent: 10
      bake_time: 10m
    - name: all
      fleet_percent: 100
  health_gates:
    - metric: error_rate
      threshold: 0.01
`;

const BROKEN_PLAN = `stages:
  - name: canary
    fleet_percent: 150
  - fleet_percent: 100
    bake_tme: 5m
`;

for (const { name, skip } of DIALECTS) {
  // Skipped only when COHERENT_TEST_NO_POSTGRES=1 (no Postgres on the machine): the PGlite run
  // still covers it. Each command is a process of its own (about a second each, more when busy).
  describe.skipIf(skip)(`coherentctl rollout on ${name}`, { timeout: 60_000 }, () => {
    const database = testDatabase(name);
    let home: string;
    let authority: TestAuthority;
    let env: Env;
    let viewerEnv: Env;
    let planFile: string;
    let brokenFile: string;
    let started: string;

    const json = async (args: string[], expectedCode = 0) => {
      const run = await ctl([...args, "-o", "json"], env);
      expect(run, run.stderr).toMatchObject({ code: expectedCode });
      return JSON.parse(run.stdout);
    };
    // Set-up and checks that are not what a test is about go straight to the API: each
    // coherentctl is a process of its own and takes a second or two.
    const api = async (method: string, path: string, body?: unknown) => {
      const res = await authority.call(method, `/api/v1${path}`, body === undefined ? {} : { body });
      expect(res.status, JSON.stringify(res.body)).toBeLessThan(300);
      return res.body as Record<string, unknown> & { rollouts: Array<Record<string, unknown>> };
    };
    const rollouts = async (fleet: string) => (await api("GET", `/rollouts?fleet=${fleet}`)).rollouts;
    const phase = async (id: string) =>
      ((await api("GET", `/rollouts/${id}`)).rollout as { phase: string }).phase;

    beforeAll(async () => {
      home = await mkdtemp(join(tmpdir(), "coherent-rollout-cli-"));
      authority = await startTestAuthority({ database });
      env = cliEnv(home, authority.url, await authority.token("operator"));
      viewerEnv = { ...env, COHERENT_TOKEN: await authority.token("viewer") };
      planFile = join(home, "plan.yaml");
      brokenFile = join(home, "broken.yaml");
      await writeFile(planFile, PLAN);
      await writeFile(brokenFile, BROKEN_PLAN);
      for (const fleet of ["web", "api"]) {
        expect((await authority.call("POST", "/api/v1/fleets", { body: { name: fleet } })).status).toBe(201);
        for (const routes of [1, 2, 3]) {
          const res = await authority.call("POST", `/api/v1/fleets/${fleet}/bundles`, {
            body: { config: sampleConfig(routes) },
          });
          expect(res.status).toBe(201);
        }
      }
    }, 60_000);

    afterAll(async () => {
      await authority?.close();
      await dropSchema(database);
      await rm(home, { recursive: true, force: true });
    });

    it("refuses an invalid plan with every error, its line and path, exit 3, and starts nothing", async () => {
      const [run, asJson] = await Promise.all([
        ctl(["rollout", "start", "web", "2", "--plan", brokenFile, "--yes"], env),
        json(["rollout", "start", "web", "2", "--plan", brokenFile, "--yes"], 3),
      ]);
      expect(run.code).toBe(3);
      expect(run.stdout.split("\n")).toEqual([
        `${brokenFile}:3:5 rollout.stages[0].fleet_percent: a percentage must be between 0 and 100, got 150`,
        `${brokenFile}:4:5 rollout.stages[1].name: required field is missing`,
        `${brokenFile}:5:5 rollout.stages[1].bake_tme: unknown field "bake_tme" (did you mean "bake_time"?)`,
        `${brokenFile}: invalid rollout plan (3 errors)`,
        "",
      ]);
      expect(asJson.errors.map((e: { path: string }) => e.path)).toEqual([
        "rollout.stages[0].fleet_percent",
        "rollout.stages[1].name",
        "rollout.stages[1].bake_tme",
      ]);
      expect(await rollouts("web")).toEqual([]);
    });

    it("starts a rollout from a plan file without asking when stdin is not a terminal", async () => {
      const run = await ctl(["rollout", "start", "web", "2", "--plan", planFile], env);
      expect(run, run.stderr).toMatchObject({ code: 0, stderr: "" });
      const [created] = await rollouts("web");
      started = String(created?.id);
      expect(created).toMatchObject({
        fleet: "web",
        candidate_version: 2,
        stable_version: 1,
        stages: [
          { name: "canary", fleet_percent: 10, bake_ms: 600_000 },
          { name: "all", fleet_percent: 100, bake_ms: 0 },
        ],
      });
      expect(run.stdout).toContain(`rollout ${started} (fleet web, v1 → v2): `);
      expect(run.stdout).toMatch(/^canary +10% +10m00s +100$/m);
      expect(run.stdout).toContain("gates: error_rate <= 1.00%\nauto rollback: none\n");
      expect(run.stdout).toContain(`watch it: coherentctl rollout status ${started} --watch`);
    });

    it("refuses a second live rollout of the fleet and an unknown version, exit 1", async () => {
      const [second, unknown] = await Promise.all([
        ctl(["rollout", "start", "web", "3", "--yes"], env),
        ctl(["rollout", "start", "api", "9", "--yes"], env),
      ]);
      expect(second.code).toBe(1);
      expect(second.stderr).toContain("(rollout_active)");
      expect(unknown.code).toBe(1);
      expect(unknown.stderr).toContain("(unknown_version)");
    });

    it("shows the rollout's status by id as JSON and by fleet as the text view, to a viewer", async () => {
      const [byId, text] = await Promise.all([
        json(["rollout", "status", started]),
        ctl(["rollout", "status", "--fleet", "web"], viewerEnv),
      ]);
      expect(byId.rollout).toMatchObject({ id: started, fleet: "web", candidate_version: 2 });
      expect(byId.agents).toMatchObject({ total: 0 });
      expect(Array.isArray(byId.checks)).toBe(true);
      expect(Array.isArray(byId.events)).toBe(true);

      expect(text, text.stderr).toMatchObject({ code: 0 });
      expect(text.stdout).toContain(`rollout ${started}  fleet web  v1 → v2  ${byId.rollout.phase}`);
      expect(text.stdout).toMatch(/^stage .*\/2/m);
      expect(text.stdout).toContain("agents: 0");
      expect(text.stdout).not.toContain("\x1b");
    });

    it("pauses and resumes, refusing to pause a paused rollout", async () => {
      // Without a controller in this authority the rollout waits in pending: promote starts stage 1.
      if ((await phase(started)) === "pending") await api("POST", `/rollouts/${started}/promote`);

      const paused = await ctl(["rollout", "pause", started], env);
      expect(paused, paused.stderr).toMatchObject({
        code: 0,
        stdout: `rollout ${started} (fleet web, v1 → v2): paused at stage 1/2 canary (10%)\n`,
      });
      const again = await ctl(["rollout", "pause", started], env);
      expect(again.code).toBe(1);
      expect(again.stderr).toContain("(invalid_transition)");
      expect(await json(["rollout", "resume", started])).toMatchObject({ id: started, phase: "running" });
    });

    it("aborts only with --yes when stdin is not a terminal, then status exits 4", async () => {
      const unasked = await ctl(["rollout", "abort", started], env, "y\n");
      expect(unasked.code).toBe(2);
      expect(unasked.stderr).toContain(`asks "abort rollout ${started}?" and stdin is not a terminal`);
      expect(await phase(started)).toBe("running");

      const aborted = await ctl(["rollout", "abort", started, "--yes"], env);
      expect(aborted, aborted.stderr).toMatchObject({ code: 0 });
      expect(aborted.stdout).toBe(`rollout ${started} (fleet web, v1 → v2): aborted\n`);

      const after = await ctl(["rollout", "status", started], viewerEnv);
      expect(after.code).toBe(4);
      expect(after.stdout).toContain("v1 → v2  aborted");
    });

    it("watches without a terminal: one status per change, exit 4 when the rollout is aborted", async () => {
      const id = (await api("POST", "/fleets/api/rollouts", { version: 3 })).id as string;
      const watch = ctlRunning(["rollout", "status", id, "--watch", "--interval", "200ms"], viewerEnv);
      const first = await watch.output(/^stage /m);
      expect(first).toContain(`rollout ${id}  fleet api  v1 → v3`);
      // Unchanged polls print nothing more.
      await new Promise((resolve) => setTimeout(resolve, 700));
      expect(watch.stdout().match(/^rollout /gm)).toHaveLength(1);

      const abort = await authority.call("POST", `/api/v1/rollouts/${id}/abort`);
      expect(abort.status).toBe(200);
      const done = await watch.done;
      expect(done.code, done.stderr).toBe(4);
      const frames = done.stdout.split(/^(?=rollout )/m);
      expect(frames.length).toBeGreaterThanOrEqual(2);
      expect(frames.at(-1)).toContain(`v1 → v3  aborted`);
      expect(done.stdout).not.toContain("\x1b");
    });

    it("hears of the change from the event stream: with a 30 s interval it still ends within seconds", async () => {
      const id = (await api("POST", "/fleets/api/rollouts", { version: 2 })).id as string;
      const watch = ctlRunning(
        ["rollout", "status", id, "--watch", "--interval", "30s", "-o", "json"],
        viewerEnv,
      );
      await watch.output(/^\{/m);
      // The stream opens beside the first poll; give it a moment before the change.
      await new Promise((resolve) => setTimeout(resolve, 500));
      const asked = Date.now();
      await api("POST", `/rollouts/${id}/abort`);
      const done = await watch.done;
      expect(done.code, done.stderr).toBe(4);
      expect(Date.now() - asked).toBeLessThan(5_000);
      expect(
        done.stdout
          .trimEnd()
          .split("\n")
          .map((line) => JSON.parse(line).rollout.phase),
      ).toEqual(["pending", "aborted"]);
    });

    it("lists rollouts newest first, the live ones with --live, also as history", async () => {
      const [all, live, text] = await Promise.all([
        json(["rollout", "list"]),
        json(["rollout", "history", "--live"]),
        ctl(["rollout", "list", "--fleet", "web"], viewerEnv),
      ]);
      expect(all.rollouts.map((r: { fleet: string }) => r.fleet)).toEqual(["api", "api", "web"]);
      expect(live.rollouts).toEqual([]);
      expect(text.stdout).toMatch(/^ID +FLEET +VERSIONS +PHASE +STAGE +CREATED +BY +REASON$/m);
      expect(text.stdout).toMatch(new RegExp(`^${started} +web +v1 → v2 +aborted +- `, "m"));
    });

    it("answers usage errors with exit 2: no id nor fleet, a bad interval, a bad version", async () => {
      const clean = { ...env, COHERENT_FLEET: undefined };
      const [noTarget, interval, version] = await Promise.all([
        ctl(["rollout", "status"], clean),
        ctl(["rollout", "status", started, "--watch", "--interval", "fast"], env),
        ctl(["rollout", "start", "web", "v2"], env),
      ]);
      expect(noTarget).toMatchObject({
        code: 2,
        stderr: "coherentctl: name a rollout ID, or its fleet with --fleet (or COHERENT_FLEET)\n",
      });
      expect(interval.code).toBe(2);
      expect(interval.stderr).toContain("must be a duration of at least 100ms");
      expect(version.code).toBe(2);
    });
  });
}

for (const { name, skip } of DIALECTS) {
  // Skipped only when COHERENT_TEST_NO_POSTGRES=1 (no Postgres on the machine): the PGlite run still covers it.
  describe.skipIf(skip)(
    `coherentctl rollout with the controller running, on ${name}`,
    { timeout: 60_000 },
    () => {
      const database = testDatabase(name);
      let home: string;
      let authority: TestAuthority;
      let env: Env;

      beforeAll(async () => {
        home = await mkdtemp(join(tmpdir(), "coherent-rollout-cli-"));
        authority = await startTestAuthority({
          database,
          settings: { controller: { enabled: true, tickMs: 100, webhooks: [] } },
        });
        env = cliEnv(home, authority.url, authority.adminToken);
        expect((await authority.call("POST", "/api/v1/fleets", { body: { name: "web" } })).status).toBe(201);
        for (const routes of [1, 2]) {
          const res = await authority.call("POST", "/api/v1/fleets/web/bundles", {
            body: { config: sampleConfig(routes) },
          });
          expect(res.status).toBe(201);
        }
      }, 60_000);

      afterAll(async () => {
        await authority?.close();
        await dropSchema(database);
        await rm(home, { recursive: true, force: true });
      });

      it("waits with status --watch until the controller finishes the rollout, then exits 0", async () => {
        // One stage, no bake, no traffic needed: the controller starts it and promotes it at once.
        const plan = join(home, "plan.json");
        await writeFile(
          plan,
          JSON.stringify({ stages: [{ name: "all", fleet_percent: 100, min_requests: 0 }] }),
        );
        const start = await ctl(["rollout", "start", "web", "2", "--plan", plan], env);
        expect(start, start.stderr).toMatchObject({ code: 0 });
        const watch = await ctl(
          ["rollout", "status", "--fleet", "web", "--watch", "--interval", "200ms"],
          env,
        );
        expect(watch, watch.stderr).toMatchObject({ code: 0 });
        expect(watch.stdout).toContain("v1 → v2  succeeded");
        expect(watch.stdout).toContain("succeeded: v2 is the fleet's stable version");
        const state = await authority.call("GET", "/api/v1/fleets/web/state");
        expect(state.body).toMatchObject({ stable_version: 2 });
      });
    },
  );
}
