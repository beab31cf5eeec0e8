#!/usr/bin/env node
/**
 * coherent: the server-side command line — run the whole system on one machine (dev), or the
 * authority, the rollout controller and regional distributors apart; migrate the authority's
 * database, manage signing keys and make tokens, working on the database directly. Operators
 * use coherentctl against the API for everything else. Exit codes as coherentctl's
 * (exit-codes.ts): 0 ok, 1 failure, 2 usage.
 */
import { Command, CommanderError, Option } from "commander";
import { registerAuthorityCommand } from "./commands/authority.js";
import { registerBootstrapTokenCommand } from "./commands/bootstrap-token.js";
import { registerControllerCommand } from "./commands/controller.js";
import { registerDevCommand } from "./commands/dev.js";
import { registerDistributorCommand } from "./commands/distributor.js";
import { registerKeysCommands } from "./commands/keys.js";
import { registerMigrateCommand } from "./commands/migrate.js";
import { ExitCode } from "./exit-codes.js";

function createCoherentProgram(exit: (code: ExitCode) => void): Command {
  const program = new Command("coherent")
    .description(
      "Run Coherent's servers (the whole system on one machine with `dev`, or the authority, the rollout controller and regional distributors apart); manage the authority's database, signing keys and tokens.",
    )
    .addOption(
      new Option(
        "--config <file>",
        "settings file (YAML or JSON): the authority's; with `distributor`, the distributor's",
      ).env("COHERENT_AUTHORITY_CONFIG"),
    )
    .option(
      "--database-url <url>",
      "postgres://… (or DATABASE_URL); without one, the embedded database in --data-dir",
    )
    .option("--data-dir <dir>", "where the embedded database and dev keys live (default .coherent)")
    .configureHelp({ showGlobalOptions: true })
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride();
  registerAuthorityCommand(program, exit);
  registerControllerCommand(program, exit);
  registerDistributorCommand(program, exit);
  registerMigrateCommand(program, exit);
  registerKeysCommands(program, exit);
  registerBootstrapTokenCommand(program, exit);
  registerDevCommand(program, exit);
  return program;
}

async function main(argv: string[]): Promise<ExitCode> {
  let code: ExitCode = ExitCode.Ok;
  const program = createCoherentProgram((c) => {
    code = c;
  });
  try {
    await program.parseAsync(argv);
  } catch (err) {
    // Help and version are reported by commander as errors with exit code 0.
    if (err instanceof CommanderError) return err.exitCode === 0 ? ExitCode.Ok : ExitCode.Usage;
    process.stderr.write(`coherent: ${(err as Error).stack ?? String(err)}\n`);
    return ExitCode.Failure;
  }
  return code;
}

process.exitCode = await main(process.argv);
