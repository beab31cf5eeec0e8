/** Options and argument parsers shared by the commands that talk to the authority. */
import { InvalidArgumentError, Option } from "commander";
import type { ConnectionFlags } from "../client.js";
import type { OutputFormat } from "../output.js";

/** What every remote command's action receives: its own options plus the program's connection flags. */
export interface RemoteOptions extends ConnectionFlags {
  readonly output: OutputFormat;
}

export const fleetOption = () =>
  new Option("--fleet <name>", "the fleet").env("COHERENT_FLEET").makeOptionMandatory();

export const limitOption = (what: string) =>
  new Option("--limit <n>", `at most this many ${what}`).argParser(positiveInteger);

/** A version or a limit; commander reports anything else as a usage error (exit 2). */
export function positiveInteger(value: string): number {
  const number = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(number) || number < 1) {
    throw new InvalidArgumentError("must be a positive integer.");
  }
  return number;
}

const RELATIVE = /^(\d+)(s|m|h|d)$/;
const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** `--since`: an ISO date-time, or an age such as 30m, 12h, 7d counted back from `now`. */
export function sinceParser(now: () => number = Date.now): (value: string) => string {
  return (value) => {
    const relative = RELATIVE.exec(value);
    if (relative) {
      const unit = relative[2] as keyof typeof UNIT_MS;
      return new Date(now() - Number(relative[1]) * UNIT_MS[unit]).toISOString();
    }
    const at = new Date(value);
    if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(at.getTime())) {
      throw new InvalidArgumentError(
        "must be an ISO date-time (2025-01-31T12:00:00Z) or an age (30m, 12h, 7d).",
      );
    }
    return at.toISOString();
  };
}

/** Timestamps as the API sends them, shortened to the second for tables. */
export function shortTime(iso: unknown): string {
  return typeof iso === "string" ? iso.replace(/\.\d+Z$/, "Z") : "-";
}
