/**
 * What `coherent dev` prints once everything serves: a short table of where things are, the
 * dev token, and three commands to try next that work when pasted into another terminal of
 * the repository (they read the authority's URL and the token from the coherentctl config
 * file in the data dir). With --output json, the same as one JSON record for scripts.
 */
import { formatTable } from "../table.js";
import type { DevSystem } from "./dev-system.js";

export interface ReadyRecord {
  readonly event: "ready";
  readonly ready_ms: number;
  readonly first_start: boolean;
  readonly data_dir: string;
  readonly logs: string;
  readonly authority: string;
  readonly dashboard: string;
  readonly token: string;
  readonly fleet: string;
  readonly stable_version: number;
  readonly agents: ReadonlyArray<{ id: string; url: string; admin: string; pid: number; log: string }>;
  /** Set this in the environment, then run `commands`. */
  readonly env: { readonly COHERENT_CONFIG: string };
  readonly commands: readonly string[];
}

export function readyRecord(system: DevSystem, readyMs: number): ReadyRecord {
  const first = system.agents[0];
  return {
    event: "ready",
    ready_ms: readyMs,
    first_start: system.firstStart,
    data_dir: system.dataDir,
    logs: system.logDir,
    authority: system.authorityUrl,
    dashboard: `${system.authorityUrl}/ui`,
    token: system.token,
    fleet: system.fleet,
    stable_version: system.stableVersion,
    agents: system.agents.map((agent) => ({
      id: agent.id,
      url: agent.url,
      admin: agent.adminUrl,
      pid: agent.pid,
      log: agent.logFile,
    })),
    env: { COHERENT_CONFIG: system.ctlConfig },
    commands: [
      `curl -i ${first?.url ?? ""}/hello`,
      `npx coherentctl fleet status ${system.fleet}`,
      `npx coherentctl bundle submit --fleet ${system.fleet} ${system.demo.shown("canary")}`,
    ],
  };
}

export function readyText(record: ReadyRecord): string {
  const rows: Array<[string, string]> = [
    ...record.agents.map((agent): [string, string] => [`proxy ${agent.id}`, agent.url]),
    ["authority API", record.authority],
    ["dashboard", `${record.dashboard}  (sign in with the dev token)`],
    ["dev token", record.token],
    ["logs", record.logs],
  ];
  const table = formatTable(
    [
      { header: "WHAT", cell: (row: [string, string]) => row[0] },
      { header: "WHERE", cell: (row: [string, string]) => row[1] },
    ],
    rows,
  );
  const indent = (text: string) =>
    text
      .split("\n")
      .map((line) => `  ${line}`)
      .join("\n");
  return [
    "",
    `Coherent is running: fleet ${record.fleet}, ${record.agents.length} agents on version ${record.stable_version} (ready in ${(record.ready_ms / 1000).toFixed(1)} s).`,
    "",
    indent(table),
    "",
    "Try next, in another terminal of this repository:",
    indent([`export COHERENT_CONFIG=${record.env.COHERENT_CONFIG}`, ...record.commands].join("\n")),
    "",
    "Ctrl-C stops everything.",
    "",
  ].join("\n");
}
