/** `coherentctl bundle list|show|diff`: read a fleet's bundles from the authority. */
import type { Command } from "commander";
import { stringify as toYaml } from "yaml";
import { withClient } from "../client.js";
import { ExitCode } from "../exit-codes.js";
import { createOutput, outputOption } from "../output.js";
import { formatFields, formatTable } from "../table.js";
import { fleetOption, limitOption, positiveInteger, type RemoteOptions, shortTime } from "./options.js";
import { runAction } from "./run.js";

interface FleetOptions extends RemoteOptions {
  readonly fleet: string;
}

interface BundleSummary {
  readonly fleet: string;
  readonly version: number;
  readonly parent: number | null;
  readonly content_sha256: string;
  readonly created_at: string;
  readonly created_by: string;
  readonly message: string | null;
  readonly rollback_of: number | null;
}

interface BundleDetail extends BundleSummary {
  readonly config: unknown;
  readonly jws: string;
}

interface DiffAnswer {
  readonly fleet: string;
  readonly from: number;
  readonly to: number;
  readonly changes: ReadonlyArray<{
    readonly kind: string;
    readonly path: string;
    readonly description: string;
  }>;
}

const bundlesPath = (fleet: string) => `/fleets/${encodeURIComponent(fleet)}/bundles`;

export function registerBundleReadCommands(bundle: Command, exit: (code: ExitCode) => void): void {
  bundle
    .command("list")
    .description("list a fleet's bundles, newest first")
    .addOption(fleetOption())
    .addOption(limitOption("bundles"))
    .option("--before <version>", "only versions below this one (the next page)", positiveInteger)
    .addOption(outputOption())
    .action(
      runAction("coherentctl", exit, async (_options: unknown, command: Command) =>
        list(command.optsWithGlobals<FleetOptions & { limit?: number; before?: number }>()),
      ),
    );

  bundle
    .command("show")
    .description("show one bundle: its metadata and its config")
    .argument("<version>", "the bundle's version", positiveInteger)
    .addOption(fleetOption())
    .option("--jws", "print only the signed bundle (compact JWS), as agents receive it")
    .addOption(outputOption())
    .action(
      runAction("coherentctl", exit, async (version: number, _options: unknown, command: Command) =>
        show(version, command.optsWithGlobals<FleetOptions & { jws?: boolean }>()),
      ),
    );

  bundle
    .command("diff")
    .description("the changes from one version of a fleet's config to another, addressed by ids")
    .argument("<from>", "the older version", positiveInteger)
    .argument("<to>", "the newer version", positiveInteger)
    .addOption(fleetOption())
    .addOption(outputOption())
    .action(
      runAction("coherentctl", exit, async (from: number, to: number, _options: unknown, command: Command) =>
        diff(from, to, command.optsWithGlobals<FleetOptions>()),
      ),
    );
}

async function list(options: FleetOptions & { limit?: number; before?: number }): Promise<ExitCode> {
  const { body } = await withClient(options, (client) =>
    client.request<{ fleet: string; bundles: BundleSummary[] }>("GET", bundlesPath(options.fleet), {
      query: { limit: options.limit, before: options.before },
    }),
  );
  createOutput(options.output).result(body, () =>
    body.bundles.length === 0
      ? `fleet ${body.fleet} has no bundles yet`
      : formatTable(
          [
            { header: "VERSION", cell: (row: BundleSummary) => row.version },
            { header: "PARENT", cell: (row) => row.parent },
            { header: "CREATED", cell: (row) => shortTime(row.created_at) },
            { header: "BY", cell: (row) => row.created_by },
            { header: "SHA256", cell: (row) => row.content_sha256.slice(0, 12) },
            { header: "MESSAGE", cell: (row) => describe(row) },
          ],
          body.bundles,
        ),
  );
  return ExitCode.Ok;
}

async function show(version: number, options: FleetOptions & { jws?: boolean }): Promise<ExitCode> {
  const { body } = await withClient(options, (client) =>
    client.request<BundleDetail>("GET", `${bundlesPath(options.fleet)}/${version}`),
  );
  if (options.jws) {
    createOutput(options.output).result({ jws: body.jws }, () => body.jws);
    return ExitCode.Ok;
  }
  createOutput(options.output).result(body, () =>
    [
      formatFields([
        ["fleet", body.fleet],
        ["version", body.version],
        ["parent", body.parent],
        ["created", shortTime(body.created_at)],
        ["created by", body.created_by],
        ["content sha256", body.content_sha256],
        ["message", describe(body)],
      ]),
      "",
      toYaml(body.config, { sortMapEntries: true }).trimEnd(),
    ].join("\n"),
  );
  return ExitCode.Ok;
}

async function diff(from: number, to: number, options: FleetOptions): Promise<ExitCode> {
  const { body } = await withClient(options, (client) =>
    client.request<DiffAnswer>("GET", `${bundlesPath(options.fleet)}/${from}/diff/${to}`),
  );
  createOutput(options.output).result(body, () =>
    body.changes.length === 0
      ? `fleet ${body.fleet}: versions ${from} and ${to} have the same config`
      : [
          `fleet ${body.fleet}: ${body.changes.length} change${body.changes.length === 1 ? "" : "s"} from version ${from} to ${to}`,
          ...body.changes.map((change) => `  ${change.description}`),
        ].join("\n"),
  );
  return ExitCode.Ok;
}

function describe(bundle: BundleSummary): string | null {
  if (bundle.rollback_of === null) return bundle.message;
  return `rollback to version ${bundle.rollback_of}${bundle.message ? `: ${bundle.message}` : ""}`;
}
