/**
 * The whole system on one machine, for `coherent dev`: demo upstreams, the authority on the
 * embedded database with the rollout controller in-process, one distributor, the demo fleet's
 * agents as child processes, the demo fleet set up through the API, and gentle traffic.
 * Components log to files under the data dir; `say` gets the few progress lines for the
 * terminal. Start once; close stops everything in the reverse order and is idempotent.
 */
import { readdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import pino from "pino";
import { resolveAuthoritySettings } from "../../authority/config.js";
import { type AuthorityHandle, startAuthority } from "../../authority/main.js";
import { authenticate, issueToken } from "../../authority/tokens.js";
import { type DistributorHandle, startDistributor } from "../../services/distributor/main.js";
import { createLogger } from "../../services/telemetry/logger.js";
import { type DemoFiles, demoFiles, demoPlan } from "./demo-configs.js";
import { DEMO_FLEET, ensureDemoFleet } from "./demo-fleet.js";
import { type DemoTraffic, startDemoTraffic } from "./demo-traffic.js";
import { type DemoUpstreams, startDemoUpstreams } from "./demo-upstreams.js";
import { type DevAgent, startDevAgent, waitServing } from "./dev-fleet.js";
import { type DevDirectory, openDevDirectory } from "./dev-state.js";
import { checkPortsFree, type DevPorts, devPorts, HOST } from "./ports.js";

export const DEV_REGION = "local";

export interface DevOptions {
  readonly dataDir: string;
  readonly reset: boolean;
  readonly basePort: number;
  readonly agents: number;
  /** Demo requests a second over all agents; 0 for none. */
  readonly rate: number;
  readonly logLevel: string;
  /** A progress line for the terminal. */
  readonly say: (line: string) => void;
}

export interface DevAgentView {
  readonly id: string;
  readonly pid: number;
  readonly url: string;
  readonly adminUrl: string;
  readonly logFile: string;
}

export interface DevSystem {
  readonly dataDir: string;
  readonly logDir: string;
  readonly ports: DevPorts;
  readonly authorityUrl: string;
  readonly token: string;
  readonly ctlConfig: string;
  readonly fleet: string;
  readonly stableVersion: number;
  /** Whether this start made the data dir and submitted the demo's first bundle. */
  readonly firstStart: boolean;
  readonly agents: readonly DevAgentView[];
  readonly demo: DemoFiles;
  /** The agents' admin API token. */
  readonly agentAdminToken: string;
  /** Idempotent. */
  close(): Promise<void>;
}

/** Waits this long for every agent to serve; agents through tsx on a busy machine are slow. */
const SERVE_TIMEOUT_MS = 60_000;
/** An agent still draining after this is killed. */
const AGENT_STOP_GRACE_MS = 8_000;

export async function startDevSystem(options: DevOptions): Promise<DevSystem> {
  const dataDir = resolve(options.dataDir);
  const ports = devPorts(options.basePort, options.agents);
  await checkPortsFree(ports);
  const dir = await openDevDirectory(dataDir, options.reset);
  const closers: Array<() => Promise<void>> = [() => dir.release()];
  const close = async () => {
    for (const closer of closers.splice(0).reverse()) await closer().catch(() => undefined);
  };
  // Once stopping, agents exit because they were asked to, or because Ctrl-C reached them too.
  let stopping = false;
  try {
    const logs = fileLogs(dir, options.logLevel);
    closers.push(() => logs.close());
    const upstreams: DemoUpstreams = await startDemoUpstreams(ports.upstreams);
    closers.push(() => upstreams.close());

    options.say("starting the authority (embedded database, rollout controller)");
    const settings = await resolveAuthoritySettings(
      {
        dataDir,
        listen: `${HOST}:${ports.authority}`,
        feedListen: `${HOST}:${ports.feed}`,
        controller: true,
        // Twice a second, so the demo's short stages move on soon after their bake.
        controllerTick: "500ms",
        logLevel: options.logLevel,
      },
      // Only flags: a COHERENT_DATABASE_URL meant for a real deployment must not reach the demo.
      {},
    );
    const authority: AuthorityHandle = await startAuthority(settings, { logger: logs.logger("authority") });
    closers.push(() => authority.close());
    const token = await devToken(authority, dir);
    await dir.writeCtlConfig(authority.url, token);

    const demo = await demoFiles(options.basePort, dataDir);
    const fleet = await ensureDemoFleet({
      server: authority.url,
      token,
      stableFile: demo.files.stable,
      plan: await demoPlan(),
    });
    if (fleet.submitted)
      options.say(`submitted the demo's first bundle: fleet ${DEMO_FLEET}, version ${fleet.stableVersion}`);

    const publicFile = await publicKeyFile(dataDir);
    const distributor: DistributorHandle = await startDistributor(
      {
        id: "dev",
        region: DEV_REGION,
        authorities: [authority.feedAddress ?? `${HOST}:${ports.feed}`],
        listen: `${HOST}:${ports.distributor}`,
        httpListen: undefined,
        cacheDir: join(dataDir, "distributor"),
        trustedKeys: [publicFile],
        // Health up every second, so a rollout stage sees its traffic soon.
        healthFlushMs: 1_000,
        logLevel: options.logLevel,
      },
      { logger: logs.logger("distributor") },
    );
    closers.push(() => distributor.close());

    options.say(`starting ${options.agents} agent${options.agents === 1 ? "" : "s"} of fleet ${DEMO_FLEET}`);
    const agents: DevAgent[] = [];
    closers.push(async () => {
      await Promise.all(agents.map((agent) => agent.stop(AGENT_STOP_GRACE_MS)));
    });
    for (let i = 0; i < options.agents; i++) {
      const id = `demo-${i + 1}`;
      agents.push(
        await startDevAgent({
          id,
          fleet: DEMO_FLEET,
          region: DEV_REGION,
          distributor: distributor.address,
          trustedKey: { kid: authority.kid, publicFile },
          dir: join(dataDir, "agents", id),
          logFile: join(dir.logDir, `agent-${id}.log`),
          adminPort: ports.agentAdmin[i] as number,
          adminToken: dir.state.agentAdminToken,
          onUnexpectedExit: (agent, code) => {
            if (!stopping) options.say(`agent ${agent.id} exited (${code}): see ${agent.logFile}`);
          },
        }),
      );
    }
    const urls = await Promise.all(agents.map((agent) => waitServing(agent, SERVE_TIMEOUT_MS)));
    const views: DevAgentView[] = agents.map((agent, i) => ({
      id: agent.id,
      pid: agent.pid,
      url: urls[i] as string,
      adminUrl: agent.adminUrl,
      logFile: agent.logFile,
    }));

    const traffic: DemoTraffic = startDemoTraffic(() => views.map((view) => view.url), options.rate);
    closers.push(() => traffic.stop());

    let closing: Promise<void> | undefined;
    return {
      dataDir,
      logDir: dir.logDir,
      ports,
      authorityUrl: authority.url,
      token,
      ctlConfig: dir.ctlConfig,
      fleet: DEMO_FLEET,
      stableVersion: fleet.stableVersion,
      firstStart: fleet.submitted,
      agents: views,
      demo,
      agentAdminToken: dir.state.agentAdminToken,
      close: () => {
        stopping = true;
        closing ??= close();
        return closing;
      },
    };
  } catch (error) {
    stopping = true;
    await close();
    throw error;
  }
}

/** The token kept in the data dir while the authority still knows it; else a new admin token. */
async function devToken(authority: AuthorityHandle, dir: DevDirectory): Promise<string> {
  const kept = dir.state.token;
  if (kept !== "" && (await authenticate(authority.store, kept))) return kept;
  const issued = await issueToken(authority.store, {
    name: "dev",
    role: "admin",
    actor: "system:coherent-dev",
  });
  await dir.save({ ...dir.state, token: issued.token });
  return issued.token;
}

/** The authority's dev signing key's public half, which it made under the data dir on first start. */
async function publicKeyFile(dataDir: string): Promise<string> {
  const keys = join(dataDir, "keys");
  const file = (await readdir(keys)).filter((name) => name.endsWith(".pub.pem")).sort()[0];
  if (file === undefined) throw new Error(`no public key in ${keys}`);
  return join(keys, file);
}

/** One JSON log file per component under the data dir's logs/, flushed at close. */
function fileLogs(dir: DevDirectory, level: string) {
  const destinations: Array<ReturnType<typeof pino.destination>> = [];
  return {
    logger(name: string) {
      const destination = pino.destination({
        dest: join(dir.logDir, `${name}.log`),
        sync: false,
        mkdir: true,
      });
      destinations.push(destination);
      return createLogger({ name, level, destination });
    },
    async close() {
      for (const destination of destinations) {
        try {
          destination.flushSync();
        } catch {
          // A file not open yet has nothing written to flush.
        }
        destination.end();
      }
    },
  };
}
