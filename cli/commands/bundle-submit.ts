/**
 * `coherentctl bundle submit FILE --fleet F`: send a config to the authority, which validates
 * it, checks governance, signs it and stores it as the fleet's next version. A rejected
 * config is printed like `bundle validate` prints one (every error with its path) and exits 3.
 */
import type { Command } from "commander";
import { ApiError, withClient } from "../client.js";
import { ExitCode } from "../exit-codes.js";
import { createOutput, type Output, outputOption } from "../output.js";
import { readInput } from "./input.js";
import { fleetOption, type RemoteOptions } from "./options.js";
import { runAction } from "./run.js";

interface SubmitOptions extends RemoteOptions {
  readonly fleet: string;
  readonly message?: string;
}

interface SubmitAnswer {
  readonly status: "created" | "unchanged";
  readonly fleet: string;
  readonly version: number;
  readonly parent: number | null;
  readonly content_sha256: string;
}

/** A validation or governance error as the API reports it. */
interface RemoteIssue {
  readonly code: string;
  readonly path: string;
  readonly message: string;
  readonly line?: number;
  readonly column?: number;
}

export function registerBundleSubmitCommand(bundle: Command, exit: (code: ExitCode) => void): void {
  bundle
    .command("submit")
    .description(
      "submit a config (YAML or JSON) as the fleet's next bundle; exit 3 when the authority rejects it",
    )
    .argument("<file>", 'config file, or "-" for standard input')
    .addOption(fleetOption())
    .option("-m, --message <text>", "why this change, kept with the bundle and in the audit log")
    .addOption(outputOption())
    .action(
      runAction("coherentctl", exit, async (file: string, _options: unknown, command: Command) =>
        submit(file, command.optsWithGlobals<SubmitOptions>()),
      ),
    );
}

async function submit(file: string, options: SubmitOptions): Promise<ExitCode> {
  const out = createOutput(options.output);
  const { text, source } = await readInput(file);
  const body = { config_text: text, ...(options.message === undefined ? {} : { message: options.message }) };
  try {
    const { body: answer } = await withClient(options, (client) =>
      client.request<SubmitAnswer>("POST", `/fleets/${encodeURIComponent(options.fleet)}/bundles`, { body }),
    );
    out.result(answer, () =>
      answer.status === "created"
        ? `fleet ${answer.fleet}: version ${answer.version} created${
            answer.parent === null ? "" : ` (parent ${answer.parent})`
          }\ncontent sha256 ${answer.content_sha256}`
        : `fleet ${answer.fleet}: unchanged, version ${answer.version} has this content already`,
    );
    return ExitCode.Ok;
  } catch (err) {
    if (err instanceof ApiError && err.code === "validation_failed") return reportRejected(out, source, err);
    throw err;
  }
}

function reportRejected(out: Output, source: string, err: ApiError): ExitCode {
  const errors = Array.isArray(err.body.errors) ? (err.body.errors as RemoteIssue[]) : [];
  const count = `${errors.length} error${errors.length === 1 ? "" : "s"}`;
  out.result({ valid: false, errors }, () =>
    [
      ...errors.map((issue) => formatRemoteIssue(issue, source)),
      `${source}: rejected by the authority (${count})`,
    ].join("\n"),
  );
  return ExitCode.Invalid;
}

/** The same one-line form as services/config's formatIssue, for issues that include governance rules. */
function formatRemoteIssue(issue: RemoteIssue, source: string): string {
  const where = issue.line === undefined ? source : `${source}:${issue.line}:${issue.column ?? 1}`;
  return `${where} ${issue.path === "" ? "(root)" : issue.path}: ${issue.message}`;
}
