/**
 * The demo's files: deploy/examples/demo/{stable,canary,broken}.yaml name the upstreams at the
 * default ports and plan.yaml is the demo fleet's rollout plan. With another --base-port the
 * configs are copied into the data dir with the upstream addresses moved, so the commands
 * `coherent dev` prints always submit configs that reach its own upstreams.
 */
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { parse as parseYaml } from "yaml";
import { DEFAULT_BASE_PORT, devPorts, HOST } from "./ports.js";

export const DEMO_CONFIGS = ["stable", "canary", "broken"] as const;
export type DemoConfig = (typeof DEMO_CONFIGS)[number];

/** The repository (or installed package) root: the nearest parent holding package.json. */
export function packageRoot(from: string = import.meta.dirname): string {
  let dir = from;
  while (!existsSync(join(dir, "package.json"))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${from}`);
    dir = parent;
  }
  return dir;
}

export const demoSourceDir = (): string => join(packageRoot(), "deploy", "examples", "demo");

export interface DemoFiles {
  /** Absolute paths of the configs to submit. */
  readonly files: Readonly<Record<DemoConfig, string>>;
  /** How to name a config in a printed command: relative to the root when it is the repository's own. */
  shown(config: DemoConfig): string;
}

/** The configs for `basePort`: the repository's own at the default, else rewritten copies in `dataDir`/demo. */
export async function demoFiles(basePort: number, dataDir: string): Promise<DemoFiles> {
  const source = demoSourceDir();
  const sourceFiles = Object.fromEntries(
    DEMO_CONFIGS.map((name) => [name, join(source, `${name}.yaml`)]),
  ) as Record<DemoConfig, string>;
  if (basePort === DEFAULT_BASE_PORT) {
    return { files: sourceFiles, shown: (name) => relative(packageRoot(), sourceFiles[name]) };
  }
  const from = devPorts(DEFAULT_BASE_PORT, 0).upstreams;
  const to = devPorts(basePort, 0).upstreams;
  const dir = join(dataDir, "demo");
  await mkdir(dir, { recursive: true });
  const files = {} as Record<DemoConfig, string>;
  for (const name of DEMO_CONFIGS) {
    let text = await readFile(sourceFiles[name], "utf8");
    for (const [i, port] of from.entries()) text = text.replaceAll(`${HOST}:${port}`, `${HOST}:${to[i]}`);
    files[name] = join(dir, `${name}.yaml`);
    await writeFile(files[name], text);
  }
  return { files, shown: (name) => files[name] };
}

/** The content of plan.yaml's `rollout:` block, as PUT /fleets/{fleet}/plan takes it. */
export async function demoPlan(): Promise<unknown> {
  const data = parseYaml(await readFile(join(demoSourceDir(), "plan.yaml"), "utf8")) as { rollout?: unknown };
  return data.rollout;
}
