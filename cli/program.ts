/**
 * The coherentctl command tree. Commands report their exit code through `exit` instead of
 * calling process.exit, so the program runs the same in tests and in the real binary.
 */
import { Command } from "commander";
import { registerBundleCommands } from "./commands/bundle.js";
import type { ExitCode } from "./exit-codes.js";

export function createProgram(exit: (code: ExitCode) => void): Command {
  const program = new Command("coherentctl")
    .description("Operate Coherent: validate and submit config bundles, watch rollouts and fleets.")
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride();
  registerBundleCommands(program, exit);
  return program;
}
