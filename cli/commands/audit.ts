/**
 * `coherentctl audit list|verify`: read the hash-chained audit log. `verify` asks the
 * authority to walk the whole chain and exits 3 when it is broken, naming the first entry
 * that does not match, so a scheduled check can tell tampering from an unreachable server.
 */
import type { Command } from "commander";
import { withClient } from "../client.js";
import { ExitCode } from "../exit-codes.js";
import { createOutput, outputOption } from "../output.js";
import { formatTable } from "../table.js";
import { limitOption, type RemoteOptions, shortTime, sinceParser } from "./options.js";
import { runAction } from "./run.js";

interface ListOptions extends RemoteOptions {
  readonly actor?: string;
  readonly action?: string;
  readonly target?: string;
  readonly since?: string;
  readonly limit?: number;
}

interface AuditEntry {
  readonly seq: number;
  readonly at: string;
  readonly actor: string;
  readonly action: string;
  readonly target: string;
  readonly details: Readonly<Record<string, unknown>>;
}

type Verification =
  | { readonly ok: true; readonly entries: number }
  | { readonly ok: false; readonly entries: number; readonly broken_at: { seq: number; reason: string } };

export function registerAuditCommands(program: Command, exit: (code: ExitCode) => void): void {
  const audit = program.command("audit").description("read and verify the audit log");

  audit
    .command("list")
    .description("list audit entries, newest first")
    .option("--actor <actor>", "only entries by this actor, e.g. token:ci")
    .option("--action <action>", "only this action, e.g. bundle.submit")
    .option("--target <target>", "only entries about this target, e.g. fleet:web")
    .option(
      "--since <when>",
      "only entries at or after: an ISO date-time or an age (30m, 12h, 7d)",
      sinceParser(),
    )
    .addOption(limitOption("entries"))
    .addOption(outputOption())
    .action(
      runAction("coherentctl", exit, async (_options: unknown, command: Command) =>
        list(command.optsWithGlobals<ListOptions>()),
      ),
    );

  audit
    .command("verify")
    .description(
      "walk the audit log's hash chain (admin); exit 3 and name the first broken entry if it is broken",
    )
    .addOption(outputOption())
    .action(
      runAction("coherentctl", exit, async (_options: unknown, command: Command) =>
        verify(command.optsWithGlobals<RemoteOptions>()),
      ),
    );
}

async function list(options: ListOptions): Promise<ExitCode> {
  const { actor, action, target, since, limit } = options;
  const { body } = await withClient(options, (client) =>
    client.request<{ entries: AuditEntry[] }>("GET", "/audit", {
      query: { actor, action, target, since, limit },
    }),
  );
  createOutput(options.output).result(body, () =>
    body.entries.length === 0
      ? "no audit entries match"
      : formatTable(
          [
            { header: "SEQ", cell: (row: AuditEntry) => row.seq },
            { header: "AT", cell: (row) => shortTime(row.at) },
            { header: "ACTOR", cell: (row) => row.actor },
            { header: "ACTION", cell: (row) => row.action },
            { header: "TARGET", cell: (row) => row.target },
            {
              header: "DETAILS",
              cell: (row) => (Object.keys(row.details).length ? JSON.stringify(row.details) : null),
            },
          ],
          body.entries,
        ),
  );
  return ExitCode.Ok;
}

async function verify(options: RemoteOptions): Promise<ExitCode> {
  const { body } = await withClient(options, (client) =>
    client.request<Verification>("GET", "/audit/verify"),
  );
  createOutput(options.output).result(body, () =>
    body.ok
      ? `audit log intact: ${body.entries} entries verified`
      : `audit log broken at entry ${body.broken_at.seq}: ${body.broken_at.reason} (${body.entries} entries before it verified)`,
  );
  return body.ok ? ExitCode.Ok : ExitCode.Invalid;
}
