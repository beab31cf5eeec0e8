/**
 * `coherentctl token create|list|revoke`: API tokens (admin). A token's value is printed once,
 * when it is made; the authority keeps only its hash. The first admin token comes from
 * `coherent token create`, which works on the database directly.
 */
import { type Command, Option } from "commander";
import { ROLES } from "../../authority/tokens.js";
import { withClient } from "../client.js";
import { ExitCode } from "../exit-codes.js";
import { createOutput, outputOption } from "../output.js";
import { formatFields, formatTable } from "../table.js";
import { type RemoteOptions, shortTime } from "./options.js";
import { runAction } from "./run.js";

interface IssuedToken {
  readonly id: string;
  readonly name: string;
  readonly role: string;
  readonly token: string;
}

interface TokenEntry {
  readonly id: string;
  readonly name: string;
  readonly role: string;
  readonly created_by: string;
  readonly created_at: string;
  readonly revoked_at: string | null;
}

export const roleOption = () =>
  new Option("--role <role>", "viewer reads; operator also submits; admin also manages fleets and tokens")
    .choices(ROLES)
    .makeOptionMandatory();

/** Prints a new token; the reminder goes to stderr so stdout stays what a script captures. */
export function printIssuedToken(issued: IssuedToken, options: { output: RemoteOptions["output"] }): void {
  createOutput(options.output).result(issued, () =>
    formatFields([
      ["id", issued.id],
      ["name", issued.name],
      ["role", issued.role],
      ["token", issued.token],
    ]),
  );
  process.stderr.write("the token is shown only this once: store it now\n");
}

export function registerTokenCommands(program: Command, exit: (code: ExitCode) => void): void {
  const token = program.command("token").description("manage API tokens (admin)");

  token
    .command("create")
    .description("create a token and print its value, once")
    .requiredOption("--name <name>", "who or what holds it, e.g. ci or alice")
    .addOption(roleOption())
    .addOption(outputOption())
    .action(
      runAction("coherentctl", exit, async (_options: unknown, command: Command) => {
        const options = command.optsWithGlobals<RemoteOptions & { name: string; role: string }>();
        const { body } = await withClient(options, (client) =>
          client.request<IssuedToken>("POST", "/tokens", {
            body: { name: options.name, role: options.role },
          }),
        );
        printIssuedToken(body, options);
        return ExitCode.Ok;
      }),
    );

  token
    .command("list")
    .description("list tokens, revoked ones included (never their values)")
    .addOption(outputOption())
    .action(
      runAction("coherentctl", exit, async (_options: unknown, command: Command) => {
        const options = command.optsWithGlobals<RemoteOptions>();
        const { body } = await withClient(options, (client) =>
          client.request<{ tokens: TokenEntry[] }>("GET", "/tokens"),
        );
        createOutput(options.output).result(body, () =>
          formatTable(
            [
              { header: "ID", cell: (row: TokenEntry) => row.id },
              { header: "NAME", cell: (row) => row.name },
              { header: "ROLE", cell: (row) => row.role },
              { header: "CREATED", cell: (row) => shortTime(row.created_at) },
              { header: "BY", cell: (row) => row.created_by },
              {
                header: "REVOKED",
                cell: (row) => (row.revoked_at === null ? null : shortTime(row.revoked_at)),
              },
            ],
            body.tokens,
          ),
        );
        return ExitCode.Ok;
      }),
    );

  token
    .command("revoke")
    .description("revoke a token; requests with it are refused from then on")
    .argument("<id>", "the token's id, from `token list`")
    .addOption(outputOption())
    .action(
      runAction("coherentctl", exit, async (id: string, _options: unknown, command: Command) => {
        const options = command.optsWithGlobals<RemoteOptions>();
        const { body } = await withClient(options, (client) =>
          client.request<{ id: string; revoked: boolean }>("DELETE", `/tokens/${encodeURIComponent(id)}`),
        );
        createOutput(options.output).result(body, () => `token ${id} revoked`);
        return ExitCode.Ok;
      }),
    );
}
