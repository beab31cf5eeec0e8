/**
 * coherentctl and coherent as real processes against a real authority: started in this test
 * process on embedded PGlite in a temp directory, with its first admin token bootstrapped by
 * `coherent token create` on that directory before it starts.
 */
import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdir, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resolveAuthoritySettings } from "../authority/config.js";
import { type AuthorityHandle, startAuthority } from "../authority/main.js";
import { openDatabase } from "../authority/store/index.js";
import { MIGRATIONS } from "../migrations/index.js";
import { createLogger } from "../services/telemetry/logger.js";

const ROOT = join(import.meta.dirname, "..");
const BODY_LIMIT = 256 * 1024;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

type Env = Record<string, string | undefined>;

/** The environment of every child: none of the developer's COHERENT_* settings or config file. */
function cleanEnv(home: string): Env {
  const env: Env = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith("COHERENT_") && name !== "DATABASE_URL") env[name] = value;
  }
  return { ...env, HOME: home, XDG_CONFIG_HOME: join(home, ".config") };
}

function run(binary: "coherentctl" | "coherent", args: string[], env: Env, stdin?: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      ["--import", "tsx", join(ROOT, "cli", `${binary}.ts`), ...args],
      { cwd: ROOT, env, timeout: 15_000, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error && typeof error.code === "number" ? error.code : error ? -1 : 0;
        resolve({ code, stdout, stderr });
      },
    );
    child.stdin?.end(stdin);
  });
}

function config(timeout: string, extra = ""): string {
  return `routes:
  - id: api
    path_prefix: /
    pool: api-pool
    policy:
      timeout: ${timeout}
pools:
  - id: api-pool
    endpoints:
      - address: 127.0.0.1:9001
${extra}`;
}

