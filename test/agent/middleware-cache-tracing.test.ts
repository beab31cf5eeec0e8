/**
 * Middleware chains, plugins, the cache and tracing end to end: a real agent process, real
 * upstreams, a JWKS and an OTLP collector over loopback HTTP, the example gRPC filter server.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import {
  type JwksServer,
  type SigningKey,
  sign,
  signingKey,
  startJwksServer,
} from "../../agent/middleware/test-support.js";
import { type FilterServer, startFilterServer } from "../../deploy/examples/filter-server.js";
import { type AgentProcess, startAgent } from "../support/agent-process.js";
import { request, wsHandshake } from "../support/http.js";
import { type EchoBody, startUpstream, type Upstream } from "../support/upstream.js";

const LISTENER = "127.0.0.1:0";

let agent: AgentProcess;
let base: string;
let up: Upstream;
let jwks: JwksServer;
let key: SigningKey;
let filter: FilterServer;
let slowFilter: FilterServer;
let collector: { server: Server; url: string; bodies: unknown[] };

async function startCollector() {
  const bodies: unknown[] = [];
  const server = createServer((req, res) => {
    let text = "";
    req.on("data", (c) => (text += c));
    req.on("end", () => {
      try {
        bodies.push(JSON.parse(text));
      } catch {
        bodies.push(text);
      }
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, bodies };
}

async function apply(yaml: string): Promise<void> {
  const { status, body } = await agent.admin("POST", "/api/v2/config/apply", {
    config: parse(`listeners:\n  - address: "${LISTENER}"\n${yaml}`),
  });
  expect(status, JSON.stringify(body)).toBe(200);
}

const get = (path: string, headers: Record<string, string> = {}) => request(`${base}${path}`, { headers });

beforeAll(async () => {
  [up, collector, filter, slowFilter] = await Promise.all([
    startUpstream({ name: "app" }),
    startCollector(),
    startFilterServer(),
    startFilterServer({ delayMs: 500 }),
  ]);
  key = await signingKey("k1");
  jwks = await startJwksServer([key.jwk]);
  agent = await startAgent({
    config: `listeners:\n  - address: "${LISTENER}"\nroutes:\n  - id: r\n    pool: p\npools:\n  - id: p\n    endpoints: [{address: "${up.address}"}]\n`,
    staticConfig: "tracing:\n  sample_ratio: 1\n",
    env: { PROXY_TRACE_ENDPOINT: collector.url },
  });
  base = `http://127.0.0.1:${await agent.port(LISTENER)}`;
  await apply(`routes:
  - id: transform
    path_prefix: /transform
    pool: app
    middleware: transform
  - id: secure
    path_prefix: /secure
    pool: app
    middleware: secure
  - id: filtered
    path_prefix: /filtered
    pool: app
    middleware: filtered
  - id: filtered-slow-closed
    path_prefix: /slow-closed
    pool: app
    middleware: slow-closed
  - id: filtered-slow-open
    path_prefix: /slow-open
    pool: app
    middleware: slow-open
  - id: cached
    path_prefix: /cached
    pool: app
  - id: coalesced
    path_prefix: /coalesced
    pool: app
pools:
  - id: app
    endpoints: [{address: "${up.address}"}]
policies:
  - id: per-client
    rate_limit: {requests_per_second: 2, burst: 2, key: "header:x-client"}
middleware:
  - id: transform
    stages:
      - type: request_id
        config: {header: X-Correlation-Id}
      - type: header_transform
        config:
          add: {X-Proxy-Version: "1.0"}
          remove: [X-Internal-Secret]
          response: {set: {X-Served-By: coherent}, remove: [X-Upstream]}
  - id: secure
    stages:
      - type: auth
        config:
          jwt: {issuer: "https://issuer.test", audience: api, jwks_uri: "${jwks.jwksUri}", forward_claims: {sub: X-User}}
      - type: rate_limit
        policy_ref: per-client
      - type: tracing
  - id: filtered
    stages:
      - type: plugin
        plugin: example-filter
  - id: slow-closed
    stages: [{type: plugin, plugin: slow-closed}]
  - id: slow-open
    stages: [{type: plugin, plugin: slow-open}]
plugins:
  - id: example-filter
    type: external_grpc
    address: "${filter.address}"
    timeout: 500ms
  - id: slow-closed
    type: external_grpc
    address: "${slowFilter.address}"
    timeout: 50ms
    fail_mode: closed
  - id: slow-open
    type: external_grpc
    address: "${slowFilter.address}"
    timeout: 50ms
    fail_mode: open
cache:
  - route: cached
    ttl: 30s
  - route: coalesced
    ttl: 30s
    coalesce: true
    coalesce_timeout: 300ms
`);
}, 30_000);

afterAll(async () => {
  await agent?.stop("SIGKILL");
  await Promise.all([up?.close(), jwks?.close(), filter?.close(), slowFilter?.close()]);
  collector?.server.close();
});

describe("middleware chains", () => {
  it("transforms request and response headers and carries a custom request id header", async () => {
    const res = await get("/transform", { "x-internal-secret": "s3cret", "x-correlation-id": "corr-1" });
    const echo = await res.json<EchoBody>();
    expect(echo.headers["x-proxy-version"]).toBe("1.0");
    expect(echo.headers["x-internal-secret"]).toBeUndefined();
    expect(echo.headers["x-correlation-id"]).toBe("corr-1");
    expect(res.headers["x-served-by"]).toBe("coherent");
    expect(res.headers["x-upstream"]).toBeUndefined();
  });

  it("lets a valid JWT through with its claims forwarded, and answers 401 otherwise", async () => {
    const now = Date.now();
    const token = await sign(key, { iss: "https://issuer.test", aud: "api", sub: "alice" }, now);
    const ok = await get("/secure", {
      authorization: `Bearer ${token}`,
      "x-user": "forged",
      "x-client": "a",
    });
    expect(ok.status).toBe(200);
    expect((await ok.json<EchoBody>()).headers["x-user"]).toBe("alice");

    const missing = await get("/secure");
    expect(missing.status).toBe(401);
    expect(missing.headers["www-authenticate"]).toMatch(/^Bearer realm=/);
    expect((await missing.json<{ error: string }>()).error).toBe("unauthorized");

    const wrongAudience = await sign(key, { iss: "https://issuer.test", aud: "other", sub: "bob" }, now);
    const refused = await get("/secure", { authorization: `Bearer ${wrongAudience}` });
    expect(refused.status).toBe(401);
    expect(refused.headers["www-authenticate"]).toMatch(/error="invalid_token"/);
    await refused.drain();
  });

  it("runs the chain on WebSocket upgrades too: no token, no tunnel", async () => {
    up.setBehaviour({ websocket: true });
    const port = Number(new URL(base).port);
    const refused = await wsHandshake(port, "/secure/ws", { "x-client": "ws" });
    refused.socket.destroy();
    expect(refused.status).toBe(401);
    const token = await sign(key, { iss: "https://issuer.test", aud: "api", sub: "erin" }, Date.now());
    const accepted = await wsHandshake(port, "/secure/ws", {
      authorization: `Bearer ${token}`,
      "x-client": "ws",
    });
    accepted.socket.destroy();
    expect(accepted.status).toBe(101);
    up.setBehaviour({});
  });

  it("rate-limits per client key in the chain with 429 and Retry-After", async () => {
    const token = await sign(key, { iss: "https://issuer.test", aud: "api", sub: "carol" }, Date.now());
    const statuses: number[] = [];
    let retryAfter: unknown;
    for (let i = 0; i < 4; i++) {
      const res = await get("/secure", { authorization: `Bearer ${token}`, "x-client": "limited" });
      statuses.push(res.status);
      if (res.status === 429) retryAfter = res.headers["retry-after"];
      await res.drain();
    }
    expect(statuses).toEqual([200, 200, 429, 429]);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
    const other = await get("/secure", { authorization: `Bearer ${token}`, "x-client": "another" });
    expect(other.status).toBe(200);
    await other.drain();
  });
});

describe("plugins", () => {
  it("applies an external filter's header edits, and its deny with its own status and body", async () => {
    const allowed = await get("/filtered/x");
    expect((await allowed.json<EchoBody>()).headers["x-filtered-by"]).toBe("example-filter");
    expect(filter.lastRequest?.path).toBe("/filtered/x");
    const denied = await get("/filtered/x", { "x-block": "1" });
    expect(denied.status).toBe(403);
    expect(await denied.text()).toMatch(/blocked/i);
  });

  it("fails closed (503 plugin_unavailable) or open on a filter slower than its timeout, without waiting for it", async () => {
    const started = performance.now();
    const closed = await get("/slow-closed");
    const closedMs = performance.now() - started;
    expect(closed.status).toBe(503);
    expect((await closed.json<{ error: string }>()).error).toBe("plugin_unavailable");
    const open = await get("/slow-open");
    expect(open.status).toBe(200);
    await open.drain();
    expect(closedMs).toBeLessThan(400);
    expect(performance.now() - started).toBeLessThan(800);
  });
});

describe("cache", () => {
  it("serves a repeated GET from the cache with X-Cache and Age, and counts hits and misses", async () => {
    up.requests.length = 0;
    const first = await get("/cached/a");
    expect(first.headers["x-cache"]).toBe("MISS");
    const body = await first.text();
    const second = await get("/cached/a");
    expect(second.headers["x-cache"]).toBe("HIT");
    expect(second.headers.age).toBeDefined();
    expect(await second.text()).toBe(body);
    expect(up.requests.filter((r) => r.path === "/cached/a")).toHaveLength(1);
    const post = await request(`${base}/cached/a`, { method: "POST" });
    expect(post.headers["x-cache"]).toBe("BYPASS");
    await post.drain();
    const after = await get("/cached/a");
    expect(after.headers["x-cache"]).toBe("MISS");
    await after.drain();
    const metrics = await (await request(`${agent.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/proxy_cache_requests_total\{route="cached",result="hit"\} 1/);
    expect(metrics).toMatch(/proxy_cache_requests_total\{route="cached",result="miss"\} 2/);
  });

  it("does not store what the upstream marks no-store", async () => {
    up.setBehaviour({ headers: { "cache-control": "no-store" } });
    await (await get("/cached/nostore")).drain();
    const again = await get("/cached/nostore");
    expect(again.headers["x-cache"]).toBe("MISS");
    await again.drain();
    up.setBehaviour({});
  });

  it("coalesces 50 concurrent identical misses into one upstream request", async () => {
    up.requests.length = 0;
    up.setBehaviour({ delayMs: 100 });
    const answers = await Promise.all(Array.from({ length: 50 }, () => get("/coalesced/one")));
    const bodies = await Promise.all(answers.map((a) => a.text()));
    up.setBehaviour({});
    expect(answers.every((a) => a.status === 200)).toBe(true);
    expect(new Set(bodies).size).toBe(1);
    expect(up.requests.filter((r) => r.path === "/coalesced/one")).toHaveLength(1);
  });

  it("lets waiters go upstream themselves when the leader is slower than coalesce_timeout", async () => {
    up.requests.length = 0;
    up.setBehaviour({ delayMs: 600 });
    const started = performance.now();
    const answers = await Promise.all(Array.from({ length: 10 }, () => get("/coalesced/slow")));
    await Promise.all(answers.map((a) => a.drain()));
    up.setBehaviour({});
    expect(answers.every((a) => a.status === 200)).toBe(true);
    expect(up.requests.filter((r) => r.path === "/coalesced/slow").length).toBeGreaterThan(1);
    expect(performance.now() - started).toBeLessThan(2000);
  });
});

describe("tracing", () => {
  it("exports spans of traced routes over OTLP/HTTP and sends the attempt's traceparent upstream", async () => {
    const token = await sign(key, { iss: "https://issuer.test", aud: "api", sub: "dave" }, Date.now());
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const res = await get("/secure/traced", {
      authorization: `Bearer ${token}`,
      "x-client": "tracer",
      traceparent: `00-${traceId}-00f067aa0ba902b7-01`,
    });
    const echo = await res.json<EchoBody>();
    const sent = String(echo.headers.traceparent);
    expect(sent).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
    expect(sent).not.toContain("00f067aa0ba902b7");

    const deadline = Date.now() + 5000;
    let names: string[] = [];
    while (Date.now() < deadline) {
      names = collector.bodies.flatMap((b) =>
        JSON.stringify(b).includes(traceId)
          ? [...JSON.stringify(b).matchAll(/"name":"([^"]+)"/g)].map((m) => m[1] as string)
          : [],
      );
      if (names.includes("proxy.attempt")) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    for (const name of ["GET", "proxy.route", "proxy.middleware", "proxy.upstream_select", "proxy.attempt"]) {
      expect(names).toContain(name);
    }
  });

  it("does not trace routes whose chain has no tracing stage", async () => {
    const res = await get("/transform", {
      traceparent: "00-11111111111111111111111111111111-00f067aa0ba902b7-01",
    });
    const echo = await res.json<EchoBody>();
    expect(echo.headers.traceparent).toBe("00-11111111111111111111111111111111-00f067aa0ba902b7-01");
  });
});
