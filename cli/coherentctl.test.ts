import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { contentHash, parseDynamicConfig } from "../services/config/index.js";

const ROOT = join(import.meta.dirname, "..");
const EXAMPLE = join(ROOT, "deploy/examples/config.yaml");

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real coherentctl entry point in its own process. */
function coherentctl(args: string[], stdin?: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      ["--import", "tsx", join(ROOT, "cli/coherentctl.ts"), ...args],
      { cwd: ROOT, timeout: 15_000 },
      (error, stdout, stderr) => {
        const code = error && typeof error.code === "number" ? error.code : error ? -1 : 0;
        resolve({ code, stdout, stderr });
      },
    );
    if (stdin !== undefined) child.stdin?.end(stdin);
  });
}

describe("coherentctl bundle validate", () => {
  let dir: string;
  let broken: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "coherentctl-"));
    const example = await readFile(EXAMPLE, "utf8");
    broken = join(dir, "broken.yaml");
    await writeFile(
      broken,
      example.replace("pool: static-pool", "pool: statc-pool").replace("timeout: 2s", "tiemout: 2s"),
    );
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("accepts the example config, prints its content hash and exits 0", async () => {
    const run = await coherentctl(["bundle", "validate", EXAMPLE]);
    const parsed = parseDynamicConfig(await readFile(EXAMPLE, "utf8"));
    if (!parsed.ok) throw new Error("the example config must be valid");
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("valid");
    expect(run.stdout).toContain(contentHash(parsed.value));
  });

  it("answers one JSON document with --output json", async () => {
    const run = await coherentctl(["bundle", "validate", EXAMPLE, "--output", "json"]);
    const answer = JSON.parse(run.stdout);
    expect(run.code).toBe(0);
    expect(answer).toMatchObject({ valid: true, kind: "dynamic", summary: { routes: 2, pools: 3 } });
    expect(answer.content_sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it("lists every error with file, line, column and path, and exits 3", async () => {
    const run = await coherentctl(["bundle", "validate", broken]);
    expect(run.code).toBe(3);
    expect(run.stdout).toMatch(
      /broken\.yaml:\d+:\d+ routes\[1\]\.pool: unknown pool "statc-pool" \(did you mean "static-pool"\?\)/,
    );
    expect(run.stdout).toMatch(
      /broken\.yaml:\d+:\d+ routes\[1\]\.policy\.tiemout: unknown field "tiemout" \(did you mean "timeout"\?\)/,
    );
    expect(run.stdout).toContain("invalid (2 errors)");
  });

  it("gives the errors with their codes in JSON", async () => {
    const run = await coherentctl(["bundle", "validate", broken, "-o", "json"]);
    const answer = JSON.parse(run.stdout);
    expect(run.code).toBe(3);
    expect(answer.valid).toBe(false);
    expect(answer.errors.map((e: { code: string; path: string }) => [e.code, e.path])).toEqual([
      ["unknown_reference", "routes[1].pool"],
      ["unknown_field", "routes[1].policy.tiemout"],
    ]);
  });

  it('reads standard input when the file is "-"', async () => {
    const run = await coherentctl(["bundle", "validate", "-"], "routes:\n  - id: r\n    pool: nowhere\n");
    expect(run.code).toBe(3);
    expect(run.stdout).toContain('<stdin>:3:5 routes[0].pool: unknown pool "nowhere"');
  });

  it("validates a static config with --static", async () => {
    const file = join(dir, "static.yaml");
    await writeFile(file, 'admin_address: ":9090"\nworkers: auto\nlogging:\n  level: info\n');
    expect((await coherentctl(["bundle", "validate", "--static", file])).code).toBe(0);
    await writeFile(file, "workers: 0\n");
    const run = await coherentctl(["bundle", "validate", "--static", file]);
    expect(run.code).toBe(3);
    expect(run.stdout).toContain("workers");
  });

  it("exits 1 with a message on stderr when the file cannot be read", async () => {
    const run = await coherentctl(["bundle", "validate", join(dir, "missing.yaml")]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain("cannot read");
    expect(run.stdout).toBe("");
  });

  it("exits 2 on a usage error and 0 on --help", async () => {
    const usage = await coherentctl(["bundle", "validate", "--bogus", EXAMPLE]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain("unknown option");
    const help = await coherentctl(["bundle", "validate", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("Usage: coherentctl bundle validate");
  });
});
