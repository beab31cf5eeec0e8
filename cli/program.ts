/**
 * The coherentctl command tree. Commands report their exit code through `exit` instead of
 * calling process.exit, so the program runs the same in tests and in the real binary.
 * The connection options are the program's, so they may be given before or after a command.
 */
import { Command, Option } from "commander";
import { registerAgentCommands } from "./commands/agents.js";
import { registerAuditCommands } from "./commands/audit.js";
import { registerBundleCommands } from "./commands/bundle.js";
import { registerFleetCommands } from "./commands/fleet.js";
import { registerRolloutCommands } from "./commands/rollout.js";
import { registerTokenCommands } from "./commands/token.js";
import type { ExitCode } from "./exit-codes.js";

export function createProgram(exit: (code: ExitCode) => void): Command {
  const program = new Command("coherentctl")
    .description(
      "Operate Coherent: validate and submit config bundles, manage fleets and tokens, see which agents run what, read the audit log.",
    )
    .addOption(
      new Option("--server <url>", "the authority's URL (default http://127.0.0.1:7400)").env(
        "COHERENT_SERVER",
      ),
    )
    .addOption(
      new Option("--token <token>", "an API token (COHERENT_TOKEN keeps it out of process listings)").env(
        "COHERENT_TOKEN",
      ),
    )
    .addOption(
      new Option(
        "--config <file>",
        "a config file with server and token (default ~/.config/coherent/config.yaml)",
      ).env("COHERENT_CONFIG"),
    )
    .configureHelp({ showGlobalOptions: true })
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride();
  registerBundleCommands(program, exit);
  registerFleetCommands(program, exit);
  registerRolloutCommands(program, exit);
  registerAgentCommands(program, exit);
  registerAuditCommands(program, exit);
  registerTokenCommands(program, exit);
  return program;
}
