/**
 * `coherent keys generate|list|rotate`: the authority's signing keys. Private keys live only
 * in files (or COHERENT_SIGNING_KEY), never in the database, which lists the public halves
 * with their status: one active (signing), others trusted (still verify) or retired.
 */
import { createPublicKey, type KeyObject } from "node:crypto";
import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import type { AuthorityStore, SigningKeyRow } from "../../authority/store/index.js";
import { publicJwkOf, writeKeyPair } from "../../services/bundle/index.js";
import { ExitCode } from "../exit-codes.js";
import { createOutput, type OutputFormat, outputOption } from "../output.js";
import { formatFields, formatTable } from "../table.js";
import { coherentAction, type DatabaseFlags, localActor, withStore } from "./database.js";
import { shortTime } from "./options.js";
import { CliError } from "./run.js";

type Options = DatabaseFlags & { readonly output: OutputFormat };

export function registerKeysCommands(program: Command, exit: (code: ExitCode) => void): void {
  const keys = program.command("keys").description("make, list and rotate the bundle signing keys");

  keys
    .command("generate")
    .description("write a new Ed25519 key pair: NAME.key.pem (0600, the private key) and NAME.pub.pem")
    .option("--dir <dir>", "where to write the pair", ".")
    .option("--name <name>", "file name stem", "signing")
    .addOption(outputOption())
    .action(
      coherentAction(exit, async (_options: unknown, command: Command) => {
        const options = command.optsWithGlobals<Options & { dir: string; name: string }>();
        const written = await writeKeyPair(options.dir, options.name);
        createOutput(options.output).result(
          { kid: written.kid, private_file: written.privateFile, public_file: written.publicFile },
          () =>
            formatFields([
              ["kid", written.kid],
              ["private key", written.privateFile],
              ["public key", written.publicFile],
            ]),
        );
        process.stderr.write(
          `sign with it: COHERENT_SIGNING_KEY_FILE=${written.privateFile}, or \`coherent keys rotate --key ${written.privateFile}\` to replace the active key\n`,
        );
        return ExitCode.Ok;
      }),
    );

  keys
    .command("list")
    .description("list the public keys the authority knows, with their status")
    .addOption(outputOption())
    .action(
      coherentAction(exit, async (_options: unknown, command: Command) => {
        const options = command.optsWithGlobals<Options>();
        const rows = await withStore(options, (store) => store.listSigningKeys());
        createOutput(options.output).result({ keys: rows.map(keyJson) }, () =>
          rows.length === 0
            ? "no signing keys yet: the authority registers its key when it starts"
            : formatTable(
                [
                  { header: "KID", cell: (row: SigningKeyRow) => row.kid },
                  { header: "STATUS", cell: (row) => row.status },
                  { header: "CREATED", cell: (row) => shortTime(row.createdAt.toISOString()) },
                  { header: "UPDATED", cell: (row) => shortTime(row.updatedAt.toISOString()) },
                ],
                rows,
              ),
        );
        return ExitCode.Ok;
      }),
    );

  keys
    .command("rotate")
    .description("make a key the active signing key; the active one before it stays trusted (audited)")
    .requiredOption("--key <file>", "the new key: its private .key.pem or its public .pub.pem")
    .addOption(outputOption())
    .action(
      coherentAction(exit, async (_options: unknown, command: Command) => {
        const options = command.optsWithGlobals<Options & { key: string }>();
        const key = await readKey(options.key);
        const jwk = await publicJwkOf(key, options.key);
        const result = await withStore(options, (store) => rotate(store, jwk.kid, jwk, options.key));
        createOutput(options.output).result(result, () =>
          !result.changed
            ? `key ${jwk.kid} is the active key already`
            : `key ${jwk.kid} is now the active signing key${
                result.previous ? `; ${result.previous} stays trusted` : ""
              }\nrestart the authority with this key (COHERENT_SIGNING_KEY_FILE) so it signs with it`,
        );
        return ExitCode.Ok;
      }),
    );
}

/**
 * Registers `kid` as active and records "key.rotate" with the key it replaced; a no-op when
 * it is active already. A retired key is refused: retiring is meant to be for good.
 */
async function rotate(
  store: AuthorityStore,
  kid: string,
  publicJwk: unknown,
  file: string,
): Promise<{ kid: string; previous: string | null; changed: boolean }> {
  const known = await store.listSigningKeys();
  const previous = known.find((row) => row.status === "active")?.kid ?? null;
  if (previous === kid) return { kid, previous, changed: false };
  if (known.some((row) => row.kid === kid && row.status === "retired")) {
    throw new CliError(
      `key ${kid} is retired and stays so: generate a new key with \`coherent keys generate\``,
    );
  }
  await store.upsertSigningKey({ kid, publicJwk, status: "active" });
  await store.appendAudit({
    actor: localActor(),
    action: "key.rotate",
    target: `key:${kid}`,
    details: { previous, file },
  });
  return { kid, previous, changed: true };
}

async function readKey(file: string): Promise<KeyObject> {
  let pem: string;
  try {
    pem = await readFile(file, "utf8");
  } catch (err) {
    throw new CliError(`cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    // A private key yields its public half: only that is registered.
    return createPublicKey(pem);
  } catch (err) {
    throw new CliError(
      `${file} is not a PEM key (${(err as Error).message}); give a .key.pem or .pub.pem file`,
    );
  }
}

function keyJson(row: SigningKeyRow) {
  return { kid: row.kid, status: row.status, created_at: row.createdAt, updated_at: row.updatedAt };
}
