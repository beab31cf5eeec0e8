/**
 * `coherentctl fleet create|list|state|status|promote`: the fleets bundles are submitted to, which
 * versions they run, and how many agents run each (fleet-status.ts). Creating a fleet and promoting a version need an admin token.
 */
import type { Command } from "commander";
import { withClient } from "../client.js";
import { ExitCode } from "../exit-codes.js";
import { createOutput, outputOption } from "../output.js";
import { formatFields, formatTable } from "../table.js";
import { confirm } from "./confirm.js";
import { registerFleetStatusCommand } from "./fleet-status.js";
import { positiveInteger, type RemoteOptions, shortTime } from "./options.js";
import { CliError, runAction } from "./run.js";

interface FleetAnswer {
  readonly name: string;
  readonly description: string | null;
  readonly created_at: string;
}

interface FleetStateAnswer {
  readonly fleet: string;
  readonly stable_version: number | null;
  readonly candidate_version: number | null;
  readonly rollout_id: string | null;
  readonly candidate_percent: number;
  readonly generation: number;
  readonly updated_at: string | null;
}

interface PromoteAnswer extends FleetStateAnswer {
  readonly changed: boolean;
}

export function registerFleetCommands(program: Command, exit: (code: ExitCode) => void): void {
  const fleet = program
    .command("fleet")
    .description("create and list fleets, show and set the versions they run, count their agents");

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

  fleet
    .command("state")
    .description("show which versions a fleet runs: its stable version and a rollout's candidate")
    .argument("<fleet>", "the fleet")
    .addOption(outputOption())
    .action(
      runAction("coherentctl", exit, async (name: string, _options: unknown, command: Command) => {
        const options = command.optsWithGlobals<RemoteOptions>();
        const { body } = await withClient(options, (client) =>
          client.request<FleetStateAnswer>("GET", `/fleets/${encodeURIComponent(name)}/state`),
        );
        createOutput(options.output).result(body, () => formatState(body));
        return ExitCode.Ok;
      }),
    );

  registerFleetStatusCommand(fleet, exit);

  fleet
    .command("promote")
    .description(
      "make a version the fleet's stable version at once, ending any rollout (admin; the emergency path)",
    )
    .argument("<fleet>", "the fleet")
    .argument("<version>", "the version every agent should run", positiveInteger)
    .option("-y, --yes", "do not ask for confirmation (needed when stdin is not a terminal)")
    .addOption(outputOption())
    .action(
      runAction(
        "coherentctl",
        exit,
        async (name: string, version: number, _options: unknown, command: Command) => {
          const options = command.optsWithGlobals<RemoteOptions & { yes?: boolean }>();
          if (!options.yes && !(await confirm(`promote ${name} to v${version} as its stable version?`))) {
            throw new CliError(`not promoted: fleet ${name} is unchanged`);
          }
          const { body } = await withClient(options, (client) =>
            client.request<PromoteAnswer>("POST", `/fleets/${encodeURIComponent(name)}/promote`, {
              body: { version },
            }),
          );
          createOutput(options.output).result(body, () =>
            body.changed
              ? `fleet ${name}: version ${version} is now the stable version (generation ${body.generation})`
              : `fleet ${name}: version ${version} is already the stable version; nothing changed`,
          );
          return ExitCode.Ok;
        },
      ),
    );
}

function formatState(state: FleetStateAnswer): string {
  return formatFields([
    ["fleet", state.fleet],
    ["stable version", state.stable_version ?? "none yet (no bundle submitted)"],
    ["candidate version", state.candidate_version],
    ["rollout", state.rollout_id],
    ["candidate percent", state.candidate_version === null ? null : `${state.candidate_percent}%`],
    ["generation", state.generation],
    ["updated", state.updated_at === null ? null : shortTime(state.updated_at)],
  ]);
}
