/**
 * `coherentctl agents`: every agent with the version it runs, the one it is asked to run and
 * where it stands (acked, pending, or nacked with the reason), as its distributor last reported.
 * Agents not heard of lately are flagged stale.
 */

import type { Command } from "commander";
import { Option } from "commander";
import { withClient } from "../client.js";
import { ExitCode } from "../exit-codes.js";
import { createOutput, outputOption } from "../output.js";
import { formatTable } from "../table.js";
import { type RemoteOptions, shortTime } from "./options.js";
import { runAction } from "./run.js";

export const AGENT_STATES = ["pending", "acked", "nacked", "unknown"] as const;

interface AgentsOptions extends RemoteOptions {
  readonly fleet?: string;
  readonly region?: string;
  readonly state?: (typeof AGENT_STATES)[number];
  readonly stale?: boolean;
}

interface NackError {
  readonly path: string;
  readonly message: string;
  readonly code: string;
}

export interface AgentAnswer {
  readonly id: string;
  readonly fleet: string;
  readonly region: string;
  readonly distributor: string | null;
  readonly running_version: number | null;
  readonly desired_version: number | null;
  readonly state: (typeof AGENT_STATES)[number];
  readonly nack: { readonly version: number; readonly errors: readonly NackError[] } | null;
  readonly last_seen: string;
  readonly stale: boolean;
  readonly connected: boolean;
  readonly labels: Readonly<Record<string, string>>;
}

export function registerAgentCommands(program: Command, exit: (code: ExitCode) => void): void {
  program
    .command("agents")
    .description(
      "list agents: the version each runs and is asked to run, acked, pending or nacked (with why), stale ones flagged",
    )
    .option("--fleet <name>", "only this fleet's agents")
    .option("--region <region>", "only agents in this region")
    .addOption(new Option("--state <state>", "only agents in this state").choices(AGENT_STATES))
    .option("--stale", "only stale agents: disconnected, or not heard of within the authority's limit")
    .addOption(outputOption())
    .action(
      runAction("coherentctl", exit, async (_options: unknown, command: Command) =>
        list(command.optsWithGlobals<AgentsOptions>()),
      ),
    );
}

async function list(options: AgentsOptions): Promise<ExitCode> {
  const { fleet, region, state } = options;
  const { body } = await withClient(options, (client) =>
    client.request<{ agents: AgentAnswer[] }>("GET", "/agents", {
      query: { fleet, region, state, stale: options.stale ? "true" : undefined },
    }),
  );
  createOutput(options.output).result(body, () =>
    body.agents.length === 0
      ? "no agents match"
      : formatTable(
          [
            { header: "AGENT", cell: (row: AgentAnswer) => row.id },
            { header: "FLEET", cell: (row) => row.fleet },
            { header: "REGION", cell: (row) => row.region },
            { header: "DISTRIBUTOR", cell: (row) => row.distributor },
            { header: "VERSION", cell: (row) => versionText(row.running_version) },
            { header: "DESIRED", cell: (row) => versionText(row.desired_version) },
            { header: "STATE", cell: (row) => row.state },
            { header: "LAST SEEN", cell: lastSeenText },
            { header: "NACK", cell: nackText },
          ],
          body.agents,
        ),
  );
  return ExitCode.Ok;
}

export function versionText(version: number | null): string | null {
  return version === null ? null : `v${version}`;
}

/** The time, flagged when the agent no longer counts as live. */
function lastSeenText(agent: AgentAnswer): string {
  const at = shortTime(agent.last_seen);
  if (!agent.stale) return at;
  return agent.connected ? `${at} (stale)` : `${at} (disconnected)`;
}

/** The refused version and its first error; the rest are counted (--output json has them all). */
function nackText(agent: AgentAnswer): string | null {
  if (agent.nack === null) return null;
  const [first, ...rest] = agent.nack.errors;
  const reason = first === undefined ? "" : `: ${first.path === "" ? "" : `${first.path}: `}${first.message}`;
  const more = rest.length === 0 ? "" : ` (+${rest.length} more)`;
  return `v${agent.nack.version}${reason}${more}`;
}
