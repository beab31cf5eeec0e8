/**
 * The agent end to end: a real agent process, real upstream servers on loopback, real HTTP.
 * One agent serves the whole file; each test applies the config it needs through the admin API.
 */

import { Client } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AgentProcess, startAgent } from "../support/agent-process.js";
import { rawHttp, readBytes, request, wsHandshake } from "../support/http.js";
import { refusedAddress, startUpstream, type Upstream } from "../support/upstream.js";

const LISTENER = "127.0.0.1:0";

let agent: AgentProcess;
let a: Upstream;
let b: Upstream;
let base: string;

function config(extra: string): string {
  return `listeners:\n  - address: "${LISTENER}"\n${extra}`;
}

async function apply(yaml: string): Promise<void> {
  const { parse } = await import("yaml");
  const { status, body } = await agent.admin("POST", "/api/v2/config/apply", { config: parse(yaml) });
  expect(status, JSON.stringify(body)).toBe(200);
}

beforeAll(async () => {
  [a, b] = await Promise.all([startUpstream({ name: "a" }), startUpstream({ name: "b" })]);
  agent = await startAgent({
    config: config(
      `routes:\n  - id: r\n    pool: p\npools:\n  - id: p\n    endpoints: [{address: "${a.address}"}]\n`,
    ),
  });
  base = `http://127.0.0.1:${await agent.port(LISTENER)}`;
});

afterAll(async () => {
  await agent?.stop("SIGKILL");
  await Promise.all([a?.close(), b?.close()]);
});

