/**
 * How commands answer: a human text by default, one JSON document with `--output json` for
 * scripts. Results go to stdout; problems with running the command itself go to stderr.
 */
import { Option } from "commander";

export type OutputFormat = "text" | "json";

export const outputOption = () =>
  new Option("-o, --output <format>", "output format").choices(["text", "json"]).default("text");

export interface Output {
  readonly format: OutputFormat;
  /** Prints `json` as one document, or `text` as lines, depending on the format. */
  result(json: unknown, text: () => string): void;
}

export function createOutput(format: OutputFormat, stdout: NodeJS.WritableStream = process.stdout): Output {
  return {
    format,
    result(json, text) {
      stdout.write(format === "json" ? `${JSON.stringify(json, null, 2)}\n` : `${text()}\n`);
    },
  };
}
