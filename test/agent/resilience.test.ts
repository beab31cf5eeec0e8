/**
 * Resilience and traffic management end to end: a real agent process, real upstreams on
 * loopback that misbehave on purpose (test/support/upstream.ts), real HTTP. One agent serves
 * the file; each block applies the config it needs through the admin API.
 */

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { type AgentProcess, startAgent } from "../support/agent-process.js";
import { request } from "../support/http.js";
import { startUpstream, type Upstream } from "../support/upstream.js";

const LISTENER = "127.0.0.1:0";

let agent: AgentProcess;
let base: string;
const upstreams: Upstream[] = [];

async function upstream(name: string): Promise<Upstream> {
  const u = await startUpstream({ name });
  upstreams.push(u);
  return u;
}

async function apply(yaml: string): Promise<void> {
  const { status, body } = await agent.admin("POST", "/api/v2/config/apply", {
    config: parse(`listeners:\n  - address: "${LISTENER}"\n${yaml}`),
  });
  expect(status, JSON.stringify(body)).toBe(200);
}

async function timed(path: string, init: { method?: string; headers?: Record<string, string> } = {}) {
  const started = performance.now();
  const res = await request(`${base}${path}`, init);
  await res.drain();
  return { status: res.status, upstream: res.headers["x-upstream"], ms: performance.now() - started };
}

beforeAll(async () => {
  const seed = await upstream("seed");
  agent = await startAgent({
    config: `listeners:\n  - address: "${LISTENER}"\nroutes:\n  - id: r\n    pool: p\npools:\n  - id: p\n    endpoints: [{address: "${seed.address}"}]\n`,
  });
  base = `http://127.0.0.1:${await agent.port(LISTENER)}`;
});

afterAll(async () => {
  await agent?.stop("SIGKILL");
  await Promise.all(upstreams.map((u) => u.close()));
});

describe("hedged requests", () => {
  let slow: Upstream;
  let fast: Upstream;
  beforeAll(async () => {
    [slow, fast] = await Promise.all([upstream("slow"), upstream("fast")]);
    slow.setBehaviour({ delayMs: 600 });
    await apply(`routes:
  - id: hedged
    path_prefix: /hedged
    pool: two
    policy: {timeout: 5s, hedging: {delay: 40ms, max_hedges: 1}}
  - id: plain
    pool: two
pools:
  - id: two
    balancer: round_robin
    endpoints: [{address: "${slow.address}"}, {address: "${fast.address}"}]
`);
  });

  it("answers GETs from the fast endpoint after the hedge delay instead of waiting for the slow one", async () => {
    const results = [];
    for (let i = 0; i < 8; i++) results.push(await timed("/hedged/x"));
    expect(results.every((r) => r.status === 200 && r.upstream === "fast")).toBe(true);
    expect(Math.max(...results.map((r) => r.ms))).toBeLessThan(400);
    // Every other request went to the slow endpoint first: those were hedged.
    expect(slow.requests.filter((r) => r.path === "/hedged/x").length).toBeGreaterThanOrEqual(3);
  });

  it("does not hedge a POST or a route without hedging", async () => {
    const posts = [
      await timed("/hedged/p", { method: "POST" }),
      await timed("/hedged/p", { method: "POST" }),
    ];
    expect(posts.map((r) => r.upstream).sort()).toEqual(["fast", "slow"]);
    expect(Math.max(...posts.map((r) => r.ms))).toBeGreaterThanOrEqual(550);
    const plain = [await timed("/plain"), await timed("/plain")];
    expect(plain.map((r) => r.upstream).sort()).toEqual(["fast", "slow"]);
  });
});
