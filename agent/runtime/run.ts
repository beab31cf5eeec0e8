/**
 * Running one agent process: config file in, listeners and the admin API up, reloads on file
 * change and SIGHUP, the spec's graceful shutdown on SIGTERM.
 */
import { createServer, type Server } from "node:http";
import type { FastifyInstance } from "fastify";
import { formatIssue, validateDynamicConfig } from "../../services/config/index.js";
import type { Logger } from "../../services/telemetry/logger.js";
import { type AdminApplyResult, type AdminTarget, startAdminServer } from "../admin/admin-server.js";
import { parseListenAddress } from "../listener/listener-manager.js";
import type { AccessLog } from "../observability/access-log.js";
import { readConfigFile, watchConfigFile } from "./config-file.js";
import { ProxyAgent } from "./proxy-agent.js";
import type { Settings } from "./settings.js";

export interface RunningAgent {
  readonly agent: ProxyAgent;
  stop(): Promise<void>;
}

export async function runAgent(
  settings: Settings,
  logger: Logger,
  accessLog: AccessLog,
): Promise<RunningAgent> {
  const agent = new ProxyAgent({ staticConfig: settings.staticConfig, logger, accessLog });
  const file = settings.configFile;
  if (!file) throw new Error("no config: pass --config FILE or set PROXY_CONFIG_FILE");

  const reload = async (why: string) => {
    const read = await readConfigFile(file);
    if (!read.ok) {
      logger.error(
        { file, errors: read.errors, lines: read.errors.map((e) => formatIssue(e, file)) },
        `config ${why}: invalid, not applied`,
      );
      agent.metrics.configReloads.labels("rejected").inc();
      return read;
    }
    const source = `${file} (${why})`;
    const result = await agent.applyValidated(read.config, source);
    if (result.status === "rejected")
      logger.error({ file, errors: result.errors }, `config ${why}: rejected`);
    if (result.status === "unchanged") logger.info({ source, version: result.version }, "config unchanged");
    return result;
  };

  const first = await reload("start");
  if (!("status" in first) || first.status === "rejected") {
    throw new Error(`the config in ${file} cannot be served; see the errors above`);
  }

  const stopWatching = watchConfigFile(file, () => void reload("file changed"));
  const onHangup = () => void reload("SIGHUP");
  process.on("SIGHUP", onHangup);

  let admin: FastifyInstance | undefined;
  if (settings.adminAddress) {
    admin = await startAdminServer(adminTarget(agent), {
      address: settings.adminAddress,
      tokens: settings.adminTokens,
      tls: settings.staticConfig.admin?.tls,
      logger,
    });
    const bound = admin.server.address();
    const where =
      typeof bound === "object" && bound ? `${bound.address}:${bound.port}` : settings.adminAddress;
    logger.info({ address: where, api: settings.adminTokens.length > 0 }, "admin API listening");
  }
  const metricsServer = settings.metricsAddress
    ? await startMetricsServer(agent, settings.metricsAddress)
    : undefined;

  return {
    agent,
    async stop() {
      stopWatching();
      process.off("SIGHUP", onHangup);
      await agent.shutdown(settings.drainDelayMs, settings.drainTimeoutMs);
      await admin?.close();
      metricsServer?.close();
    },
  };
}

function adminTarget(agent: ProxyAgent): AdminTarget {
  const toAdmin = async (pending: ReturnType<ProxyAgent["apply"]>): Promise<AdminApplyResult> => {
    const result = await pending;
    return result.status === "rejected" ? result : { status: result.status, version: result.version };
  };
  return {
    get ready() {
      return agent.ready;
    },
    get version() {
      return agent.snapshots.current?.version;
    },
    apply: (config, source) => toAdmin(agent.apply(config, source)),
    diff: (config) => agent.diff(config),
    validate: (config) => {
      const result = validateDynamicConfig(config);
      return result.ok ? { ok: true } : { ok: false, errors: result.errors };
    },
    current: () => {
      const snapshot = agent.snapshots.current;
      return snapshot && { version: snapshot.version, config: snapshot.config };
    },
    rollback: (version) => {
      const pending = agent.rollback(version);
      return pending && toAdmin(pending);
    },
    pools: () =>
      (agent.snapshots.current?.config.pools ?? []).map((pool) => ({
        id: pool.id,
        endpoints: pool.endpoints.map((e) => ({ address: e.address, weight: e.weight ?? 1 })),
      })),
    listeners: () => agent.listeners(),
    metrics: async () => ({
      contentType: agent.metrics.registry.contentType,
      body: await agent.metrics.registry.metrics(),
    }),
  };
}

async function startMetricsServer(agent: ProxyAgent, address: string): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.url !== "/metrics") {
      res.writeHead(404).end();
      return;
    }
    agent.metrics.registry.metrics().then(
      (body) => res.writeHead(200, { "content-type": agent.metrics.registry.contentType }).end(body),
      () => res.writeHead(500).end(),
    );
  });
  const { host, port } = parseListenAddress(address);
  await new Promise<void>((resolve) => server.listen({ host, port }, resolve));
  return server;
}
