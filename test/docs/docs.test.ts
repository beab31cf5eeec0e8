/**
 * The reference docs stay generated from the code: the committed docs/config.md and docs/cli.md
 * are what scripts/docs-generate.ts makes now, every config field has a description, and the
 * generated tables carry the fields and commands they must.
 */
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { walkConfig } from "../../scripts/docs/config-fields.js";
import { configReference } from "../../scripts/docs/config-reference.js";
import { fillRegions } from "../../scripts/docs/regions.js";
import { duration, strict } from "../../services/config/schema/primitives.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const run = promisify(execFile);

describe("reference docs", () => {
  it("are up to date with the schemas and the programs' help", { timeout: 60_000 }, async () => {
    const { stdout } = await run(
      process.execPath,
      ["--import", "tsx", "scripts/docs-generate.ts", "--check"],
      {
        cwd: root,
        timeout: 60_000,
      },
    );
    expect(stdout).toContain("docs: up to date");
  });

  it("describe every field of every config", () => {
    expect(configReference().undescribed).toEqual([]);
  });

  it("list nested fields with their type, requiredness and default", async () => {
    const dynamic = configReference().regions.get("dynamic") ?? "";
    expect(dynamic).toContain(
      "| `routes[].policy.retries.max_attempts` | integer, ≥ 1, ≤ 10 | yes |  | All attempts, the first included |",
    );
    expect(dynamic).toMatch(
      /\| `pools\[\]\.connection_pool\.connect_timeout` \| duration, ≥ 1ms, ≤ 1h \| no \| 5s \|/,
    );
    expect(dynamic).toMatch(
      /\| `middleware\[\]\.stages\[\]\.config\.jwt\.issuer` \(type: auth\) \| string \| yes \|/,
    );
    const doc = await readFile(`${root}/docs/config.md`, "utf8");
    expect(doc).toContain("`control_plane.trusted_keys[].kid`");
    expect(doc).toContain("`governance.max_routes`");
  });

  it("show every command's help", async () => {
    const doc = await readFile(`${root}/docs/cli.md`, "utf8");
    expect(doc).toContain("### `coherentctl rollout start`");
    expect(doc).toContain("### `coherent distributor`");
    expect(doc).toMatch(/### `proxy`\n\n```text\nUsage: proxy \[options\]/);
  });
});

describe("the config walker", () => {
  it("reports a field without a description as a gap", () => {
    const walk = walkConfig(
      strict({ outer: strict({ inner: z.string() }).optional().describe("Described") }),
    );
    expect(walk.undescribed).toEqual(["outer.inner"]);
  });

  it("names a notation with its bounds in the notation's units", () => {
    const walk = walkConfig(
      strict({ wait: duration({ min: 500, max: 7_200_000 }).describe("A wait (default 1s)") }),
    );
    expect(walk.rows).toEqual([
      {
        path: "wait",
        type: "duration, ≥ 500ms, ≤ 2h",
        required: true,
        defaultValue: "1s",
        description: "A wait",
      },
    ]);
    expect([...walk.notations]).toEqual(["duration"]);
  });
});

describe("generated regions", () => {
  it("replace only the text between their markers", () => {
    const doc = [
      "intro",
      "<!-- BEGIN GENERATED a: npm run docs rewrites this part -->",
      "old",
      "<!-- END GENERATED a -->",
      "outro",
    ].join("\n");
    const filled = fillRegions(doc, "x.md", new Map([["a", "new"]]));
    expect(filled).toBe(doc.replace("old", "\nnew\n"));
  });

  it("name a region whose markers are missing", () => {
    expect(() => fillRegions("no markers", "x.md", new Map([["a", "new"]]))).toThrow(
      /x\.md: no generated region "a"/,
    );
  });
});