describe("routing and forwarding", () => {
  beforeAll(() =>
    apply(
      config(`routes:
  - id: api
    host: api.example.com
    path_prefix: /v1
    pool: pa
  - id: web
    host: "*.example.com"
    pool: pb
pools:
  - id: pa
    endpoints: [{address: "${a.address}"}]
  - id: pb
    endpoints: [{address: "${b.address}"}]
`),
    ),
  );

  it("sends each request to the pool of the route its host and path match", async () => {
    const api = await request(`${base}/v1/users?page=2`, { headers: { host: "api.example.com" } });
    const web = await request(`${base}/v1/users`, { headers: { host: "www.example.com" } });
    expect(api.status).toBe(200);
    expect((await api.json<{ upstream: string; path: string }>()).path).toBe("/v1/users?page=2");
    expect(api.headers["x-upstream"]).toBe("a");
    expect(web.headers["x-upstream"]).toBe("b");
    await web.drain();
  });

  it("answers 404 no_route as JSON with the request id when nothing matches", async () => {
    const res = await request(`${base}/v1`, { headers: { host: "example.org" } });
    const body = await res.json<{ error: string; request_id: string }>();
    expect(res.status).toBe(404);
    expect(body.error).toBe("no_route");
    expect(body.request_id).toBe(res.headers["x-request-id"]);
  });

  it("passes the client's X-Request-Id through both ways, and makes one when absent", async () => {
    const given = await request(`${base}/v1/x`, {
      headers: { host: "api.example.com", "x-request-id": "abc-123" },
    });
    expect(given.headers["x-request-id"]).toBe("abc-123");
    expect((await given.json<{ headers: Record<string, string> }>()).headers["x-request-id"]).toBe("abc-123");
    const made = await request(`${base}/v1/x`, { headers: { host: "api.example.com" } });
    const sent = (await made.json<{ headers: Record<string, string> }>()).headers["x-request-id"];
    expect(made.headers["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
    expect(sent).toBe(made.headers["x-request-id"]);
  });

  it("adds X-Forwarded-For/-Proto/-Host and drops hop-by-hop headers", async () => {
    const res = await rawHttp(
      await agent.port(LISTENER),
      "GET /v1/x HTTP/1.1\r\nHost: api.example.com\r\nConnection: close, x-secret-hop\r\nX-Secret-Hop: 1\r\nKeep-Alive: timeout=5\r\nX-Forwarded-For: 10.9.9.9\r\n\r\n",
    );
    const seen = JSON.parse(res.text.slice(res.text.indexOf("\r\n\r\n") + 4)).headers as Record<
      string,
      string
    >;
    expect(res.status).toBe(200);
    expect(seen["x-forwarded-for"]).toBe("10.9.9.9, 127.0.0.1");
    expect(seen["x-forwarded-proto"]).toBe("http");
    expect(seen["x-forwarded-host"]).toBe("api.example.com");
    expect(seen["x-secret-hop"]).toBeUndefined();
    expect(seen["keep-alive"]).toBeUndefined();
  });

  it("normalizes the path before routing and forwards the normalized path", async () => {
    const res = await rawHttp(
      await agent.port(LISTENER),
      "GET /v2/../v1/%7Euser//x HTTP/1.1\r\nHost: api.example.com\r\nConnection: close\r\n\r\n",
    );
    expect(res.status).toBe(200);
    expect(res.text).toContain('"path":"/v1/~user/x"');
  });

  it("keeps upstream connections alive across requests", async () => {
    a.setBehaviour({});
    const before = a.connections;
    const client = new Client(base);
    for (let i = 0; i < 20; i++) {
      await (
        await request(`${base}/v1/k`, { headers: { host: "api.example.com" }, dispatcher: client })
      ).drain();
    }
    await client.close();
    expect(a.connections - before).toBeLessThanOrEqual(2);
  });
});

describe("the failure table", () => {
  it("answers 502 upstream_connect_failed when the endpoint refuses connections", async () => {
    await apply(
      config(
        `routes:\n  - id: r\n    pool: p\npools:\n  - id: p\n    endpoints: [{address: "${await refusedAddress()}"}]\n`,
      ),
    );
    const res = await request(`${base}/x`);
    expect(res.status).toBe(502);
    expect((await res.json<{ error: string }>()).error).toBe("upstream_connect_failed");
  });

  it("answers 504 upstream_timeout when the upstream is slower than the route's timeout", async () => {
    a.setBehaviour({ delayMs: 2_000 });
    await apply(
      config(
        `routes:\n  - id: r\n    pool: p\n    policy: {timeout: 300ms}\npools:\n  - id: p\n    endpoints: [{address: "${a.address}"}]\n`,
      ),
    );
    const started = Date.now();
    const res = await request(`${base}/slow`);
    expect(res.status).toBe(504);
    expect((await res.json<{ error: string }>()).error).toBe("upstream_timeout");
    expect(Date.now() - started).toBeLessThan(1_500);
    a.setBehaviour({});
  });

  it("answers 413 payload_too_large for a declared or streamed body over the limit", async () => {
    await apply(
      config(
        `routes:\n  - id: r\n    pool: p\n    policy: {body_size_limit: 1KB}\npools:\n  - id: p\n    endpoints: [{address: "${a.address}"}]\n`,
      ),
    );
    const declared = await request(`${base}/up`, { method: "POST", body: Buffer.alloc(2048) });
    expect(declared.status).toBe(413);
    expect((await declared.json<{ error: string }>()).error).toBe("payload_too_large");
    const { Readable } = await import("node:stream");
    const streamed = await request(`${base}/up`, {
      method: "POST",
      body: Readable.from([Buffer.alloc(800), Buffer.alloc(800)]),
    });
    expect(streamed.status).toBe(413);
    await streamed.drain();
    const small = await request(`${base}/up`, { method: "POST", body: Buffer.alloc(512) });
    expect(small.status).toBe(200);
    expect((await small.json<{ bodyBytes: number }>()).bodyBytes).toBe(512);
  });
});

describe("retries", () => {
  it("retries a refused connection on another endpoint and records the retry", async () => {
    await apply(
      config(`routes:
  - id: r
    pool: p
    policy: {retries: {max_attempts: 3}}
pools:
  - id: p
    endpoints: [{address: "${await refusedAddress()}"}, {address: "${a.address}"}]
`),
    );
    for (let i = 0; i < 4; i++) {
      const res = await request(`${base}/retry-${i}`, { headers: { "x-request-id": `retry-${i}` } });
      expect(res.status).toBe(200);
      await res.drain();
    }
    const lines = await Promise.all(
      [0, 1, 2, 3].map((i) => agent.waitFor((l) => l.kind === "access" && l.request_id === `retry-${i}`)),
    );
    expect(lines.some((line) => line.retries === 1)).toBe(true);
  });

  it("retries a 503 answer but not a POST when only idempotent requests may retry", async () => {
    const failing = await startUpstream({ name: "failing", status: 503 });
    await apply(
      config(`routes:
  - id: r
    pool: p
    policy: {retries: {max_attempts: 2, idempotent_only: true}}
pools:
  - id: p
    balancer: round_robin
    endpoints: [{address: "${failing.address}"}, {address: "${a.address}"}]
`),
    );
    const gets = await Promise.all([0, 1].map(() => request(`${base}/g`)));
    for (const res of gets) {
      expect(res.status).toBe(200);
      await res.drain();
    }
    failing.requests.length = 0;
    const posts = await Promise.all([0, 1].map(() => request(`${base}/p`, { method: "POST", body: "x" })));
    const statuses = posts.map((r) => r.status).sort();
    await Promise.all(posts.map((r) => r.drain()));
    expect(statuses).toEqual([200, 503]);
    await failing.close();
  });
});

describe("WebSocket upgrades", () => {
  it("relays the 101 and then bytes both ways", async () => {
    await apply(
      config(
        `routes:\n  - id: r\n    pool: p\npools:\n  - id: p\n    endpoints: [{address: "${a.address}"}]\n`,
      ),
    );
    const ws = await wsHandshake(await agent.port(LISTENER), "/chat");
    expect(ws.status).toBe(101);
    expect(ws.acceptValid).toBe(true);
    ws.socket.resume();
    ws.socket.pause();
    ws.socket.write("hello through the proxy");
    const echoed = await readBytes(ws.socket, "hello through the proxy".length);
    expect(echoed.toString()).toBe("hello through the proxy");
    ws.socket.destroy();
  });
});

describe("access log and metrics", () => {
  it("writes one access line per request with the spec's fields", async () => {
    await apply(
      config(
        `routes:\n  - id: logged\n    pool: p\npools:\n  - id: p\n    endpoints: [{address: "${a.address}"}]\n`,
      ),
    );
    await (await request(`${base}/logged?q=1`, { headers: { "x-request-id": "log-me" } })).drain();
    const line = await agent.waitFor((l) => l.kind === "access" && l.request_id === "log-me");
    expect(line).toMatchObject({
      method: "GET",
      path: "/logged?q=1",
      route: "logged",
      pool: "p",
      endpoint: a.address,
      status: 200,
      retries: 0,
    });
    expect(typeof line.timestamp).toBe("string");
    expect(typeof line.duration_ms).toBe("number");
    expect(typeof line.upstream_duration_ms).toBe("number");
  });

  it("exposes the spec's metrics with route and pool labels", async () => {
    await (await request(`${base}/metered`)).drain();
    const res = await request(`${agent.adminUrl}/metrics`);
    const text = await res.text();
    expect(text).toMatch(/proxy_requests_total\{route="logged",pool="p",status="200"\} \d+/);
    expect(text).toContain(`proxy_upstream_requests_total{pool="p",endpoint="${a.address}"}`);
    expect(text).toContain('proxy_request_duration_seconds_bucket{le="0.005",route="logged",pool="p"}');
    expect(text).toContain('proxy_pool_total_endpoints{pool="p"} 1');
  });
});

describe("balancing", () => {
  it("sends every request with the same hash_on header value to the same endpoint", async () => {
    const c = await startUpstream({ name: "c" });
    try {
      await apply(
        config(`routes:
  - id: r
    pool: p
pools:
  - id: p
    balancer: consistent_hash
    hash_on: header:x-user
    endpoints: [{address: "${a.address}"}, {address: "${b.address}"}, {address: "${c.address}"}]
`),
      );
      const chosen = new Map<string, Set<string>>();
      for (let i = 0; i < 60; i++) {
        const user = `user-${i % 12}`;
        const res = await request(`${base}/h`, { headers: { "x-user": user } });
        await res.drain();
        if (!chosen.has(user)) chosen.set(user, new Set());
        chosen.get(user)?.add(String(res.headers["x-upstream"]));
      }
      for (const endpoints of chosen.values()) expect(endpoints.size).toBe(1);
      expect(new Set([...chosen.values()].flatMap((s) => [...s])).size).toBeGreaterThan(1);
    } finally {
      await c.close();
    }
  });
});
