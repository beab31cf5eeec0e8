/** `coherentctl fleet create|list`: the fleets bundles are submitted to (creating one needs an admin token). */
import type { Command } from "commander";
import { withClient } from "../client.js";
import { ExitCode } from "../exit-codes.js";
import { createOutput, outputOption } from "../output.js";
import { formatTable } from "../table.js";
import { type RemoteOptions, shortTime } from "./options.js";
import { runAction } from "./run.js";

interface FleetAnswer {
  readonly name: string;
  readonly description: string | null;
  readonly created_at: string;
}

export function registerFleetCommands(program: Command, exit: (code: ExitCode) => void): void {
  const fleet = program.command("fleet").description("create and list fleets");

  fleet
    .command("create")
    .description("create a fleet (admin)")
    .argument("<name>", "letters, digits, . _ -")
    .option("--description <text>", "what the fleet serves")
    .addOption(outputOption())
    .action(
      runAction("coherentctl", exit, async (name: string, _options: unknown, command: Command) => {
        const options = command.optsWithGlobals<RemoteOptions & { description?: string }>();
        const body = {
          name,
          ...(options.description === undefined ? {} : { description: options.description }),
        };
        const { body: created } = await withClient(options, (client) =>
          client.request<FleetAnswer>("POST", "/fleets", { body }),
        );
        createOutput(options.output).result(created, () => `fleet ${created.name} created`);
        return ExitCode.Ok;
      }),
    );

  fleet
    .command("list")
    .description("list fleets")
    .addOption(outputOption())
    .action(
      runAction("coherentctl", exit, async (_options: unknown, command: Command) => {
        const options = command.optsWithGlobals<RemoteOptions>();
        const { body } = await withClient(options, (client) =>
          client.request<{ fleets: FleetAnswer[] }>("GET", "/fleets"),
        );
        createOutput(options.output).result(body, () =>
          body.fleets.length === 0
            ? "no fleets yet: create one with `coherentctl fleet create NAME`"
            : formatTable(
                [
                  { header: "NAME", cell: (row: FleetAnswer) => row.name },
                  { header: "CREATED", cell: (row) => shortTime(row.created_at) },
                  { header: "DESCRIPTION", cell: (row) => row.description },
                ],
                body.fleets,
              ),
        );
        return ExitCode.Ok;
      }),
    );
}
