/**
 * Distribution end to end, every piece a real process: `coherent authority` on Postgres, two
 * `coherent distributor`s, three managed agents (`proxy --static-config`) split over them,
 * loopback upstreams. A submitted bundle reaches every agent, each ACKs (the authority's agent
 * list shows it), and traffic through every agent follows the new routes; a second bundle
 * waits for its promotion, then does the same; so does a bundle larger than gRPC's default
 * message size.
 */
import { mkdir, mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeKeyPair } from "../../services/bundle/index.js";
import { startUpstream, type Upstream } from "../support/upstream.js";
import {
  type AuthorityProcess,
  agentsOf,
  api,
  createAdminToken,
  createPostgresDatabase,
  type DistributorProcess,
  NO_POSTGRES,
  type PostgresDatabase,
  startAuthorityProcess,
  startDistributorProcess,
} from "./support/coherent.js";
import { type ManagedAgent, routesTo, startManagedAgent } from "./support/managed-agent.js";
import { stopAll, waitUntil } from "./support/processes.js";

const FLEET = "edge";

// The authority runs on a Postgres database of its own; skipped when COHERENT_TEST_NO_POSTGRES=1 (none here).
describe.skipIf(NO_POSTGRES)("a bundle's way from the authority to three agents", { timeout: 40_000 }, () => {
  let database: PostgresDatabase;
  let dir: string;
  let token: string;
  let authority: AuthorityProcess;
  let blue: Upstream;
  let green: Upstream;
  const distributors: DistributorProcess[] = [];
  const agents: ManagedAgent[] = [];

  beforeAll(async () => {
    database = await createPostgresDatabase();
    dir = await mkdtemp(join(tmpdir(), "coherent-distribution-"));
    const keys = await writeKeyPair(join(dir, "keys"));
    token = await createAdminToken(database);
    [authority, blue, green] = await Promise.all([
      startAuthorityProcess({ database, signingKeyFile: keys.privateFile }),
      startUpstream({ name: "blue" }),
      startUpstream({ name: "green" }),
    ]);
    expect((await api(authority.url, token, "POST", "/fleets", { name: FLEET })).status).toBe(201);
    distributors.push(
      ...(await Promise.all(
        ["d1", "d2"].map((id) =>
          startDistributorProcess({
            id,
            region: "eu-west",
            authorities: [authority.feed],
            cacheDir: join(dir, id),
            trustedKeys: [keys.publicFile],
          }),
        ),
      )),
    );
    const [d1, d2] = distributors.map((d) => d.address) as [string, string];
    const plan: Array<[string, string[]]> = [
      ["agent-1", [d1, d2]],
      ["agent-2", [d2, d1]],
      ["agent-3", [d1, d2]],
    ];
    agents.push(
      ...(await Promise.all(
        plan.map(async ([agentId, order]) => {
          const agentDir = join(dir, agentId);
          await mkdir(agentDir);
          return startManagedAgent({
            agentId,
            distributors: order,
            trustedKeys: [{ kid: keys.kid, publicFile: keys.publicFile }],
            dir: agentDir,
          });
        }),
      )),
    );
  }, 120_000);

  afterAll(async () => {
    await stopAll([
      ...agents.map((a) => a.process),
      ...distributors.map((d) => d.process),
      authority?.process,
    ]);
    await Promise.all([blue?.close(), green?.close()]);
    if (dir) await rm(dir, { recursive: true, force: true });
    await database?.drop();
  });

  const submit = async (upstream: Upstream): Promise<number> => {
    const response = await api(authority.url, token, "POST", `/fleets/${FLEET}/bundles`, {
      config: routesTo(upstream),
    });
    expect(response.status, JSON.stringify(response.body)).toBe(201);
    return Number(response.body.version);
  };

  /** Every agent serves through `upstream`: each of a few requests through each agent lands there. */
  const everyAgentServes = (upstream: Upstream, timeoutMs?: number) =>
    waitUntil(
      `every agent serving ${upstream.name}`,
      async () => {
        for (const agent of agents) {
          for (let i = 0; i < 3; i++) {
            const served = await agent.servedBy();
            if (served?.status !== 200 || served.upstream !== upstream.name) return undefined;
          }
        }
        return true;
      },
      timeoutMs,
    );

  /** The authority's agent list shows all three ACKed at `version`. */
  const everyAgentAcked = (version: number) =>
    waitUntil(`the authority showing every agent acked at v${version}`, async () => {
      const listed = await agentsOf(authority.url, token, FLEET);
      const ok = agents.every((_, i) => {
        const view = listed.get(`agent-${i + 1}`);
        return view?.running_version === version && view.state === "acked" && view.connected;
      });
      return ok ? listed : undefined;
    });

  it("delivers a submitted bundle to every agent, which ACK and route by it", async () => {
    const started = Date.now();
    const version = await submit(blue);
    expect(version).toBe(1);
    await everyAgentServes(blue);
    const servedMs = Date.now() - started;
    const listed = await everyAgentAcked(version);
    console.log(
      `distribution: v1 served by 3 agents ${servedMs} ms after submit, all ACKed at the authority after ${Date.now() - started} ms`,
    );
    expect(new Set([...listed.values()].map((a) => a.distributor))).toEqual(new Set(["d1", "d2"]));
    for (const view of listed.values()) expect(view.nack).toBeNull();
    expect(green.requests).toHaveLength(0);
  });

  it("holds a second bundle back until it is promoted, then moves every agent to it", async () => {
    const version = await submit(green);
    expect(version).toBe(2);
    // Not stable yet: give the distributors time to hold it, then every agent must still serve v1.
    await waitUntil("both distributors holding v2 in their caches", async () => {
      for (const id of ["d1", "d2"]) await stat(join(dir, id, "bundles", `fleet=${FLEET}`, `${version}.jws`));
      return true;
    });
    const state = await api(authority.url, token, "GET", `/fleets/${FLEET}/state`);
    expect(state.body).toMatchObject({ stable_version: 1 });
    await everyAgentServes(blue);
    expect(green.requests).toHaveLength(0);

    const started = Date.now();
    const promoted = await api(authority.url, token, "POST", `/fleets/${FLEET}/promote`, { version });
    expect(promoted.status).toBe(200);
    await everyAgentServes(green);
    const servedMs = Date.now() - started;
    await everyAgentAcked(version);
    console.log(
      `distribution: v2 served by 3 agents ${servedMs} ms after promote, all ACKed at the authority after ${Date.now() - started} ms`,
    );
    for (const agent of agents) {
      expect(agent.runningVersion()).toBe(2);
      expect(agent.refusals()).toEqual([]);
    }
  });

  it("carries a bundle over gRPC's default 4 MiB message size all the way to every agent", async () => {
    const config = routesTo(blue) as { routes: Array<Record<string, unknown>> };
    // A legitimate config can be this large (the bundle limit is 16 MiB): a long exact query match.
    config.routes.unshift({
      id: "large",
      path: "/large",
      query: { token: "x".repeat(5 * 1024 * 1024) },
      pool: "blue",
      policy: { timeout: "5s" },
    });
    const submitted = await api(authority.url, token, "POST", `/fleets/${FLEET}/bundles`, { config });
    expect(submitted.status, JSON.stringify(submitted.body)).toBe(201);
    const version = Number(submitted.body.version);
    const started = Date.now();
    expect((await api(authority.url, token, "POST", `/fleets/${FLEET}/promote`, { version })).status).toBe(
      200,
    );
    // Signed, verified by each distributor and each agent, written to disk by each: seconds on a busy machine.
    await everyAgentServes(blue, 25_000);
    await everyAgentAcked(version);
    const mib = (JSON.stringify(config).length / 2 ** 20).toFixed(1);
    console.log(
      `distribution: a ${mib} MiB config served and ACKed by 3 agents ${Date.now() - started} ms after promote`,
    );
    for (const agent of agents) expect(agent.refusals()).toEqual([]);
  });
});