// Each command is a process of its own (about a second each, more on a busy machine).
describe("coherentctl against a running authority", { timeout: 60_000 }, () => {
  let dir: string;
  let env: Env;
  let adminToken: string;
  let authority: AuthorityHandle;
  const ctl = (args: string[], extra: Env = {}, stdin?: string) =>
    run("coherentctl", args, { ...env, COHERENT_TOKEN: adminToken, ...extra }, stdin);
  const file = async (name: string, text: string) => {
    const path = join(dir, name);
    await writeFile(path, text);
    return path;
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "coherent-cli-"));
    env = cleanEnv(dir);
    const dataDir = join(dir, "data");
    const bootstrap = await run(
      "coherent",
      ["token", "create", "--data-dir", dataDir, "--role", "admin", "--name", "root", "-o", "json"],
      env,
    );
    expect(bootstrap.stderr).toContain("shown only this once");
    expect(bootstrap.code).toBe(0);
    adminToken = JSON.parse(bootstrap.stdout).token;
    const settings = await resolveAuthoritySettings(
      { dataDir, listen: "127.0.0.1:0", feedListen: "127.0.0.1:0" },
      {},
    );
    authority = await startAuthority(
      { ...settings, bodyLimit: BODY_LIMIT },
      { logger: createLogger({ name: "authority", level: "silent" }) },
    );
    env.COHERENT_SERVER = authority.url;
    expect((await ctl(["fleet", "create", "web", "--description", "web tier"])).code).toBe(0);
  }, 60_000);

  afterAll(async () => {
    await authority?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("submits a config as version 1, answers unchanged for the same content, and version 2 for a change", async () => {
    const first = await ctl([
      "bundle",
      "submit",
      await file("v1.yaml", config("2s")),
      "--fleet",
      "web",
      "-m",
      "first",
    ]);
    expect(first.stdout).toContain("fleet web: version 1 created");
    expect(first.code).toBe(0);

    const again = await ctl(["bundle", "submit", join(dir, "v1.yaml"), "--fleet", "web", "-o", "json"]);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ status: "unchanged", fleet: "web", version: 1 });

    const second = await ctl(
      ["bundle", "submit", "-", "--fleet", "web", "-m", "raise the timeout", "-o", "json"],
      {},
      config("3s"),
    );
    expect(second.code).toBe(0);
    expect(JSON.parse(second.stdout)).toMatchObject({ status: "created", version: 2, parent: 1 });
  });

  it("lists bundles newest first, as a table and as JSON", async () => {
    const table = await ctl(["bundle", "list", "--fleet", "web"]);
    expect(table.code).toBe(0);
    const lines = table.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^VERSION\s+PARENT\s+CREATED\s+BY\s+SHA256\s+MESSAGE$/);
    expect(lines[1]).toMatch(/^2\s+1\s+\S+Z\s+token:root\s+[0-9a-f]{12}\s+raise the timeout$/);
    expect(lines[2]).toMatch(/^1\s+-\s/);

    const json = JSON.parse(
      (await ctl(["bundle", "list", "--fleet", "web", "--limit", "1", "-o", "json"])).stdout,
    );
    expect(json.bundles.map((b: { version: number }) => b.version)).toEqual([2]);
  });

  it("shows a bundle with its config, and its JWS alone with --jws", async () => {
    const text = await ctl(["bundle", "show", "2", "--fleet", "web"]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^version:\s+2$/m);
    expect(text.stdout).toMatch(/^created by:\s+token:root$/m);
    expect(text.stdout).toContain("timeout: 3000");

    const json = JSON.parse((await ctl(["bundle", "show", "1", "--fleet", "web", "-o", "json"])).stdout);
    expect(json).toMatchObject({ fleet: "web", version: 1, parent: null, message: "first" });
    expect(json.config.routes[0].policy.timeout).toBe(2000);

    const jws = await ctl(["bundle", "show", "1", "--fleet", "web", "--jws"]);
    expect(jws.stdout.trim()).toBe(json.jws);
    expect(json.jws.split(".")).toHaveLength(3);
  });

  it("diffs two versions by ids", async () => {
    const text = await ctl(["bundle", "diff", "1", "2", "--fleet", "web"]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain("1 change from version 1 to 2");
    expect(text.stdout).toContain("routes[api].policy.timeout: 2000 → 3000");

    const json = JSON.parse((await ctl(["bundle", "diff", "2", "2", "--fleet", "web", "-o", "json"])).stdout);
    expect(json.changes).toEqual([]);
  });

  it("rejects an invalid config with every error and its path, exits 3 and writes nothing", async () => {
    const broken = await file(
      "broken.yaml",
      config("2s").replace("pool: api-pool", "pool: nowhere").replace("timeout: 2s", "tiemout: 2s"),
    );
    const text = await ctl(["bundle", "submit", broken, "--fleet", "web"]);
    expect(text.code).toBe(3);
    expect(text.stdout).toMatch(/broken\.yaml:4:5 routes\[0\]\.pool: unknown pool "nowhere"/);
    expect(text.stdout).toMatch(/broken\.yaml:\d+:\d+ routes\[0\]\.policy\.tiemout: unknown field "tiemout"/);
    expect(text.stdout).toContain("rejected by the authority (2 errors)");

    const json = await ctl(["bundle", "submit", broken, "--fleet", "web", "-o", "json"]);
    expect(json.code).toBe(3);
    expect(JSON.parse(json.stdout).errors.map((e: { path: string }) => e.path)).toEqual([
      "routes[0].pool",
      "routes[0].policy.tiemout",
    ]);

    const syntax = await ctl(["bundle", "submit", "-", "--fleet", "web"], {}, "routes: [\n");
    expect(syntax.code).toBe(3);
    expect(syntax.stdout).toMatch(/^<stdin>:\d+:\d+ .*flow collection/m);

    const governance = await ctl(
      ["bundle", "submit", "-", "--fleet", "web"],
      {},
      config("2s").replace("    policy:\n      timeout: 2s\n", ""),
    );
    expect(governance.code).toBe(3);
    expect(governance.stdout).toContain('routes[0].policy.timeout: route "api" has no timeout');

    const list = JSON.parse((await ctl(["bundle", "list", "--fleet", "web", "-o", "json"])).stdout);
    expect(list.bundles.map((b: { version: number }) => b.version)).toEqual([2, 1]);
  });

  it("reports an oversized config, an unknown fleet and an unknown version with exit 1", async () => {
    const huge = await file("huge.yaml", config("4s", `# ${"x".repeat(BODY_LIMIT)}\n`));
    const tooLarge = await ctl(["bundle", "submit", huge, "--fleet", "web"]);
    expect(tooLarge.code).toBe(1);
    expect(tooLarge.stderr).toContain("(body_too_large)");

    const fleet = await ctl(["bundle", "list", "--fleet", "nope"]);
    expect(fleet.code).toBe(1);
    expect(fleet.stderr).toBe('coherentctl: no fleet "nope" (unknown_fleet)\n');

    const version = await ctl(["bundle", "show", "99", "--fleet", "web"]);
    expect(version.code).toBe(1);
    expect(version.stderr).toContain("(unknown_version)");
  });

  it("refuses a bad or missing token and a too-low role with exit 1 and a message naming the fix", async () => {
    const bad = await ctl(["bundle", "list", "--fleet", "web", "--token", "coh_not-a-real-token"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("refused the token (unauthorized)");
    expect(bad.stdout).toBe("");

    const none = await ctl(["bundle", "list", "--fleet", "web"], { COHERENT_TOKEN: undefined });
    expect(none.code).toBe(1);
    expect(none.stderr).toContain("no token (unauthorized): pass --token, set COHERENT_TOKEN");

    const viewer = JSON.parse(
      (await ctl(["token", "create", "--name", "dash", "--role", "viewer", "-o", "json"])).stdout,
    );
    const submit = await ctl(["bundle", "submit", join(dir, "v1.yaml"), "--fleet", "web"], {
      COHERENT_TOKEN: viewer.token,
    });
    expect(submit.code).toBe(1);
    expect(submit.stderr).toContain("needs a token with the operator role (forbidden)");
  });

  it("creates, lists and revokes tokens; a revoked token is refused", async () => {
    const created = await ctl(["token", "create", "--name", "ci", "--role", "operator"]);
    expect(created.code).toBe(0);
    const token = /^token:\s+(coh_\S+)$/m.exec(created.stdout)?.[1];
    const id = /^id:\s+(\S+)$/m.exec(created.stdout)?.[1];
    expect(token).toBeDefined();
    expect(id).toBeDefined();
    expect((await ctl(["fleet", "list"], { COHERENT_TOKEN: token })).code).toBe(0);

    const list = await ctl(["token", "list"]);
    expect(list.stdout).toMatch(new RegExp(`^${id}\\s+ci\\s+operator\\s+\\S+Z\\s+token:root\\s+-$`, "m"));
    expect(list.stdout).not.toContain(token);

    const revoke = await ctl(["token", "revoke", id ?? ""]);
    expect(revoke.code).toBe(0);
    expect(revoke.stdout).toBe(`token ${id} revoked\n`);
    const listed = JSON.parse((await ctl(["token", "list", "-o", "json"])).stdout);
    expect(listed.tokens.find((t: { id: string }) => t.id === id).revoked_at).toMatch(/Z$/);
    expect((await ctl(["fleet", "list"], { COHERENT_TOKEN: token })).code).toBe(1);
    expect((await ctl(["token", "revoke", id ?? ""])).stderr).toContain("(unknown_token)");
  });

  it("reads the server and token from the config file", async () => {
    await mkdir(join(dir, ".config", "coherent"), { recursive: true });
    await writeFile(
      join(dir, ".config", "coherent", "config.yaml"),
      `server: ${authority.url}\ntoken: ${adminToken}\n`,
    );
    const fromDefault = await ctl(["fleet", "list"], {
      COHERENT_SERVER: undefined,
      COHERENT_TOKEN: undefined,
    });
    expect(fromDefault.code).toBe(0);
    expect(fromDefault.stdout).toMatch(/^web\s+\S+Z\s+web tier$/m);

    const named = await file("ctl.yaml", "token: coh_wrong\n");
    const flagWins = await ctl(["fleet", "list"], { COHERENT_CONFIG: named, COHERENT_TOKEN: undefined });
    expect(flagWins.code).toBe(1);
    const missing = await ctl(["fleet", "list"], { COHERENT_CONFIG: join(dir, "absent.yaml") });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("cannot read the config file");
    const wrong = await ctl(["fleet", "list", "--config", await file("wrong.yaml", "sever: x\n")]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain("it holds only server and token");
  });

  it("says so when the authority cannot be reached", async () => {
    const unreachable = await ctl(["fleet", "list", "--server", "http://127.0.0.1:1"]);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toContain("cannot reach the authority at http://127.0.0.1:1");
  });

  it("lists audit entries with filters and verifies the chain", async () => {
    const all = JSON.parse((await ctl(["audit", "list", "-o", "json"])).stdout);
    const actions = all.entries.map((e: { action: string }) => e.action);
    expect(actions).toEqual(
      expect.arrayContaining(["token.create", "fleet.create", "bundle.submit", "token.revoke"]),
    );
    expect(all.entries.findLast((e: { action: string }) => e.action === "token.create").actor).toMatch(
      /^cli:/,
    );

    const submits = JSON.parse(
      (
        await ctl([
          "audit",
          "list",
          "--action",
          "bundle.submit",
          "--target",
          "fleet:web",
          "--since",
          "1h",
          "-o",
          "json",
        ])
      ).stdout,
    );
    expect(submits.entries.map((e: { details: { version: number } }) => e.details.version)).toEqual([2, 1]);
    const table = await ctl(["audit", "list", "--action", "fleet.create"]);
    expect(table.stdout.trimEnd()).toMatch(
      /^SEQ\s+AT\s+ACTOR\s+ACTION\s+TARGET\s+DETAILS\n\d+\s+\S+Z\s+token:root\s+fleet\.create\s+fleet:web\s+\{"description":"web tier"\}$/,
    );

    const verified = await ctl(["audit", "verify"]);
    expect(verified.code).toBe(0);
    expect(verified.stdout).toMatch(/^audit log intact: \d+ entries verified$/m);
  });

  it("names the first broken entry when a row was edited behind the app's back, and exits 3", async () => {
    const seq = JSON.parse((await ctl(["audit", "list", "--action", "fleet.create", "-o", "json"])).stdout)
      .entries[0].seq;
    await sql`update audit_log set details = ${JSON.stringify({ description: "edited" })}::jsonb where seq = ${seq}`.execute(
      authority.database.db,
    );
    const text = await ctl(["audit", "verify"]);
    expect(text.code).toBe(3);
    expect(text.stdout).toContain(`audit log broken at entry ${seq}:`);
    const json = JSON.parse((await ctl(["audit", "verify", "-o", "json"])).stdout);
    expect(json).toMatchObject({ ok: false, broken_at: { seq } });
  });

  it("answers --help for every command and exits 2 on usage errors", async () => {
    const commands = [
      [],
      ["bundle"],
      ["bundle", "submit"],
      ["bundle", "list"],
      ["bundle", "show"],
      ["bundle", "diff"],
      ["fleet", "create"],
      ["fleet", "list"],
      ["audit", "list"],
      ["audit", "verify"],
      ["token", "create"],
      ["token", "list"],
      ["token", "revoke"],
    ];
    const helps = await Promise.all(commands.map((words) => ctl([...words, "--help"])));
    for (const [index, help] of helps.entries()) {
      expect(help.code).toBe(0);
      expect(help.stdout).toContain(`Usage: coherentctl ${commands[index]?.join(" ")}`.trimEnd());
    }
    expect(helps[3]?.stdout).toContain("--server <url>");

    const usage = await Promise.all([
      ctl(["bundle", "list"]),
      ctl(["bundle", "show", "abc", "--fleet", "web"]),
      ctl(["audit", "list", "--since", "yesterday"]),
      ctl(["token", "create", "--name", "x", "--role", "root"]),
      ctl(["fleet", "list", "--server", "not a url"]),
    ]);
    expect(usage.map((r) => r.code)).toEqual([2, 2, 2, 2, 2]);
    expect(usage[0]?.stderr).toContain("required option '--fleet <name>' not specified");
  });
});

describe("coherent (the authority's command line)", { timeout: 60_000 }, () => {
  let dir: string;
  let env: Env;
  const coherent = (args: string[]) => run("coherent", args, env);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "coherent-admin-"));
    env = cleanEnv(dir);
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("generates a key pair with a private file only its owner can read, and never overwrites one", async () => {
    const keys = join(dir, "keys");
    const made = await coherent(["keys", "generate", "--dir", keys, "--name", "a", "-o", "json"]);
    expect(made.code).toBe(0);
    const answer = JSON.parse(made.stdout);
    expect(answer.kid).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect((await stat(answer.private_file)).mode & 0o777).toBe(0o600);
    expect((await stat(answer.public_file)).mode & 0o777).toBe(0o644);

    const again = await coherent(["keys", "generate", "--dir", keys, "--name", "a"]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("already exists");
  });

  it("migrates a fresh database once", async () => {
    const dataDir = join(dir, "migrate");
    const first = await coherent(["migrate", "--data-dir", dataDir, "-o", "json"]);
    expect(first.code).toBe(0);
    expect(JSON.parse(first.stdout).applied).toEqual(Object.keys(MIGRATIONS));
    const second = await coherent(["migrate", "--data-dir", dataDir]);
    expect(second.stdout).toContain("is up to date");
  });

  it("rotates the signing key: the new one active, the old one trusted, each rotation audited", async () => {
    const dataDir = join(dir, "rotate");
    const keys = join(dir, "rotate-keys");
    const a = JSON.parse(
      (await coherent(["keys", "generate", "--dir", keys, "--name", "a", "-o", "json"])).stdout,
    );
    const b = JSON.parse(
      (await coherent(["keys", "generate", "--dir", keys, "--name", "b", "-o", "json"])).stdout,
    );
    expect((await coherent(["keys", "rotate", "--data-dir", dataDir, "--key", a.private_file])).code).toBe(0);
    const rotated = await coherent(["keys", "rotate", "--data-dir", dataDir, "--key", b.public_file]);
    expect(rotated.code).toBe(0);
    expect(rotated.stdout).toContain(`key ${b.kid} is now the active signing key; ${a.kid} stays trusted`);
    const same = await coherent([
      "keys",
      "rotate",
      "--data-dir",
      dataDir,
      "--key",
      b.private_file,
      "-o",
      "json",
    ]);
    expect(JSON.parse(same.stdout)).toEqual({ kid: b.kid, previous: b.kid, changed: false });

    const listed = JSON.parse((await coherent(["keys", "list", "--data-dir", dataDir, "-o", "json"])).stdout);
    expect(listed.keys.map((k: { kid: string; status: string }) => [k.kid, k.status])).toEqual([
      [a.kid, "trusted"],
      [b.kid, "active"],
    ]);
    const table = await coherent(["keys", "list", "--data-dir", dataDir]);
    expect(table.stdout).toMatch(new RegExp(`^${b.kid}\\s+active\\s`, "m"));

    const notAKey = await coherent([
      "keys",
      "rotate",
      "--data-dir",
      dataDir,
      "--key",
      join(keys, "missing.pem"),
    ]);
    expect(notAKey.code).toBe(1);
    expect(notAKey.stderr).toContain("cannot read");

    const database = await openDatabase({ dataDir: join(dataDir, "pglite") });
    try {
      const audit = await database.db
        .selectFrom("audit_log")
        .select(["action", "target", "details"])
        .orderBy("seq")
        .execute();
      expect(audit).toEqual([
        {
          action: "key.rotate",
          target: `key:${a.kid}`,
          details: expect.objectContaining({ previous: null }),
        },
        {
          action: "key.rotate",
          target: `key:${b.kid}`,
          details: expect.objectContaining({ previous: a.kid }),
        },
      ]);
    } finally {
      await database.close();
    }
  });

  it("runs the authority until SIGTERM, then exits 0", async () => {
    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        join(ROOT, "cli/coherent.ts"),
        "authority",
        "--data-dir",
        join(dir, "serve"),
        "--listen",
        "127.0.0.1:0",
        "--feed-listen",
        "127.0.0.1:0",
      ],
      { cwd: ROOT, env, stdio: ["ignore", "pipe", "inherit"] },
    );
    try {
      let url: string | undefined;
      for await (const line of createInterface({ input: child.stdout })) {
        const entry = JSON.parse(line);
        if (entry.event === "authority_started") {
          url = entry.url;
          break;
        }
      }
      const health = await fetch(`${url}/healthz`);
      expect(health.status).toBe(200);
      const exited = once(child, "exit");
      child.kill("SIGTERM");
      const [code] = await exited;
      expect(code).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });

  it("explains settings it cannot use with exit 2, and answers --help for every command", async () => {
    const listen = await coherent(["authority", "--data-dir", join(dir, "bad"), "--listen", "nowhere"]);
    expect(listen.code).toBe(2);
    expect(listen.stderr).toMatch(/^coherent: invalid listen address "nowhere"/);

    const commands = [
      [],
      ["authority"],
      ["migrate"],
      ["keys", "generate"],
      ["keys", "list"],
      ["keys", "rotate"],
      ["token", "create"],
    ];
    const helps = await Promise.all(commands.map((words) => coherent([...words, "--help"])));
    for (const [index, help] of helps.entries()) {
      expect(help.code).toBe(0);
      expect(help.stdout).toContain(`Usage: coherent ${commands[index]?.join(" ")}`.trimEnd());
    }
  });
});
