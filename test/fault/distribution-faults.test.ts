/**
 * Distribution under faults, every piece a real process: `coherent authority` on embedded
 * PGlite, two `coherent distributor`s, managed agents and an upstream on loopback.
 *
 * - A distributor killed with SIGKILL: its agents reconnect to the other one and stay on
 *   their version (nothing re-pushed), while a steady load through them sees no failure.
 * - The authority stopped: the distributor keeps serving from its cache, and an agent that
 *   was never connected before gets the fleet's bundle from it.
 * - Every distributor gone: an agent restarted serves the bundle it persisted.
 *
 * The tests run in order, each on what the previous left.
 */
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type WrittenKeyPair, writeKeyPair } from "../../services/bundle/index.js";
import {
  type AuthorityProcess,
  agentsOf,
  api,
  createAdminToken,
  type DistributorProcess,
  distributorMetric,
  startAuthorityProcess,
  startDistributorProcess,
} from "../e2e/support/coherent.js";
import { steadyLoad } from "../e2e/support/load.js";
import { type ManagedAgent, routesTo, startManagedAgent } from "../e2e/support/managed-agent.js";
import { stopAll, waitUntil } from "../e2e/support/processes.js";
import { reportReliability } from "../support/reliability.js";
import { startUpstream, type Upstream } from "../support/upstream.js";

const FLEET = "edge";

