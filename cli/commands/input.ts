/** Reading the file a command is given, where "-" means standard input. */
import { readFile } from "node:fs/promises";
import { CliError } from "./run.js";

export interface Input {
  readonly text: string;
  /** How messages name the input: the path, or `<stdin>`. */
  readonly source: string;
}

export async function readInput(file: string): Promise<Input> {
  try {
    return file === "-"
      ? { text: await readStdin(), source: "<stdin>" }
      : { text: await readFile(file, "utf8"), source: file };
  } catch (err) {
    throw new CliError(`cannot read ${file}: ${(err as Error).message}`);
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}
