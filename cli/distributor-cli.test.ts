/**
 * `coherent distributor` as a real process: its help, its usage errors, a start on a cold
 * cache with no authority reachable (not ready) and on a warm one (ready, serving an agent from
 * the cache), flags from COHERENT_DISTRIBUTOR_* variables and from a settings file (flag over
 * variable over file), and a clean exit on SIGTERM.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateSigningKey, Keyring } from "../services/bundle/index.js";
import { DiskCache } from "../services/distributor/disk-cache.js";
import { fleetState, signedBundle, TestAgent } from "../services/distributor/test-support.js";

const ROOT = join(import.meta.dirname, "..");
const COMMAND = ["--import", "tsx", join(ROOT, "cli", "coherent.ts"), "distributor"];

type Env = Record<string, string | undefined>;

function cleanEnv(): Env {
  const env: Env = {};
  for (const [name, value] of Object.entries(process.env))
    if (!name.startsWith("COHERENT_")) env[name] = value;
  return env;
}

function run(
  args: string[],
  env: Env = cleanEnv(),
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [...COMMAND, ...args],
      { cwd: ROOT, env, timeout: 30_000 },
      (error, stdout, stderr) => {
        const code = error && typeof error.code === "number" ? error.code : error ? -1 : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

interface Started {
  readonly child: ChildProcess;
  readonly listening: Record<string, unknown>;
  readonly exited: Promise<number | null>;
}

/** Spawns the distributor and resolves with its "distributor listening" line. */
async function start(args: string[], env: Env): Promise<Started> {
  const child = spawn(process.execPath, [...COMMAND, ...args], {
    cwd: ROOT,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = once(child, "exit").then(([code]) => code as number | null);
  let stderr = "";
  child.stderr?.on("data", (chunk) => {
    stderr += chunk;
  });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const listening = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no listening line within 15 s; stderr: ${stderr}`)),
      15_000,
    );
    lines.on("line", (line) => {
      const parsed = JSON.parse(line) as Record<string, unknown>;
      if (parsed.msg === "distributor listening") {
        clearTimeout(timer);
        resolve(parsed);
      }
    });
    exited.then((code) => reject(new Error(`exited with ${code}: ${stderr}`)));
  });
  return { child, listening, exited };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe("coherent distributor", { timeout: 60_000 }, () => {
  let dir: string;
  let keyFile: string;
  let warmCache: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "coherent-distributor-cli-"));
    const generated = await generateSigningKey();
    keyFile = join(dir, "keys", "signing.pub.pem");
    await mkdir(join(dir, "keys"));
    await mkdir(join(dir, "empty"));
    await writeFile(keyFile, generated.publicPem);
    warmCache = join(dir, "warm");
    const cache = await DiskCache.open({
      dir: warmCache,
      keyring: await Keyring.from([{ pem: generated.publicPem }]),
    });
    await cache.putBundle(await signedBundle(generated.key, 1));
    await cache.putState(fleetState({ stableVersion: 1, generation: 1 }));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("explains every flag and its environment variable in --help", async () => {
    const help = await run(["--help"]);
    expect(help.code).toBe(0);
    for (const flag of [
      "--region",
      "--authority",
      "--listen",
      "--cache-dir",
      "--trusted-keys",
      "--id",
      "--http-listen",
      "--tls-cert",
      "--tls-key",
      "--tls-client-ca",
      "--authority-ca",
      "--authority-cert",
      "--authority-key",
    ]) {
      expect(help.stdout).toContain(flag);
      const env = `COHERENT_DISTRIBUTOR_${flag.slice(2).toUpperCase().replaceAll("-", "_")}`;
      expect(help.stdout.replace(/\s+/g, " ")).toContain(env);
    }
  });

  it("refuses bad or inconsistent flags with exit code 2 and says which", async () => {
    const base = ["--authority", "127.0.0.1:1", "--cache-dir", join(dir, "c"), "--trusted-keys", keyFile];
    // One after the other: each process compiles the CLI, which takes a core for a while.
    const badAddress = await run([...base, "--region", "eu", "--authority", "nowhere"]);
    expect(badAddress.code).toBe(2);
    expect(badAddress.stderr).toContain("--authority");
    const caOnly = await run([...base, "--region", "eu", "--tls-client-ca", keyFile]);
    expect(caOnly.code).toBe(2);
    expect(caOnly.stderr).toContain("--tls-client-ca needs --tls-cert");
    const noKeys = await run([...base, "--region", "eu", "--trusted-keys", join(dir, "empty")]);
    expect(noKeys.code).toBe(2);
    expect(noKeys.stderr).toContain("no trusted key");
  });

  it("starts on a cold cache not ready, with flags from the environment, and exits 0 on SIGTERM", async () => {
    const env = {
      ...cleanEnv(),
      COHERENT_DISTRIBUTOR_REGION: "eu-west",
      COHERENT_DISTRIBUTOR_AUTHORITY: `127.0.0.1:${await freePort()}`,
      COHERENT_DISTRIBUTOR_CACHE_DIR: join(dir, "cold"),
      COHERENT_DISTRIBUTOR_TRUSTED_KEYS: join(dir, "keys"),
      COHERENT_DISTRIBUTOR_ID: "dist-env",
    };
    const started = await start(["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"], env);
    expect(started.listening).toMatchObject({ id: "dist-env", region: "eu-west", cached_fleets: 0 });
    expect(started.listening.address).toMatch(/^127\.0\.0\.1:[1-9]\d*$/);
    const healthz = await fetch(`http://${started.listening.http}/healthz`);
    expect(healthz.status).toBe(503);
    started.child.kill("SIGTERM");
    expect(await started.exited).toBe(0);
  });

  it("serves an agent from a warm cache with no authority reachable", async () => {
    const started = await start(
      [
        "--region",
        "eu-west",
        "--authority",
        `127.0.0.1:${await freePort()}`,
        "--cache-dir",
        warmCache,
        "--trusted-keys",
        keyFile,
        "--listen",
        "127.0.0.1:0",
        "--http-listen",
        "127.0.0.1:0",
      ],
      cleanEnv(),
    );
    try {
      expect(started.listening).toMatchObject({ cached_fleets: 1 });
      expect((await fetch(`http://${started.listening.http}/healthz`)).status).toBe(200);
      const { client, open } = TestAgent.connect(Number(String(started.listening.address).split(":")[1]));
      const agent = open();
      agent.hello({ agentId: "a-1" });
      expect((await agent.next(5_000)).kind?.$case).toBe("welcome");
      expect(await agent.next(5_000)).toMatchObject({
        kind: { $case: "bundleUpdate", value: { version: 1 } },
      });
      agent.call.cancel();
      client.close();
    } finally {
      started.child.kill("SIGTERM");
      expect(await started.exited).toBe(0);
    }
  });

  it("reads a settings file; a flag and a variable each win over it; a bad or incomplete one is a usage error", async () => {
    const settings = join(dir, "distributor.yaml");
    await writeFile(
      settings,
      [
        "region: from-file",
        `authority: ["127.0.0.1:${await freePort()}"]`,
        `cache_dir: ${JSON.stringify(join(dir, "from-file"))}`,
        `trusted_keys: [${JSON.stringify(keyFile)}]`,
        "id: dist-file",
        'listen: "127.0.0.1:0"',
        'http_listen: "off"',
        "health_flush: 2s",
      ].join("\n"),
    );
    const started = await start(["--config", settings, "--id", "dist-flag"], {
      ...cleanEnv(),
      COHERENT_DISTRIBUTOR_REGION: "from-env",
    });
    try {
      expect(started.listening).toMatchObject({ id: "dist-flag", region: "from-env" });
      // http_listen: "off" came from the file, which the flag and variable above left alone.
      expect(started.listening.http).toBeUndefined();
    } finally {
      started.child.kill("SIGTERM");
      expect(await started.exited).toBe(0);
    }
    const viaVariable = await start([], { ...cleanEnv(), COHERENT_DISTRIBUTOR_CONFIG: settings });
    try {
      expect(viaVariable.listening).toMatchObject({ id: "dist-file", region: "from-file" });
    } finally {
      viaVariable.child.kill("SIGTERM");
      expect(await viaVariable.exited).toBe(0);
    }

    const incomplete = join(dir, "incomplete.yaml");
    await writeFile(incomplete, "region: eu\n");
    const missing = await run(["--config", incomplete]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("missing --authority");
    expect(missing.stderr).toContain("COHERENT_DISTRIBUTOR_AUTHORITY");
    const bad = join(dir, "bad.yaml");
    await writeFile(bad, "region: eu\nauthority: [':7401']\nhealth_flush: 1ms\nregoin: x\n");
    const invalid = await run(["--config", bad]);
    expect(invalid.code).toBe(2);
    expect(invalid.stderr).toContain("authority.0: must name the host");
    expect(invalid.stderr).toContain("health_flush");
    expect(invalid.stderr).toContain("regoin");
  });
});
