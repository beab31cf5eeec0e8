/**
 * `coherentctl fleet status FLEET`: which versions the fleet runs and how many of its agents
 * serve, acked, await or refused each, with the stale ones apart.
 */
import type { Command } from "commander";
import { withClient } from "../client.js";
import { ExitCode } from "../exit-codes.js";
import { createOutput, outputOption } from "../output.js";
import { formatFields, formatTable } from "../table.js";
import { versionText } from "./agents.js";
import type { RemoteOptions } from "./options.js";
import { runAction } from "./run.js";

interface VersionCounts {
  readonly version: number | null;
  readonly running: number;
  readonly acked: number;
  readonly pending: number;
  readonly nacked: number;
  readonly stale: number;
}

interface FleetStatusAnswer {
  readonly fleet: string;
  readonly stable_version: number | null;
  readonly candidate_version: number | null;
  readonly rollout_id: string | null;
  readonly candidate_percent: number;
  readonly agents: { readonly total: number; readonly stale: number; readonly by_version: VersionCounts[] };
}

/** Registers `status` under the `fleet` command. */
export function registerFleetStatusCommand(fleet: Command, exit: (code: ExitCode) => void): void {
  fleet
    .command("status")
    .description("show a fleet's versions and how many agents run, acked, await or refused each")
    .argument("<fleet>", "the fleet")
    .addOption(outputOption())
    .action(
      runAction("coherentctl", exit, async (name: string, _options: unknown, command: Command) => {
        const options = command.optsWithGlobals<RemoteOptions>();
        const { body } = await withClient(options, (client) =>
          client.request<FleetStatusAnswer>("GET", `/fleets/${encodeURIComponent(name)}/status`),
        );
        createOutput(options.output).result(body, () => formatStatus(body));
        return ExitCode.Ok;
      }),
    );
}

function formatStatus(status: FleetStatusAnswer): string {
  const { agents } = status;
  const fields = formatFields([
    ["fleet", status.fleet],
    ["stable version", versionText(status.stable_version) ?? "none yet (no bundle submitted)"],
    [
      "candidate",
      status.candidate_version === null
        ? null
        : `v${status.candidate_version} for ${status.candidate_percent}% of agents (rollout ${status.rollout_id})`,
    ],
    ["agents", agents.stale === 0 ? agents.total : `${agents.total} (${agents.stale} stale)`],
  ]);
  if (agents.by_version.length === 0) return `${fields}\n\nno agents reported yet`;
  const table = formatTable(
    [
      { header: "VERSION", cell: (row: VersionCounts) => versionText(row.version) ?? "none" },
      { header: "RUNNING", cell: (row) => row.running },
      { header: "ACKED", cell: (row) => row.acked },
      { header: "PENDING", cell: (row) => row.pending },
      { header: "NACKED", cell: (row) => row.nacked },
      { header: "STALE", cell: (row) => row.stale },
    ],
    agents.by_version,
  );
  return `${fields}\n\n${table}`;
}
