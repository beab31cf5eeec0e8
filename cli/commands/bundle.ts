/**
 * `coherentctl bundle …`: work with config bundles. `validate` runs offline, with the same
 * validation the authority and the agents apply, so a config can be checked before it is
 * submitted; `submit`, `list`, `show` and `diff` talk to the authority.
 */
import type { Command } from "commander";
import {
  type ConfigIssue,
  type ConfigResult,
  contentHash,
  type DynamicConfig,
  formatIssue,
  parseDynamicConfig,
  parseStaticConfig,
} from "../../services/config/index.js";
import { ExitCode } from "../exit-codes.js";
import { createOutput, type Output, type OutputFormat, outputOption } from "../output.js";
import { registerBundleReadCommands } from "./bundle-read.js";
import { registerBundleSubmitCommand } from "./bundle-submit.js";
import { readInput } from "./input.js";
import { runAction } from "./run.js";

interface ValidateOptions {
  output: OutputFormat;
  static?: boolean;
}

export function registerBundleCommands(program: Command, exit: (code: ExitCode) => void): void {
  const bundle = program.command("bundle").description("work with config bundles");

  bundle
    .command("validate")
    .description("check a config file (YAML or JSON) offline; exit 3 when it is invalid")
    .argument("<file>", 'config file, or "-" for standard input')
    .option("--static", "the file is a static (process) config, not a dynamic one")
    .addOption(outputOption())
    .action(runAction("coherentctl", exit, validateFile));

  registerBundleSubmitCommand(bundle, exit);
  registerBundleReadCommands(bundle, exit);
}

async function validateFile(file: string, options: ValidateOptions): Promise<ExitCode> {
  const out = createOutput(options.output);
  const { text, source } = await readInput(file);

  if (options.static) {
    const result = parseStaticConfig(text);
    if (!result.ok) return reportInvalid(out, source, result);
    out.result({ valid: true, kind: "static" }, () => `${source}: valid static config`);
    return ExitCode.Ok;
  }

  const result = parseDynamicConfig(text);
  if (!result.ok) return reportInvalid(out, source, result);
  const config = result.value;
  const summary = summarize(config);
  const hash = contentHash(config);
  out.result(
    { valid: true, kind: "dynamic", content_sha256: hash, summary },
    () =>
      `${source}: valid — ${Object.entries(summary)
        .map(([name, count]) => `${count} ${name}`)
        .join(", ")}\ncontent sha256 ${hash}`,
  );
  return ExitCode.Ok;
}

function reportInvalid(
  out: Output,
  source: string,
  result: Extract<ConfigResult<unknown>, { ok: false }>,
): ExitCode {
  const errors: ConfigIssue[] = result.errors;
  out.result(
    { valid: false, errors },
    () =>
      `${errors.map((issue) => formatIssue(issue, source)).join("\n")}\n${source}: invalid (${errors.length} error${
        errors.length === 1 ? "" : "s"
      })`,
  );
  return ExitCode.Invalid;
}

function summarize(config: DynamicConfig): Record<string, number> {
  const counts: Record<string, number> = {
    routes: config.routes?.length ?? 0,
    pools: config.pools?.length ?? 0,
    policies: config.policies?.length ?? 0,
    listeners: config.listeners?.length ?? 0,
  };
  for (const section of ["middleware", "traffic_management", "cache", "plugins"] as const) {
    const length = config[section]?.length ?? 0;
    if (length > 0) counts[section] = length;
  }
  return counts;
}
