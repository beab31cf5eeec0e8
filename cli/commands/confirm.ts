/**
 * Asking before a command does what cannot be taken back: the question goes to stderr (stdout
 * stays the command's result) and one line is read from stdin. Only a terminal may answer, so
 * a script has to say --yes: a piped "y", or stdin left open by a job runner, never confirms.
 */
import { createInterface } from "node:readline";
import { ExitCode } from "../exit-codes.js";
import { CliError } from "./run.js";

export interface PromptStreams {
  readonly input: NodeJS.ReadableStream & { readonly isTTY?: boolean };
  readonly output: NodeJS.WritableStream;
}

/**
 * Resolves true for "y" or "yes" (any case), false for anything else, an empty line or the end
 * of input. Throws a usage CliError (exit 2) when stdin is not a terminal.
 */
export async function confirm(
  question: string,
  streams: PromptStreams = { input: process.stdin, output: process.stderr },
): Promise<boolean> {
  if (!streams.input.isTTY) {
    throw new CliError(
      `this asks "${question}" and stdin is not a terminal: pass --yes to confirm without asking`,
      ExitCode.Usage,
    );
  }
  const lines = createInterface({ input: streams.input, terminal: false });
  streams.output.write(`${question} [y/N] `);
  try {
    const answer = await new Promise<string>((resolve) => {
      lines.once("line", resolve);
      lines.once("close", () => resolve(""));
    });
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    lines.close();
  }
}
