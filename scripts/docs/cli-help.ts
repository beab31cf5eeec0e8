/**
 * The command-line reference: each tool's command tree with every command's --help text,
 * read from the tool's own entry point run under help-hook.ts, so commands added later are
 * picked up without a list kept here.
 */
import { execFile } from "node:child_process";
import { homedir } from "node:os";
import { promisify } from "node:util";

export interface HelpNode {
  /** e.g. ["coherentctl", "rollout", "start"]. */
  readonly path: readonly string[];
  readonly summary: string;
  readonly help: string;
  readonly commands: readonly HelpNode[];
}

const run = promisify(execFile);
const HOOK = new URL("./help-hook.ts", import.meta.url).pathname;

/** Settings that could leak into help texts (env-backed options, widths, colours). */
const SETTING_VARIABLE = /^(COHERENT_|PROXY_|COLUMNS$|LINES$|FORCE_COLOR$|NO_COLOR$)/;

/** Runs an entry point (relative to `root`) with the hook preloaded and returns its command tree. */
export async function readHelpTree(root: string, entry: string): Promise<HelpNode> {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !SETTING_VARIABLE.test(name)),
  );
  const { stdout } = await run(process.execPath, ["--import", "tsx", "--import", HOOK, entry], {
    cwd: root,
    env,
    timeout: 60_000,
    maxBuffer: 16 * 1024 * 1024,
  });
  const tree = JSON.parse(stdout) as HelpNode;
  checkPortable(tree, [root, homedir()]);
  return tree;
}

/** Help that names a directory of this machine would differ on every other one. */
function checkPortable(node: HelpNode, paths: readonly string[]): void {
  const local = paths.find((path) => node.help.includes(path));
  if (local !== undefined) {
    throw new Error(
      `the help of "${node.path.join(" ")}" contains the local path ${local}; word it portably`,
    );
  }
  for (const sub of node.commands) checkPortable(sub, paths);
}

/** Markdown: a command index, then one section per command with its help verbatim. */
export function renderHelpTree(tree: HelpNode): string {
  const nodes = flatten(tree);
  const index = nodes
    .slice(1)
    .map((node) => `- [\`${node.path.join(" ")}\`](#${anchor(node.path)}): ${firstLine(node.summary)}`);
  const sections = nodes.map((node) =>
    [`### \`${node.path.join(" ")}\``, "", "```text", node.help.trimEnd(), "```"].join("\n"),
  );
  return [index.join("\n"), ...sections].filter((part) => part !== "").join("\n\n");
}

function flatten(node: HelpNode): HelpNode[] {
  return [node, ...node.commands.flatMap(flatten)];
}

/** GitHub's heading anchor for `### \`a b c\``: lowercased, spaces as hyphens, backticks dropped. */
function anchor(path: readonly string[]): string {
  return path
    .join("-")
    .toLowerCase()
    .replace(/[^a-z0-9_-]/g, "");
}

function firstLine(text: string): string {
  return text.split("\n")[0]?.trim() ?? "";
}
