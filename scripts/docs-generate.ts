// Regenerates the generated parts of the reference docs from the code: docs/config.md from the
// config schemas, docs/cli.md from the command-line programs' help. The hand-written text
// around the marked regions stays as it is.
//
//   node --import tsx scripts/docs-generate.ts           rewrite the regions in place
//   node --import tsx scripts/docs-generate.ts --check   exit 1 naming each doc that is out of date
//
// Either way it exits 1 when a config field has no description: the reference would have a gap.
import { spawnSync } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { readHelpTree, renderHelpTree } from "./docs/cli-help.js";
import { configReference } from "./docs/config-reference.js";
import { fillRegions } from "./docs/regions.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const biome = createRequire(import.meta.url).resolve("@biomejs/biome/bin/biome");

/** Region name in docs/cli.md → the entry point whose program it documents. */
const TOOLS: readonly [string, string][] = [
  ["coherent", "cli/coherent.ts"],
  ["coherentctl", "cli/coherentctl.ts"],
  ["proxy", "agent/main.ts"],
];

async function cliRegions(): Promise<Map<string, string>> {
  const trees = await Promise.all(TOOLS.map(([, entry]) => readHelpTree(root, entry)));
  return new Map(TOOLS.map(([name], i) => [name, renderHelpTree(trees[i] as (typeof trees)[number])]));
}

/** Laid out as `npm run lint` wants it (biome formats markdown: tables padded), so lint and --check agree. */
function formatMarkdown(file: string, text: string): string {
  const formatted = spawnSync(process.execPath, [biome, "format", `--stdin-file-path=${file}`], {
    cwd: root,
    input: text,
    encoding: "utf8",
    timeout: 60_000,
  });
  if (formatted.status !== 0) throw new Error(`biome could not format ${file}: ${formatted.stderr}`);
  return formatted.stdout;
}

async function main(check: boolean): Promise<number> {
  const config = configReference();
  if (config.undescribed.length > 0) {
    process.stderr.write(
      `docs: these config fields have no description; add .describe("…") to their schema:\n${config.undescribed.map((path) => `  ${path}\n`).join("")}`,
    );
    return 1;
  }
  const docs: [string, Map<string, string>][] = [
    ["docs/config.md", config.regions],
    ["docs/cli.md", await cliRegions()],
  ];
  const stale: string[] = [];
  for (const [file, regions] of docs) {
    const current = await readFile(join(root, file), "utf8");
    const next = formatMarkdown(file, fillRegions(current, file, regions));
    if (next === current) continue;
    stale.push(file);
    if (!check) await writeFile(join(root, file), next);
  }
  if (check && stale.length > 0) {
    process.stderr.write(`docs: out of date, run npm run docs: ${stale.join(", ")}\n`);
    return 1;
  }
  process.stdout.write(stale.length === 0 ? "docs: up to date\n" : `docs: rewrote ${stale.join(", ")}\n`);
  return 0;
}

process.exitCode = await main(process.argv.includes("--check"));
