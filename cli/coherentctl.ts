#!/usr/bin/env node
/**
 * coherentctl: the operator and SRE command line of Coherent. Exit codes: 0 ok, 1 failure,
 * 2 usage, 3 validation failed, 4 rollout rolled back or aborted (see exit-codes.ts).
 */
import { CommanderError } from "commander";
import { ExitCode } from "./exit-codes.js";
import { createProgram } from "./program.js";

async function main(argv: string[]): Promise<ExitCode> {
  let code: ExitCode = ExitCode.Ok;
  const program = createProgram((c) => {
    code = c;
  });
  try {
    await program.parseAsync(argv);
  } catch (err) {
    // Help and version are reported by commander as errors with exit code 0.
    if (err instanceof CommanderError) return err.exitCode === 0 ? ExitCode.Ok : ExitCode.Usage;
    process.stderr.write(`coherentctl: ${(err as Error).stack ?? String(err)}\n`);
    return ExitCode.Failure;
  }
  return code;
}

process.exitCode = await main(process.argv);
