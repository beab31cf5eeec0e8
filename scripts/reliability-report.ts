// `npm run report:reliability`: runs the fault and security suites (and, unless --no-scale,
// the scale suite) with COHERENT_RELIABILITY_DIR set, so every scenario leaves its record
// (test/support/reliability.ts), then writes the records as one table to docs/reliability.md.
// A suite that fails still has its records written, and the report says which suites failed;
// the exit code is then 1.
//
//   npm run report:reliability                    # fault + security + scale (SOAK_MINUTES, default 10)
//   npm run report:reliability -- --no-scale      # fault + security only, about 8 minutes
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { ReliabilityRecord } from "../test/support/reliability.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const output = join(root, "docs", "reliability.md");
const withScale = !process.argv.includes("--no-scale");

const suites: ReadonlyArray<{ name: string; args: string[] }> = [
  { name: "fault + security", args: ["run", "test/fault", "test/security"] },
  ...(withScale ? [{ name: "scale", args: ["run", "--config", "vitest.scale.config.ts"] }] : []),
];

const dir = mkdtempSync(join(tmpdir(), "coherent-reliability-"));
const failed: string[] = [];
const started = Date.now();
for (const suite of suites) {
  console.log(`\n== ${suite.name}: vitest ${suite.args.join(" ")}`);
  const run = spawnSync(join(root, "node_modules", ".bin", "vitest"), suite.args, {
    cwd: root,
    stdio: "inherit",
    env: { ...process.env, COHERENT_RELIABILITY_DIR: dir },
  });
  if (run.status !== 0) failed.push(suite.name);
}

const records = readdirSync(dir)
  .filter((file) => file.endsWith(".json"))
  .map((file) => JSON.parse(readFileSync(join(dir, file), "utf8")) as ReliabilityRecord)
  .sort((a, b) => a.suite.localeCompare(b.suite) || a.scenario.localeCompare(b.scenario));
rmSync(dir, { recursive: true, force: true });

const commit = spawnSync("git", ["rev-parse", "--short", "HEAD"], {
  cwd: root,
  encoding: "utf8",
}).stdout.trim();
const cell = (text: string) => text.replaceAll("|", "\\|");
const rows = records.map((r) =>
  [
    r.suite,
    cell(r.scenario),
    cell(r.loadHeld),
    r.faultsInjected,
    r.badInputsTried,
    `${r.requestsFailed} / ${r.requestsSent}`,
    r.bundlesLost,
    r.convergenceMs === undefined ? "" : `${(r.convergenceMs / 1000).toFixed(1)} s`,
    cell(r.notes ?? ""),
  ].join(" | "),
);
const totals = records.reduce(
  (sum, r) => ({
    faults: sum.faults + r.faultsInjected,
    bad: sum.bad + r.badInputsTried,
    sent: sum.sent + r.requestsSent,
    failed: sum.failed + r.requestsFailed,
    lost: sum.lost + r.bundlesLost,
  }),
  { faults: 0, bad: 0, sent: 0, failed: 0, lost: 0 },
);

const text = `# Reliability report

Written by \`npm run report:reliability\` on ${new Date().toISOString().slice(0, 10)} from commit
\`${commit}\`, on ${cpus().length} cores (${cpus()[0]?.model ?? "unknown CPU"}), in ${Math.round((Date.now() - started) / 60_000)} minutes.
Suites run: ${suites.map((s) => s.name).join(", ")}${withScale ? ` (soak ${process.env.SOAK_MINUTES ?? "10"} min)` : " (scale skipped: --no-scale)"}.
${failed.length > 0 ? `\n**Failed: ${failed.join(", ")}** — the table holds the records of the scenarios that ran.\n` : ""}
Each row is one scenario of \`test/fault/\`, \`test/security/\` or \`test/scale/\`, as it
measured itself: the load it kept up through the agents, the faults it injected, the bad
inputs it tried, the requests that failed and the bundles lost (a scenario fails its test when
either is above zero), and the time from the end of the fault until every agent ran the
desired version.

| suite | scenario | load held | faults injected | bad inputs tried | requests failed | bundles lost | convergence | notes |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
${rows.join("\n")}

Totals: ${totals.faults} faults injected, ${totals.bad} bad inputs tried, ${totals.failed} of ${totals.sent} requests failed, ${totals.lost} bundles lost.
`;
writeFileSync(output, text);
spawnSync(join(root, "node_modules", ".bin", "biome"), ["format", "--write", output], {
  cwd: root,
  stdio: "ignore",
});
console.log(
  `\nreliability: ${records.length} scenarios written to docs/reliability.md${failed.length ? `; failed: ${failed.join(", ")}` : ""}`,
);
process.exit(failed.length > 0 ? 1 : 0);
