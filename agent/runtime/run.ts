/**
 * The control side of an agent process: the config file in (read at start, on change and on
 * SIGHUP), the admin API and the metrics listener up, and shutdown. It drives a ConfigTarget:
 * one agent in this process, or a cluster's workers.
 */
import { createServer, type Server } from "node:http";
import type { FastifyInstance } from "fastify";
import { diffConfigs, formatIssue, validateDynamicConfig } from "../../services/config/index.js";
import type { Logger } from "../../services/telemetry/logger.js";
import { type AdminApplyResult, type AdminTarget, startAdminServer } from "../admin/admin-server.js";
import { createManagedControl, type ManagedControl } from "../control/managed-control.js";
import { softwareVersion } from "../control/software-version.js";
import { parseListenAddress } from "../listener/listener-manager.js";
import { readConfigFile, watchConfigFile } from "./config-file.js";
import type { ApplyResult, ConfigTarget } from "./config-target.js";
import type { Settings } from "./settings.js";

export interface RunningAgent {
  stop(): Promise<void>;
}

export async function runControl(
  settings: Settings,
  logger: Logger,
  target: ConfigTarget,
): Promise<RunningAgent> {
  const controlPlane = settings.staticConfig.control_plane;
  const file = settings.configFile;
  if (controlPlane && file)
    throw new Error(
      "control_plane is set, so the config comes from the distributors: drop --config / PROXY_CONFIG_FILE",
    );
  if (!controlPlane && !file)
    throw new Error(
      "no config: pass --config FILE, set PROXY_CONFIG_FILE, or set control_plane in the static config",
    );

  const reload = async (file: string, why: string): Promise<ApplyResult> => {
    const read = await readConfigFile(file);
    if (!read.ok) {
      logger.error(
        { file, errors: read.errors, lines: read.errors.map((e) => formatIssue(e, file)) },
        `config ${why}: invalid, not applied`,
      );
      target.recordRejected();
      return { status: "rejected", errors: read.errors };
    }
    const source = `${file} (${why})`;
    const result = await target.applyValidated(read.config, source);
    if (result.status === "rejected")
      logger.error({ file, errors: result.errors }, `config ${why}: rejected`);
    if (result.status === "unchanged") logger.info({ source, version: result.version }, "config unchanged");
    return result;
  };

  let managed: ManagedControl | undefined;
  let stopWatching = () => {};
  let onHangup = () => {};
  if (controlPlane) {
    managed = await createManagedControl(controlPlane, target, logger, await softwareVersion());
    await managed.start();
  } else if (file) {
    const first = await reload(file, "start");
    if (first.status === "rejected")
      throw new Error(`the config in ${file} cannot be served; see the errors above`);
    stopWatching = watchConfigFile(file, () => void reload(file, "file changed"));
    onHangup = () => void reload(file, "SIGHUP");
  }
  // Also when managed: SIGHUP's default would end the process.
  process.on("SIGHUP", onHangup);

  let admin: FastifyInstance | undefined;
  if (settings.adminAddress) {
    admin = await startAdminServer(adminTarget(target), {
      address: settings.adminAddress,
      tokens: settings.adminTokens,
      tls: settings.staticConfig.admin?.tls,
      logger,
      managed: controlPlane !== undefined,
    });
    const bound = admin.server.address();
    const where =
      typeof bound === "object" && bound ? `${bound.address}:${bound.port}` : settings.adminAddress;
    logger.info({ address: where, api: settings.adminTokens.length > 0 }, "admin API listening");
  }
  const metricsServer = settings.metricsAddress
    ? await startMetricsServer(target, settings.metricsAddress)
    : undefined;

  return {
    async stop() {
      stopWatching();
      process.off("SIGHUP", onHangup);
      await managed?.stop();
      await target.shutdown(settings.drainDelayMs, settings.drainTimeoutMs);
      await admin?.close();
      metricsServer?.close();
    },
  };
}

function adminTarget(target: ConfigTarget): AdminTarget {
  const toAdmin = async (pending: Promise<ApplyResult>): Promise<AdminApplyResult> => {
    const result = await pending;
    return result.status === "rejected" ? result : { status: result.status, version: result.version };
  };
  return {
    get ready() {
      return target.ready;
    },
    get version() {
      return target.current()?.version;
    },
    apply: (data, source) => {
      const validated = validateDynamicConfig(data);
      if (!validated.ok) {
        target.recordRejected();
        return Promise.resolve({ status: "rejected", errors: validated.errors });
      }
      return toAdmin(target.applyValidated(validated.value, source));
    },
    diff: (data) => {
      const validated = validateDynamicConfig(data);
      if (!validated.ok) return { ok: false, errors: validated.errors };
      return { ok: true, changes: diffConfigs(target.current()?.config ?? {}, validated.value) };
    },
    validate: (data) => {
      const validated = validateDynamicConfig(data);
      return validated.ok ? { ok: true } : { ok: false, errors: validated.errors };
    },
    current: () => {
      const entry = target.current();
      return entry && { version: entry.version, config: entry.config };
    },
    rollback: (version) => {
      const pending = target.rollback(version);
      return pending && toAdmin(pending);
    },
    pools: () =>
      (target.current()?.config.pools ?? []).map((pool) => ({
        id: pool.id,
        endpoints: pool.endpoints.map((e) => ({ address: e.address, weight: e.weight ?? 1 })),
      })),
    listeners: () => target.listeners(),
    runtimeState: () => target.runtimeState(),
    metrics: () => target.scrape(),
  };
}

async function startMetricsServer(target: ConfigTarget, address: string): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.url !== "/metrics") {
      res.writeHead(404).end();
      return;
    }
    target.scrape().then(
      ({ contentType, body }) => res.writeHead(200, { "content-type": contentType }).end(body),
      () => res.writeHead(500).end(),
    );
  });
  const { host, port } = parseListenAddress(address);
  await new Promise<void>((resolve) => server.listen({ host, port }, resolve));
  return server;
}
