/**
 * Preloaded with `node --import` into a command-line entry point (cli/coherent.ts,
 * cli/coherentctl.ts, agent/main.ts) by cli-help.ts. When the entry point parses its
 * arguments, it writes its whole command tree with each command's help as JSON instead, and
 * exits: the reference then shows the program exactly as the binary builds it, whatever
 * commands exist, without the entry points exporting their programs or running anything.
 */
import { writeSync } from "node:fs";
import { Command } from "commander";
import type { HelpNode } from "./cli-help.js";

/** Fixed, so the reference does not depend on the terminal it is generated in. */
const HELP_WIDTH = 100;

function helpTree(command: Command, parents: readonly string[]): HelpNode {
  command.configureOutput({ getOutHelpWidth: () => HELP_WIDTH, getOutHasColors: () => false });
  const path = [...parents, command.name()];
  return {
    path,
    summary: command.summary() || command.description(),
    help: command.helpInformation(),
    commands: command.commands.map((sub) => helpTree(sub, path)),
  };
}

function writeTreeAndExit(this: Command): never {
  writeSync(1, JSON.stringify(helpTree(this, [])));
  process.exit(0);
}

Command.prototype.parse = writeTreeAndExit;
Command.prototype.parseAsync = writeTreeAndExit;
