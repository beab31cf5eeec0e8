/**
 * `coherent token create`: make a token directly in the database — how the first admin token
 * comes to be, before any token exists to ask the API with. Audited like one made through the
 * API, with the local user as the actor.
 */
import type { Command } from "commander";
import { issueToken, type Role } from "../../authority/tokens.js";
import { ExitCode } from "../exit-codes.js";
import { type OutputFormat, outputOption } from "../output.js";
import { coherentAction, type DatabaseFlags, localActor, withStore } from "./database.js";
import { printIssuedToken, roleOption } from "./token.js";

export function registerBootstrapTokenCommand(program: Command, exit: (code: ExitCode) => void): void {
  program
    .command("token")
    .description("API tokens, made directly in the database")
    .command("create")
    .description("create a token (e.g. the first admin's) and print its value, once")
    .requiredOption("--name <name>", "who or what holds it, e.g. admin or ci")
    .addOption(roleOption())
    .addOption(outputOption())
    .action(
      coherentAction(exit, async (_options: unknown, command: Command) => {
        const options = command.optsWithGlobals<
          DatabaseFlags & { name: string; role: Role; output: OutputFormat }
        >();
        const issued = await withStore(options, (store) =>
          issueToken(store, { name: options.name, role: options.role, actor: localActor() }),
        );
        printIssuedToken(issued, options);
        return ExitCode.Ok;
      }),
    );
}
