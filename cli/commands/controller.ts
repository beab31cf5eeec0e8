/**
 * `coherent controller`: run the rollout controller alone over the shared Postgres, until
 * SIGINT or SIGTERM. Run two or more: they elect one leader by an advisory lock, and another
 * takes over within seconds when it dies. Its settings are the authority's (the same config
 * file, database and signing key: rollbacks are signed bundles).
 */
import { once } from "node:events";
import type { Command } from "commander";
import { ExitCode } from "../exit-codes.js";
import { coherentAction, type DatabaseFlags, resolveSettings } from "./database.js";

interface ControllerOptions extends DatabaseFlags {
  readonly signingKeyFile?: string;
  readonly tick?: string;
  readonly logLevel?: string;
}

export function registerControllerCommand(program: Command, exit: (code: ExitCode) => void): void {
  program
    .command("controller")
    .description(
      "run the rollout controller over a shared Postgres: stages rollouts, judges their health, rolls back; replicas elect one leader",
    )
    .option(
      "--signing-key-file <file>",
      "the Ed25519 private key (PKCS#8 PEM) rollback bundles are signed with",
    )
    .option(
      "--tick <duration>",
      "how often each rollout is looked at (default 1s; or COHERENT_CONTROLLER_TICK)",
    )
    .option("--log-level <level>", "trace, debug, info, warn, error or silent")
    .action(
      coherentAction(exit, async (_options: unknown, command: Command) => {
        const options = command.optsWithGlobals<ControllerOptions>();
        const settings = await resolveSettings({
          ...options,
          controller: true,
          ...(options.tick === undefined ? {} : { controllerTick: options.tick }),
        });
        // Loaded here, not at the top: `--help` and the other commands need none of it.
        const { startControllerProcess } = await import("../../authority/main.js");
        const controller = await startControllerProcess(settings);
        const stop = new AbortController();
        await Promise.race([
          once(process, "SIGINT", { signal: stop.signal }),
          once(process, "SIGTERM", { signal: stop.signal }),
        ]);
        stop.abort();
        await controller.close();
        return ExitCode.Ok;
      }),
    );
}
