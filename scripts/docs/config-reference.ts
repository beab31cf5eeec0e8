/**
 * The config reference's generated parts: one field table per config file a user writes,
 * and a table explaining each value notation those tables use.
 */
import { AuthorityFileSchema } from "../../authority/config.js";
import { ClientConfigFileSchema } from "../../cli/client.js";
import { DynamicConfigSchema, RolloutSchema, StaticConfigSchema } from "../../services/config/index.js";
import { DistributorFileSchema } from "../../services/distributor/settings-file.js";
import { type FieldRow, type FieldWalk, walkConfig } from "./config-fields.js";

/** How each notation is written; keyed by the `notation` metadata of the schema primitives. */
const NOTATIONS: Readonly<Record<string, string>> = {
  duration:
    'A number with units us, ms, s, m or h, combined: "500ms", "5s", "1m30s", "2h"; or a number of milliseconds.',
  size: 'A number with unit B, KB, MB or GB (binary: 1KB = 1024 bytes; KiB, MiB, GiB also read): "512KB", "1MB"; or a number of bytes.',
  percent: 'Percent points from 0 to 100: 10 or "10%".',
  ratio: 'A fraction from 0 to 1, or a percentage: 0.01 or "1%".',
  "burn rate": 'A positive multiple of the sustainable error-budget burn: "10x" or 10.',
  "status range": 'HTTP statuses, inclusive: 200, "200-399", "5xx" or {min: 200, max: 399}.',
  id: "1–128 letters, digits, '.', '_' or '-', starting and ending with a letter or digit. Ids appear in metrics labels and diffs.",
  "host:port": 'An upstream address: "10.0.1.10:8000", "api.internal:8000", "[::1]:8000".',
  "listen address":
    'Where to listen: ":8080" (all interfaces), "127.0.0.1:8080", "[::]:8443"; port 0 picks a free port.',
  regex:
    "A JavaScript regular expression, at most 1024 characters; patterns that can backtrack catastrophically (a repeated group that itself repeats) are refused.",
  "host pattern":
    'An exact name ("api.example.com"), a wildcard ("*.example.com"), "*" for any host, or an anchored regular expression (".*\\.example\\.com"). Names are case-insensitive.',
  "header name": "An HTTP field name; case-insensitive (stored lowercased).",
  "request key": "What requests are told apart by: client_ip, header:NAME or cookie:NAME.",
  "HTTP methods":
    "A non-empty list of GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, CONNECT, TRACE; case-insensitive.",
  URL: "An http:// or https:// URL.",
  path: 'A request path starting with "/", without ?, #, \\ or %00.',
  "file path": "A file path; relative paths are read from the process's working directory.",
};

export interface ConfigReference {
  /** Region name → generated markdown. */
  readonly regions: Map<string, string>;
  /** Fields without a description, each "file: path". */
  readonly undescribed: string[];
}

export function configReference(): ConfigReference {
  const walks: [string, FieldWalk][] = [
    ["dynamic", walkConfig(DynamicConfigSchema, { elsewhere: [RolloutSchema] })],
    ["rollout", walkConfig(RolloutSchema, { prefix: "rollout" })],
    ["static", walkConfig(StaticConfigSchema)],
    ["authority", walkConfig(AuthorityFileSchema)],
    ["distributor", walkConfig(DistributorFileSchema)],
    ["coherentctl", walkConfig(ClientConfigFileSchema)],
  ];
  const regions = new Map(walks.map(([name, walk]) => [name, fieldTable(walk.rows)]));
  const used = new Set(walks.flatMap(([, walk]) => [...walk.notations]));
  const unexplained = [...used].filter((notation) => NOTATIONS[notation] === undefined);
  if (unexplained.length > 0) {
    throw new Error(
      `explain these notations in NOTATIONS (scripts/docs/config-reference.ts): ${unexplained.join(", ")}`,
    );
  }
  regions.set("notations", notationTable(used));
  return {
    regions,
    undescribed: walks.flatMap(([name, walk]) => walk.undescribed.map((path) => `${name}: ${path}`)),
  };
}

function fieldTable(rows: readonly FieldRow[]): string {
  const lines = rows.map((row) =>
    tableRow([
      `\`${row.path}\`${row.variant === undefined ? "" : ` (${row.variant})`}`,
      row.type,
      row.required ? "yes" : "no",
      row.defaultValue ?? "",
      row.description,
    ]),
  );
  return [
    "| Field | Type | Required | Default | Description |",
    "| --- | --- | --- | --- | --- |",
    ...lines,
  ].join("\n");
}

function notationTable(used: ReadonlySet<string>): string {
  const names = Object.keys(NOTATIONS).filter((name) => used.has(name));
  return [
    "| Notation | How it is written |",
    "| --- | --- |",
    ...names.map((name) => tableRow([name, NOTATIONS[name] as string])),
  ].join("\n");
}

/** Cells may hold "|" (type unions) and line breaks, which would break a markdown table. */
function tableRow(cells: readonly string[]): string {
  return `| ${cells.map((cell) => cell.replaceAll("|", "\\|").replaceAll("\n", " ")).join(" | ")} |`;
}
