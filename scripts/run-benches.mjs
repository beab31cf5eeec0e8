#!/usr/bin/env node
// Runs the benchmark scripts in test/bench/ one after another, each in its own process so
// one's garbage and JIT state do not colour the next. `npm run bench -- NAME` runs those
// whose file name contains NAME.
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";

const dir = join(import.meta.dirname, "..", "test", "bench");
const filters = process.argv.slice(2);
const benches = readdirSync(dir)
  .filter((name) => /\.bench\.(ts|mjs)$/.test(name))
  .filter((name) => filters.length === 0 || filters.some((f) => name.includes(f)))
  .sort();
if (benches.length === 0) {
  console.error(`no benchmark matches ${filters.join(", ")}`);
  process.exit(2);
}
let failed = 0;
for (const name of benches) {
  console.log(`\n== ${name}`);
  const run = spawnSync(process.execPath, ["--import", "tsx", join(dir, name)], { stdio: "inherit" });
  if (run.status !== 0) failed++;
}
process.exit(failed > 0 ? 1 : 0);
