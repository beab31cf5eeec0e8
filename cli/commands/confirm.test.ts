import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { ExitCode } from "../exit-codes.js";
import { confirm } from "./confirm.js";
import { CliError } from "./run.js";

/** A terminal stand-in: what the user types goes into `input`, the prompt comes out of `output`. */
function terminal(isTTY = true) {
  const input = Object.assign(new PassThrough(), { isTTY });
  const output = new PassThrough();
  let shown = "";
  output.on("data", (chunk: Buffer) => {
    shown += chunk.toString();
  });
  return { input, output, shown: () => shown };
}

describe("confirm", () => {
  it.each([
    ["y\n", true],
    ["YES\n", true],
    ["  yes  \n", true],
    ["n\n", false],
    ["\n", false],
    ["yess\n", false],
  ])("answers %j with %s after asking on the output", async (typed, expected) => {
    const tty = terminal();
    const answer = confirm("promote web to v3 as its stable version?", tty);
    tty.input.write(typed);
    expect(await answer).toBe(expected);
    expect(tty.shown()).toBe("promote web to v3 as its stable version? [y/N] ");
  });

  it("takes the end of input for a no", async () => {
    const tty = terminal();
    const answer = confirm("go?", tty);
    tty.input.end();
    expect(await answer).toBe(false);
  });

  it("refuses to ask when the input is not a terminal, with a usage error naming --yes", async () => {
    const piped = terminal(false);
    piped.input.write("y\n");
    const error = await confirm("go?", piped).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CliError);
    expect((error as CliError).exitCode).toBe(ExitCode.Usage);
    expect((error as CliError).message).toContain("pass --yes");
    expect(piped.shown()).toBe("");
  });
});
