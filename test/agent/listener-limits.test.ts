/**
 * What a listener refuses before any route is chosen: oversized headers, clients that trickle
 * their headers (slowloris), malformed requests. And a pool removed by a config change keeps
 * serving the requests already on it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AgentProcess, startAgent } from "../support/agent-process.js";
import { rawHttp, request } from "../support/http.js";
import { startUpstream, type Upstream } from "../support/upstream.js";

const LISTENER = "127.0.0.1:0";
let agent: AgentProcess;
let upstream: Upstream;
let port: number;

beforeAll(async () => {
  upstream = await startUpstream({ name: "u" });
  agent = await startAgent({
    config: `listeners:
  - address: "${LISTENER}"
    read_header_timeout: 1s
    max_header_size: 4KB
routes:
  - id: r
    pool: p
pools:
  - id: p
    endpoints: [{address: "${upstream.address}"}]
`,
  });
  port = await agent.port(LISTENER);
});

afterAll(async () => {
  await agent?.stop("SIGKILL");
  await upstream?.close();
});

describe("listener limits", () => {
  it("answers 431 to a header block over max_header_size and never reaches the upstream", async () => {
    upstream.requests.length = 0;
    const res = await rawHttp(port, `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(8 * 1024)}\r\n\r\n`);
    expect(res.status).toBe(431);
    expect(upstream.requests).toHaveLength(0);
  });

  it("closes a connection whose headers trickle in slower than read_header_timeout", async () => {
    const started = Date.now();
    const parts = ["GET / HTTP/1.1\r\n", ...Array.from({ length: 20 }, (_, i) => `X-Slow-${i}: 1\r\n`)];
    const res = await rawHttp(port, parts, { gapMs: 200, timeoutMs: 6_000 });
    // The agent answers 408 and closes; a client still writing may see the close as a reset.
    expect(res.closed || res.errorCode !== undefined).toBe(true);
    expect(res.status === undefined || res.status === 408).toBe(true);
    expect(Date.now() - started).toBeLessThan(3_500);
  });

  it("answers 400 to a malformed request line and keeps serving others", async () => {
    const bad = await rawHttp(port, "GARBAGE\r\n\r\n");
    expect(bad.status).toBe(400);
    const good = await request(`http://127.0.0.1:${port}/ok`);
    expect(good.status).toBe(200);
    await good.drain();
  });
});

describe("retiring a pool", () => {
  it("lets a request in flight on a removed pool finish", async () => {
    const slow = await startUpstream({ name: "slow", delayMs: 800 });
    const fresh = await startUpstream({ name: "fresh" });
    const configFor = (address: string, pool: string) => ({
      listeners: [{ address: LISTENER, read_header_timeout: "1s", max_header_size: "4KB" }],
      routes: [{ id: "r", pool }],
      pools: [{ id: pool, endpoints: [{ address }] }],
    });
    try {
      expect(
        (await agent.admin("POST", "/api/v2/config/apply", { config: configFor(slow.address, "old") }))
          .status,
      ).toBe(200);
      const inFlight = request(`http://127.0.0.1:${port}/long`);
      await slow.waitForRequests(1);
      expect(
        (await agent.admin("POST", "/api/v2/config/apply", { config: configFor(fresh.address, "new") }))
          .status,
      ).toBe(200);
      const after = await request(`http://127.0.0.1:${port}/next`);
      expect(after.headers["x-upstream"]).toBe("fresh");
      await after.drain();
      const res = await inFlight;
      expect(res.status).toBe(200);
      expect(res.headers["x-upstream"]).toBe("slow");
      await res.drain();
    } finally {
      await Promise.all([slow.close(), fresh.close()]);
    }
  });
});
