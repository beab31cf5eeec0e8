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

async function metrics(): Promise<string> {
  return (await request(`${agent.adminUrl}/metrics`)).text();
}

async function poolHealth(pool: string) {
  const { body } = await agent.admin("GET", `/api/v2/pools/${pool}/health`);
  return body as {
    healthy_endpoints: number;
    endpoints: Array<{ address: string; healthy: boolean; state: string; reason: string }>;
  };
}

/** Sends `count` GETs one after another; the answering upstreams' names and the statuses. */
async function sequential(path: string, count: number, headers: Record<string, string> = {}) {
  const out: Array<{ status: number; upstream: string | undefined; headers: Record<string, unknown> }> = [];
  for (let i = 0; i < count; i++) {
    const res = await request(`${base}${path}`, { headers });
    await res.drain();
    out.push({
      status: res.status,
      upstream: res.headers["x-upstream"] as string | undefined,
      headers: res.headers,
    });
  }
  return out;
}

async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<number> {
  const started = performance.now();
  while (!(await check())) {
    if (performance.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return performance.now() - started;
}

describe("active health checks", () => {
  let good: Upstream;
  let bad: Upstream;
  beforeAll(async () => {
    [good, bad] = await Promise.all([upstream("good"), upstream("bad")]);
    await apply(`routes:
  - id: checked
    pool: checked
pools:
  - id: checked
    endpoints: [{address: "${good.address}"}, {address: "${bad.address}"}]
    health:
      active: {interval: 100ms, timeout: 80ms, path: /health, expected_status: 200-299, unhealthy_threshold: 2, healthy_threshold: 1}
`);
  });

  it("takes a failing endpoint out of rotation, says why, and puts it back when it recovers", async () => {
    bad.setBehaviour({ status: 503 });
    await until(
      async () => (await poolHealth("checked")).healthy_endpoints === 1,
      3000,
      "the bad endpoint to turn unhealthy",
    );
    const health = await poolHealth("checked");
    const report = health.endpoints.find((e) => e.address === bad.address);
    expect(report).toMatchObject({ healthy: false, state: "unhealthy" });
    expect(report?.reason).toMatch(/503.*expected 200-299/);
    expect(await metrics()).toMatch(/proxy_pool_healthy_endpoints\{pool="checked"\} 1/);
    expect(bad.requests.some((r) => r.path === "/health")).toBe(true);
    const answers = await sequential("/x", 10);
    expect(answers.every((a) => a.status === 200 && a.upstream === "good")).toBe(true);

    bad.setBehaviour({});
    await until(
      async () => (await poolHealth("checked")).healthy_endpoints === 2,
      3000,
      "the endpoint to recover",
    );
    const after = await sequential("/x", 10);
    expect(after.some((a) => a.upstream === "bad")).toBe(true);
  });

  it("lets one request a second through when every endpoint is unhealthy (fail-open trickle)", async () => {
    good.setBehaviour({ status: 503 });
    bad.setBehaviour({ status: 503 });
    await until(
      async () => (await poolHealth("checked")).healthy_endpoints === 0,
      3000,
      "both endpoints to turn unhealthy",
    );
    const seen = () => good.requests.length + bad.requests.length - probes();
    const probes = () => [...good.requests, ...bad.requests].filter((r) => r.path === "/health").length;
    const before = seen();
    const started = performance.now();
    const answers = await sequential("/trickle", 30);
    const seconds = (performance.now() - started) / 1000;
    const reached = seen() - before;
    expect(reached).toBeGreaterThanOrEqual(1);
    expect(reached).toBeLessThanOrEqual(Math.ceil(seconds) + 1);
    const refused = answers.filter((a) => a.status === 503 && a.upstream === undefined);
    expect(refused.length).toBe(30 - reached);
    good.setBehaviour({});
    bad.setBehaviour({});
  });
});

describe("passive health and outlier detection", () => {
  let ups: Upstream[];
  beforeAll(async () => {
    ups = await Promise.all(["o1", "o2", "o3"].map(upstream));
    await apply(`routes:
  - id: outliers
    pool: outliers
pools:
  - id: outliers
    balancer: round_robin
    endpoints: [${ups.map((u) => `{address: "${u.address}"}`).join(", ")}]
    outlier_detection: {consecutive_failures: 3, base_ejection_time: 3s, max_ejection_percent: 34, interval: 10s}
`);
  });

  it("ejects an endpoint after consecutive failures, never more than max_ejection_percent, and brings it back", async () => {
    const [o1, o2] = ups as [Upstream, Upstream, Upstream];
    o1.setBehaviour({ status: 500 });
    o2.setBehaviour({ status: 500 });
    // The ejection must outlast these requests on a busy machine (with 1 s it ended before the
    // health was read), so it is 3 s, and the wait for its end below allows a second one (6 s).
    await sequential("/o", 30);
    const health = await poolHealth("outliers");
    const ejected = health.endpoints.filter((e) => e.state === "ejected");
    // Both are bad, but 34% of 3 endpoints allows one ejection.
    expect(ejected).toHaveLength(1);
    expect(ejected[0]?.reason).toMatch(/3 consecutive failures/);
    expect(await metrics()).toMatch(
      /proxy_endpoint_ejections_total\{pool="outliers",endpoint="127\.0\.0\.1:\d+"\} [1-9]/,
    );
    o1.setBehaviour({});
    o2.setBehaviour({});
    await until(
      async () => (await poolHealth("outliers")).healthy_endpoints === 3,
      10_000,
      "the ejection to end",
    );
    const answers = await sequential("/o", 9);
    expect(new Set(answers.map((a) => a.upstream)).size).toBe(3);
  });
});

describe("circuit breakers", () => {
  let flaky: Upstream;
  let slow: Upstream;
  beforeAll(async () => {
    [flaky, slow] = await Promise.all([upstream("flaky"), upstream("slowpoke")]);
    await apply(`routes:
  - id: guarded
    path_prefix: /guarded
    pool: guarded
  - id: limited
    pool: limited
pools:
  - id: guarded
    endpoints: [{address: "${flaky.address}"}]
    circuit_breaker: {error_threshold_percent: 50, min_requests: 10, open_duration: 500ms, window: 10s, half_open_requests: 2}
  - id: limited
    endpoints: [{address: "${slow.address}"}]
    circuit_breaker: {max_concurrent_requests: 2}
`);
  });

  it("opens on the error rate, answers 503 circuit_open with X-Proxy-Circuit-Open, and closes after good probes", async () => {
    flaky.setBehaviour({ status: 500 });
    const answers = await sequential("/guarded", 15);
    expect(answers.slice(0, 10).every((a) => a.status === 500)).toBe(true);
    const open = answers.slice(10);
    expect(open.every((a) => a.status === 503 && a.upstream === undefined)).toBe(true);
    expect(String(open[0]?.headers["x-proxy-circuit-open"])).toMatch(/pool=guarded; reason=open/);
    expect(flaky.requests.length).toBe(10);
    const breakers = (await agent.admin("GET", "/api/v2/breakers")).body as {
      breakers: Array<Record<string, unknown>>;
    };
    expect(breakers.breakers).toContainEqual(
      expect.objectContaining({ pool: "guarded", state: "open", trips: 1 }),
    );
    const text = await metrics();
    expect(text).toMatch(/proxy_breaker_state\{pool="guarded",state="open"\} 1/);
    expect(text).toMatch(/proxy_breaker_trips_total\{pool="guarded"\} 1/);

    flaky.setBehaviour({});
    await new Promise((r) => setTimeout(r, 600));
    const probes = await sequential("/guarded", 3);
    expect(probes.map((a) => a.status)).toEqual([200, 200, 200]);
    const after = (await agent.admin("GET", "/api/v2/breakers")).body as {
      breakers: Array<Record<string, unknown>>;
    };
    expect(after.breakers).toContainEqual(expect.objectContaining({ pool: "guarded", state: "closed" }));
  });

  it("refuses requests over max_concurrent_requests at once", async () => {
    slow.setBehaviour({ delayMs: 400 });
    const answers = await Promise.all(Array.from({ length: 5 }, () => timed("/limited")));
    expect(answers.filter((a) => a.status === 200)).toHaveLength(2);
    const refused = answers.filter((a) => a.status === 503);
    expect(refused).toHaveLength(3);
    expect(Math.max(...refused.map((a) => a.ms))).toBeLessThan(300);
  });
});

describe("retry budget", () => {
  let down: Upstream;
  beforeAll(async () => {
    down = await upstream("down");
    down.setBehaviour({ status: 503, delayMs: 100 });
    await apply(`routes:
  - id: budgeted
    pool: budgeted
    policy: {timeout: 5s, retries: {max_attempts: 3, budget_percent: 10, backoff: {base: 1ms, max: 2ms}}}
pools:
  - id: budgeted
    endpoints: [{address: "${down.address}"}]
`);
  });

  it("keeps retries against a failing upstream within the budget and counts the refusals", async () => {
    const answers = await Promise.all(Array.from({ length: 30 }, () => timed("/b")));
    expect(answers.every((a) => a.status === 503)).toBe(true);
    // No successes: only the floor of 3 concurrent retries may run, far from 30 × 2 retries.
    expect(down.requests.length).toBeLessThan(45);
    const text = await metrics();
    const budget = Number(/proxy_retries_total\{route="budgeted",outcome="budget"\} (\d+)/.exec(text)?.[1]);
    expect(budget).toBeGreaterThan(10);
    expect(text).toMatch(/proxy_retry_budget_tokens\{route="budgeted"\} 0/);
  });
});

describe("overload protection and rate limits", () => {
  let busy: Upstream;
  beforeAll(async () => {
    busy = await upstream("busy");
    await apply(`routes:
  - id: bounded
    path_prefix: /bounded
    pool: busy
  - id: metered
    path_prefix: /metered
    pool: busy
    policy: {rate_limit: {requests_per_second: 5, burst: 5}}
pools:
  - id: busy
    endpoints: [{address: "${busy.address}"}]
traffic_management:
  - route: bounded
    overload_protection: {max_concurrent: 2, queue_size: 2, queue_timeout: 250ms}
`);
  });

  it("serves max_concurrent, queues queue_size, and answers the rest 503 overloaded at once", async () => {
    busy.setBehaviour({ delayMs: 150 });
    const answers = await Promise.all(Array.from({ length: 6 }, () => timed("/bounded")));
    const served = answers.filter((a) => a.status === 200);
    const refused = answers.filter((a) => a.status === 503);
    // Two at once, two from the queue (after 150 ms, within the 250 ms queue timeout).
    expect(served).toHaveLength(4);
    expect(refused).toHaveLength(2);
    expect(Math.max(...refused.map((a) => a.ms))).toBeLessThan(100);
  });

  it("times a queued request out after queue_timeout", async () => {
    busy.setBehaviour({ delayMs: 600 });
    const answers = await Promise.all(Array.from({ length: 3 }, () => timed("/bounded")));
    const refused = answers.filter((a) => a.status === 503);
    expect(refused).toHaveLength(1);
    expect(refused[0]?.ms).toBeGreaterThanOrEqual(240);
    expect(refused[0]?.ms).toBeLessThan(550);
    busy.setBehaviour({});
  });

  it("answers 429 rate_limited with Retry-After past the burst", async () => {
    const answers = await sequential("/metered", 8);
    expect(answers.slice(0, 5).every((a) => a.status === 200)).toBe(true);
    const limited = answers.slice(5);
    expect(limited.every((a) => a.status === 429)).toBe(true);
    expect(Number(limited[0]?.headers["retry-after"])).toBeGreaterThanOrEqual(1);
  });

  it("shows each route's limits in the admin API and metrics", async () => {
    const { body } = await agent.admin("GET", "/api/v2/limits");
    const routes = (body as { routes: Array<Record<string, unknown>> }).routes;
    expect(routes).toContainEqual(
      expect.objectContaining({ route: "bounded", overload: { limit: 2, in_flight: 0, queued: 0 } }),
    );
    expect(routes).toContainEqual(
      expect.objectContaining({
        route: "metered",
        rate_limit: { requests_per_second: 5, burst: 5, keys: 0 },
      }),
    );
    expect(await metrics()).toMatch(/proxy_overload_limit\{route="bounded"\} 2/);
  });
});

describe("canaries and cohorts", () => {
  let stable: Upstream;
  let canary: Upstream;
  beforeAll(async () => {
    [stable, canary] = await Promise.all([upstream("stable"), upstream("canary")]);
  });
  const plan = (weight: number, margin = 10) => `routes:
  - id: split
    path_prefix: /split
pools:
  - id: v1
    endpoints: [{address: "${stable.address}"}]
  - id: v2
    endpoints: [{address: "${canary.address}"}]
traffic_management:
  - route: split
    stable_pool: v1
    canary_pool: v2
    canary_weight: ${weight}
    safety_brake: {error_rate_margin: ${margin}, window: 60s, min_requests: 10}
    cohort_routing:
      header: X-Cohort
      mappings: {beta: v2, stable: v1}
`;

  it("sends canary_weight of the traffic to the canary and counts both", async () => {
    await apply(plan(20));
    const answers = await sequential("/split", 200);
    const toCanary = answers.filter((a) => a.upstream === "canary").length;
    expect(toCanary).toBeGreaterThan(20);
    expect(toCanary).toBeLessThan(65);
    const { body } = await agent.admin("GET", "/api/v2/traffic/canary");
    expect((body as { routes: unknown[] }).routes).toContainEqual(
      expect.objectContaining({
        route: "split",
        stable_pool: "v1",
        canary_pool: "v2",
        canary_weight: 20,
        canary_requests: toCanary,
        stable_requests: 200 - toCanary,
        braked: false,
      }),
    );
  });

  it("routes a cohort by header, whatever the split says", async () => {
    const beta = await sequential("/split", 20, { "x-cohort": "beta" });
    expect(beta.every((a) => a.upstream === "canary")).toBe(true);
    const pinned = await sequential("/split", 20, { "x-cohort": "stable" });
    expect(pinned.every((a) => a.upstream === "stable")).toBe(true);
  });

  it("brakes a failing canary: no more canary traffic until a new config, which releases it", async () => {
    await apply(plan(50, 5));
    canary.setBehaviour({ status: 500 });
    await sequential("/split", 60);
    const { body } = await agent.admin("GET", "/api/v2/traffic/canary");
    const row = (body as { routes: Array<Record<string, unknown>> }).routes.find((r) => r.route === "split");
    expect(row).toMatchObject({ braked: true });
    expect(String(row?.brake_reason)).toMatch(/canary error rate/);
    await agent.waitFor((line) => line.event === "canary_brake" && line.route === "split");
    expect(await metrics()).toMatch(/proxy_canary_braked\{route="split"\} 1/);
    const braked = await sequential("/split", 30);
    expect(braked.every((a) => a.status === 200 && a.upstream === "stable")).toBe(true);

    canary.setBehaviour({});
    await apply(plan(50, 6));
    const released = await sequential("/split", 40);
    expect(released.some((a) => a.upstream === "canary")).toBe(true);
  });
});
