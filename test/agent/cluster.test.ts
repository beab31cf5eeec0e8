/**
 * `workers: 2`: the primary runs the control side, each worker the data plane on the shared
 * sockets. A change reaches every worker before it is answered, /metrics adds the workers up,
 * and a worker that dies is replaced with the current config.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AgentProcess, startAgent } from "../support/agent-process.js";
import { request } from "../support/http.js";
import { startUpstream, type Upstream } from "../support/upstream.js";

const LISTENER = "127.0.0.1:0";
let agent: AgentProcess;
let a: Upstream;
let b: Upstream;
let base: string;

const configFor = (pool: string) => ({
  listeners: [{ address: LISTENER }],
  routes: [{ id: "r", pool: "p" }],
  pools: [{ id: "p", endpoints: [{ address: pool }] }],
});

/** Upstream names that answered `count` requests, each on a new connection. */
async function servedBy(count: number): Promise<Set<string>> {
  const seen = new Set<string>();
  for (let i = 0; i < count; i++) {
    const res = await request(`${base}/who`, { headers: { connection: "close" } });
    seen.add(String(res.headers["x-upstream"]));
    await res.drain();
  }
  return seen;
}

beforeAll(async () => {
  [a, b] = await Promise.all([startUpstream({ name: "a" }), startUpstream({ name: "b" })]);
  agent = await startAgent({
    config: `listeners:\n  - address: "${LISTENER}"\nroutes:\n  - id: r\n    pool: p\npools:\n  - id: p\n    endpoints: [{address: "${a.address}"}]\n`,
    staticConfig: "workers: 2\nshutdown:\n  drain_delay: 0s\n  drain_timeout: 2s\n",
  });
  await agent.waitFor((line) => line.msg === "workers started");
  base = `http://127.0.0.1:${await agent.port(LISTENER)}`;
}, 30_000);

afterAll(async () => {
  await agent?.stop("SIGKILL");
  await Promise.all([a?.close(), b?.close()]);
});

describe("a cluster of workers", () => {
  it("serves from more than one worker process", async () => {
    await servedBy(10);
    const pids = new Set(agent.lines.filter((l) => l.msg === "listening").map((l) => l.pid));
    expect(pids.size).toBe(2);
  });

  it("merges every worker's runtime state in the admin API", async () => {
    const { status } = await agent.admin("POST", "/api/v2/config/apply", {
      config: {
        ...configFor(a.address),
        pools: [{ id: "p", endpoints: [{ address: a.address }], circuit_breaker: { min_requests: 5 } }],
      },
    });
    expect(status).toBe(200);
    await servedBy(6);
    const breakers = await agent.admin("GET", "/api/v2/breakers");
    expect(breakers.body).toEqual({
      breakers: [{ pool: "p", state: "closed", trips: 0, in_flight: 0, error_percent: 0 }],
    });
    const health = await agent.admin("GET", "/api/v2/pools/p/health");
    expect(health.body).toMatchObject({
      pool: "p",
      healthy_endpoints: 1,
      endpoints: [{ address: a.address, healthy: true }],
    });
  });

  it("answers an apply once every worker runs the new config", async () => {
    const { status, body } = await agent.admin("POST", "/api/v2/config/apply", {
      config: configFor(b.address),
    });
    expect(status).toBe(200);
    expect((body as { version: string }).version).toMatch(/^3-/);
    expect(await servedBy(20)).toEqual(new Set(["b"]));
  });

  it("adds up the workers' counters in /metrics", async () => {
    const scrape = async () => {
      const text = await (await request(`${agent.adminUrl}/metrics`)).text();
      return Number(/proxy_requests_total\{route="r",pool="p",status="200"\} (\d+)/.exec(text)?.[1] ?? 0);
    };
    const before = await scrape();
    await servedBy(12);
    expect((await scrape()) - before).toBe(12);
  });

  it("answers many admin requests without piling listeners on its workers", async () => {
    // Node warns once more than 10 listeners of one event sit on a worker.
    for (let i = 0; i < 15; i++) expect((await agent.admin("GET", "/api/v2/listeners")).status).toBe(200);
    expect(agent.lines.filter((l) => String(l.raw ?? "").includes("MaxListenersExceededWarning"))).toEqual(
      [],
    );
  });

  it("replaces a worker that dies and gives it the current config", async () => {
    const listening = agent.lines.filter((l) => l.msg === "listening");
    const victim = Number(listening[0]?.pid);
    process.kill(victim, "SIGKILL");
    await agent.waitFor((l) => l.msg === "worker died; starting another");
    await agent.waitFor((l) => l.msg === "config applied" && l.source === "worker restart");
    expect(await servedBy(20)).toEqual(new Set(["b"]));
  });

  it("applies a config while every worker dies, and their replacements serve it", async () => {
    const before = agent.lines.filter(
      (l) => l.msg === "config applied" && l.source === "worker restart",
    ).length;
    const workers = new Set(agent.lines.filter((l) => l.msg === "listening").map((l) => Number(l.pid)));
    for (const pid of workers) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // A worker an earlier test replaced is gone already.
      }
    }
    const { status, body } = await agent.admin("POST", "/api/v2/config/apply", {
      config: configFor(a.address),
    });
    expect(status).toBe(200);
    expect(body).toMatchObject({ version: expect.stringMatching(/^\d+-/) });
    await waitFor(
      () =>
        agent.lines.filter((l) => l.msg === "config applied" && l.source === "worker restart").length >=
        before + 2,
    );
    // With every worker gone the shared socket closed; port 0 gives the new ones another port.
    base = `http://127.0.0.1:${await agent.port(LISTENER)}`;
    expect(await servedBy(20)).toEqual(new Set(["a"]));
    expect((await agent.admin("GET", "/api/v2/config/current")).body).toMatchObject({
      version: (body as { version: string }).version,
    });
  });

  it("stops every worker on SIGTERM and exits 0", async () => {
    expect(await agent.stop("SIGTERM")).toBe(0);
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
