/**
 * How a command ends. A command returns its exit code, or throws a CliError whose message is
 * meant for the operator (printed on stderr without a stack) and whose code says which kind
 * of failure it was. Anything else is a bug and reaches the binary's main, which prints the stack.
 */
import { ExitCode } from "../exit-codes.js";

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode = ExitCode.Failure,
  ) {
    super(message);
    this.name = "CliError";
  }
}

/** Wraps a command's work so its exit code, or its CliError, is reported the same way by every command. */
export function runAction<Args extends unknown[]>(
  binary: string,
  exit: (code: ExitCode) => void,
  work: (...args: Args) => Promise<ExitCode>,
): (...args: Args) => Promise<void> {
  return async (...args) => {
    try {
      exit(await work(...args));
    } catch (err) {
      if (!(err instanceof CliError)) throw err;
      process.stderr.write(`${binary}: ${err.message}\n`);
      exit(err.exitCode);
    }
  };
}
