/** `coherent migrate`: bring the database schema up to date, as the authority does at start. */
import type { Command } from "commander";
import { migrateToLatest } from "../../authority/store/index.js";
import { ExitCode } from "../exit-codes.js";
import { createOutput, type OutputFormat, outputOption } from "../output.js";
import {
  coherentAction,
  type DatabaseFlags,
  describeDatabase,
  openSettingsDatabase,
  resolveSettings,
} from "./database.js";

export function registerMigrateCommand(program: Command, exit: (code: ExitCode) => void): void {
  program
    .command("migrate")
    .description("apply the pending database migrations")
    .addOption(outputOption())
    .action(
      coherentAction(exit, async (_options: unknown, command: Command) => {
        const options = command.optsWithGlobals<DatabaseFlags & { output: OutputFormat }>();
        const settings = await resolveSettings(options);
        const where = describeDatabase(settings);
        process.stderr.write(`migrating ${where}\n`);
        const database = await openSettingsDatabase(settings);
        try {
          const { applied } = await migrateToLatest(database.db);
          createOutput(options.output).result({ applied }, () =>
            applied.length === 0 ? `${where} is up to date` : `applied: ${applied.join(", ")}`,
          );
        } finally {
          await database.close();
        }
        return ExitCode.Ok;
      }),
    );
}
