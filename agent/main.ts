#!/usr/bin/env node
/**
 * `proxy`: the Coherent agent. Serves the config file given with --config (or
 * PROXY_CONFIG_FILE), reloads it on change and SIGHUP, drains gracefully on SIGTERM. With
 * `workers` above 1 this process is the primary and the workers are forks of it.
 */
import cluster from "node:cluster";
import { availableParallelism } from "node:os";
import { Command } from "commander";
import pino from "pino";
import { formatIssue } from "../services/config/index.js";
import { createLogger } from "../services/telemetry/logger.js";
import { createAccessLog } from "./observability/access-log.js";
import { ClusterPrimary, runWorker, WORKER_ENV } from "./runtime/cluster.js";
import type { ConfigTarget } from "./runtime/config-target.js";
import { agentOptions, ProxyAgent } from "./runtime/proxy-agent.js";
import { runControl } from "./runtime/run.js";
import { resolveSettings, SettingsError } from "./runtime/settings.js";

const program = new Command("proxy")
  .description("The Coherent proxy agent: a reverse proxy serving a config file, with an admin API.")
  .option("-c, --config <file>", "dynamic config file, YAML or JSON (env PROXY_CONFIG_FILE)")
  .option("-a, --admin <address>", 'admin API address, e.g. ":9090" (env PROXY_ADMIN_ADDRESS)')
  .option("-s, --static-config <file>", "static (process) config file")
  .addHelpText(
    "after",
    "\nEnvironment: PROXY_CONFIG_FILE, PROXY_ADMIN_ADDRESS, PROXY_ADMIN_TOKEN, PROXY_LOG_LEVEL,\nPROXY_METRICS_ADDRESS, PROXY_TLS_CERT, PROXY_TLS_KEY, PROXY_TRACE_ENDPOINT. Flags win over\nthe environment, the environment over the static config file.",
  )
  .showHelpAfterError();

async function main(): Promise<void> {
  program.parse();
  const flags = program.opts<{ config?: string; admin?: string; staticConfig?: string }>();
  let settings: Awaited<ReturnType<typeof resolveSettings>>;
  try {
    settings = await resolveSettings(flags, process.env, availableParallelism());
  } catch (error) {
    if (!(error instanceof SettingsError)) throw error;
    process.stderr.write(
      `proxy: ${error.message}\n${error.issues.map((i) => `  ${formatIssue(i)}\n`).join("")}`,
    );
    process.exit(2);
  }
  const stdout = pino.destination({ dest: 1, sync: false });
  const logger = createLogger({ name: "proxy", level: settings.logLevel, destination: stdout });
  // With the access log off, routes whose chain has an access_log stage still log.
  const accessLog = createAccessLog(stdout);
  process.once("exit", () => {
    accessLog.flush();
    try {
      stdout.flushSync();
    } catch {
      // Nothing more can be done for log lines at exit.
    }
  });

  if (cluster.isWorker && process.env[WORKER_ENV]) {
    runWorker(settings, logger.child({ worker: cluster.worker?.id }), accessLog);
    return;
  }
  try {
    let target: ConfigTarget;
    if (settings.workers > 1) {
      const primary = new ClusterPrimary(settings.workers, logger);
      await primary.start();
      target = primary;
    } else target = new ProxyAgent(agentOptions(settings, logger, accessLog));
    const running = await runControl(settings, logger, target);
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, "shutting down");
      running.stop().then(
        () => process.exit(0),
        (error: unknown) => {
          logger.error({ err: error }, "shutdown failed");
          process.exit(1);
        },
      );
    };
    process.on("SIGTERM", () => stop("SIGTERM"));
    process.on("SIGINT", () => stop("SIGINT"));
  } catch (error) {
    logger.fatal({ err: error }, (error as Error).message);
    logger.flush();
    setTimeout(() => process.exit(1), 100);
  }
}

await main();