describe("distribution under faults", { timeout: 60_000 }, () => {
  let dir: string;
  let keys: WrittenKeyPair;
  let token: string;
  let authority: AuthorityProcess;
  let blue: Upstream;
  let d1: DistributorProcess;
  let d2: DistributorProcess;
  const agents = new Map<string, ManagedAgent>();

  const startAgent = async (agentId: string, distributors: readonly string[]): Promise<ManagedAgent> => {
    const agentDir = join(dir, agentId);
    await mkdir(agentDir, { recursive: true });
    const agent = await startManagedAgent({
      agentId,
      distributors,
      trustedKeys: [{ kid: keys.kid, publicFile: keys.publicFile }],
      dir: agentDir,
    });
    agents.set(agentId, agent);
    return agent;
  };

  const servesBlue = (agent: ManagedAgent) =>
    waitUntil(`${agent.process.name} serving blue`, async () => {
      const served = await agent.servedBy();
      return served?.status === 200 && served.upstream === "blue" ? true : undefined;
    });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "coherent-faults-"));
    keys = await writeKeyPair(join(dir, "keys"));
    const database = { dataDir: join(dir, "authority-data") };
    // PGlite is one process's: the token is made before the authority opens the directory.
    token = await createAdminToken(database);
    [authority, blue] = await Promise.all([
      startAuthorityProcess({ database, signingKeyFile: keys.privateFile }),
      startUpstream({ name: "blue" }),
    ]);
    expect((await api(authority.url, token, "POST", "/fleets", { name: FLEET })).status).toBe(201);
    const submitted = await api(authority.url, token, "POST", `/fleets/${FLEET}/bundles`, {
      config: routesTo(blue),
    });
    expect(submitted.status, JSON.stringify(submitted.body)).toBe(201);
    const distributor = (id: string) =>
      startDistributorProcess({
        id,
        region: "eu-west",
        authorities: [authority.feed],
        cacheDir: join(dir, id),
        trustedKeys: [keys.publicFile],
      });
    [d1, d2] = await Promise.all([distributor("d1"), distributor("d2")]);
    const started = await Promise.all([
      startAgent("agent-1", [d1.address, d2.address]),
      startAgent("agent-2", [d1.address, d2.address]),
      startAgent("agent-3", [d2.address, d1.address]),
    ]);
    await Promise.all(started.map(servesBlue));
    // Traffic moves at the swap; the log line (and the ACK) follow it: the tests count lines from here.
    await Promise.all(started.map((agent) => agent.process.waitFor((line) => line.msg === "bundle serving")));
  }, 120_000);

  afterAll(async () => {
    await stopAll([
      ...[...agents.values()].map((a) => a.process),
      d1?.process,
      d2?.process,
      authority?.process,
    ]);
    await blue?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("moves a killed distributor's agents to the other, on their version, without a failed request", async () => {
    const moved = [agents.get("agent-1"), agents.get("agent-2")] as ManagedAgent[];
    const urls = await Promise.all(moved.map(async (agent) => `${await agent.listenerUrl()}/load`));
    const pushesBefore = await distributorMetric(d2, "coherent_distributor_pushes_total");
    const linesBefore = moved.map((agent) => agent.process.lines.length);
    const load = steadyLoad(urls);
    await sleep(300);

    const killedAt = Date.now();
    await d1.process.stop("SIGKILL");
    const reconnectMs = await Promise.all(
      moved.map(async (agent, i) => {
        await agent.process.waitFor(
          (line) =>
            line.msg === "connected to distributor" &&
            line.distributor === d2.address &&
            agent.process.lines.indexOf(line) >= (linesBefore[i] ?? 0),
        );
        return Date.now() - killedAt;
      }),
    );
    await waitUntil("d2 holding all three agents", async () =>
      (await distributorMetric(d2, "coherent_distributor_connected_agents")) === 3 ? true : undefined,
    );
    const shown = await waitUntil("the authority showing the moved agents on d2", async () => {
      const listed = await agentsOf(authority.url, token, FLEET);
      const views = moved.map((_, i) => listed.get(`agent-${i + 1}`));
      return views.every((v) => v?.distributor === "d2" && v.connected) ? views : undefined;
    });
    for (const view of shown) expect(view).toMatchObject({ running_version: 1, state: "acked" });
    const result = await load.stop();
    console.log(
      `faults: after SIGKILL of d1, its agents reconnected to d2 in ${reconnectMs.join(" and ")} ms; ${result.sent} requests through them meanwhile, ${result.failures.length} failed`,
    );
    reportReliability({
      suite: "fault",
      scenario: "distributor SIGKILL",
      loadHeld: "2 agents, one request each every 20 ms",
      faultsInjected: 1,
      badInputsTried: 0,
      requestsSent: result.sent,
      requestsFailed: result.failures.length,
      // Nothing new was submitted: the agents stay on the version they run, nothing re-pushed.
      bundlesLost: 0,
      convergenceMs: Math.max(...reconnectMs),
      notes: "agents moved to the other distributor on their version",
    });

    expect(result.failures).toEqual([]);
    expect(result.sent).toBeGreaterThan(20);
    for (const agent of agents.values()) expect(agent.runningVersion()).toBe(1);
    // They said Hello with v1 and its hash: nothing to push, nothing re-applied.
    expect(await distributorMetric(d2, "coherent_distributor_pushes_total")).toBe(pushesBefore);
    moved.forEach((agent, i) => {
      const since = agent.process.lines.slice(linesBefore[i]);
      expect(since.filter((line) => line.msg === "bundle serving")).toEqual([]);
    });
  });

  it("keeps serving the region with the authority stopped: a new agent gets the cached bundle", async () => {
    await authority.process.stop("SIGTERM");
    const health = await fetch(`${d2.httpUrl}/healthz`);
    expect(health.status).toBe(200);

    const started = Date.now();
    const newcomer = await startAgent("agent-4", [d2.address]);
    await newcomer.process.waitFor((line) => line.msg === "bundle serving");
    await servesBlue(newcomer);
    console.log(
      `faults: with the authority down, a new agent served the cached v1 ${Date.now() - started} ms after its start`,
    );
    expect(newcomer.runningVersion()).toBe(1);
    expect(newcomer.refusals()).toEqual([]);
  });

  it("restarts an agent with every distributor down on the bundle it persisted", async () => {
    await d2.process.stop("SIGKILL");
    const agent = agents.get("agent-1") as ManagedAgent;
    await agent.process.stop("SIGKILL");

    const started = Date.now();
    const restarted = await startAgent("agent-1", [d1.address, d2.address]);
    await restarted.process.waitFor((line) => line.msg === "serving the last good bundle");
    await servesBlue(restarted);
    console.log(
      `faults: with no distributor up, a restarted agent served its persisted v1 ${Date.now() - started} ms after its start`,
    );
    expect(restarted.runningVersion()).toBe(1);
    expect(restarted.process.lines.some((line) => line.msg === "connected to distributor")).toBe(false);
  });
});
