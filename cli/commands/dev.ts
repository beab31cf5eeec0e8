/**
 * `coherent dev` (`npm start`): the whole system on one machine, on loopback — the authority on
 * the embedded database with the rollout controller, one distributor, a demo fleet of agents,
 * demo upstreams and gentle traffic — then a table of where everything is. Ctrl-C (SIGINT) or
 * SIGTERM stops it all (agents drain) and exits 0. A second start reuses the data dir.
 */
import type { Command } from "commander";
import { InvalidArgumentError, Option } from "commander";
import { ExitCode } from "../exit-codes.js";
import { type OutputFormat, outputOption } from "../output.js";
import { CliError, runAction } from "./run.js";

interface DevFlags {
  readonly dataDir?: string;
  readonly reset?: boolean;
  readonly basePort: number;
  readonly agents: number;
  readonly rate: number;
  readonly logLevel: string;
  readonly output: OutputFormat;
}

export const DEV_DATA_DIR = ".coherent/dev";

const integer = (min: number, max: number) => (value: string) => {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < min || parsed > max) {
    throw new InvalidArgumentError(`must be a whole number from ${min} to ${max}.`);
  }
  return parsed;
};

const HELP = `
Starts, all on 127.0.0.1:
  the authority (API and dashboard at /ui) on the embedded database, with the rollout controller
  one distributor (region "local"), fed by the authority
  the agents of fleet "demo", each a real proxy process with its own listener
  demo-api v1, v2 and a broken one answering 500s (deploy/examples/demo/ names them)
  about 20 requests a second over the agents, so rollouts have traffic to judge

Ports, from --base-port B (default 7400): authority B, feed B+1, distributor B+2,
demo-api v1/v2/broken B+11..B+13, agents' admin APIs B+21 on. Each agent's proxy port is
picked at start and printed.

The first start makes the data dir: the database, a signing key, an admin token (kept in
dev.json and in coherentctl.yaml for the printed commands), the demo fleet with its rollout
plan (deploy/examples/demo/plan.yaml) and its first bundle (stable.yaml). Later starts reuse
all of it; --reset deletes the data dir first. Logs: <data dir>/logs/, one file per component.`;

export function registerDevCommand(program: Command, exit: (code: ExitCode) => void): void {
  program
    .command("dev")
    .description("run the whole system on this machine with a demo fleet (what `npm start` runs)")
    .option("--reset", "delete the data dir first and start over")
    .addOption(
      new Option("--base-port <port>", "the first of the fixed ports (see below)")
        .argParser(integer(1024, 65_000))
        .default(7400),
    )
    .addOption(new Option("--agents <count>", "agents in the demo fleet").argParser(integer(1, 9)).default(3))
    .addOption(
      new Option("--rate <per-second>", "demo requests a second over all agents; 0 for none")
        .argParser(integer(0, 500))
        .default(20),
    )
    .addOption(new Option("--log-level <level>", "level of the log files").default("info"))
    .addOption(outputOption())
    .addHelpText(
      "after",
      `${HELP}\n\nThe data dir is the global --data-dir when given, else ${DEV_DATA_DIR}; the global --config
and --database-url do not apply. --output json prints\none JSON record when ready instead of the table.`,
    )
    .action(
      runAction("coherent dev", exit, async (_options: unknown, command: Command) => {
        // From the environment they are meant for `coherent authority` and are ignored here.
        const given = ["config", "databaseUrl"].filter(
          (name) => command.getOptionValueSourceWithGlobals(name) === "cli",
        );
        if (given.length > 0) {
          throw new CliError(
            "it runs on its own embedded database: --config and --database-url are for `coherent authority`",
            ExitCode.Usage,
          );
        }
        return runDev(command.optsWithGlobals<DevFlags>());
      }),
    );
}

async function runDev(flags: DevFlags): Promise<ExitCode> {
  const say = (line: string) => process.stderr.write(`coherent dev: ${line}\n`);
  let signals = 0;
  let onSignal: (signal: NodeJS.Signals) => void = () => undefined;
  const stopped = new Promise<NodeJS.Signals>((resolve) => {
    onSignal = (signal) => {
      signals++;
      if (signals === 1) return resolve(signal);
      say("stopping at once");
      process.exit(ExitCode.Failure);
    };
  });
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  // Loaded here, not at the top: `--help` and the other commands need none of it.
  const { startDevSystem } = await import("../dev/dev-system.js");
  const { readyRecord, readyText } = await import("../dev/ready-report.js");
  let system: Awaited<ReturnType<typeof startDevSystem>>;
  try {
    system = await startDevSystem({
      dataDir: flags.dataDir ?? DEV_DATA_DIR,
      reset: flags.reset === true,
      basePort: flags.basePort,
      agents: flags.agents,
      rate: flags.rate,
      logLevel: flags.logLevel,
      say,
    });
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw new CliError(`could not start: ${(error as Error).message}`);
  }
  const record = readyRecord(system, Math.round(process.uptime() * 1000));
  process.stdout.write(flags.output === "json" ? `${JSON.stringify(record)}\n` : readyText(record));
  const signal = await stopped;
  say(`${signal}: stopping (agents drain, then the distributor and the authority close)`);
  await system.close();
  say("stopped");
  // Whatever handle a library leaves open must not keep a stopped system's process alive.
  setTimeout(() => process.exit(ExitCode.Ok), 3_000).unref();
  return ExitCode.Ok;
}
