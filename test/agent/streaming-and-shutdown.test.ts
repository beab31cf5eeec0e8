/**
 * Bodies stream through the agent with back-pressure (1 GB each way, the agent's memory
 * watched), upstream pools speak HTTP/2, and SIGTERM drains in the spec's stages.
 */
import { readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AgentProcess, startAgent } from "../support/agent-process.js";
import { createCertificateAuthority } from "../support/certs.js";
import { request } from "../support/http.js";
import { startUpstream, type Upstream } from "../support/upstream.js";

const GB = 1024 ** 3;
const MB = 1024 ** 2;

function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
}

/** Samples a process's resident memory while `work` runs; returns the peak growth. */
async function peakGrowth(pid: number, work: () => Promise<void>): Promise<number> {
  const before = rssOf(pid);
  let peak = before;
  const timer = setInterval(() => {
    peak = Math.max(peak, rssOf(pid));
  }, 50);
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  return Math.max(peak, rssOf(pid)) - before;
}

function zeros(total: number, chunk = 64 * 1024): Readable {
  const block = Buffer.alloc(chunk);
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= total) this.push(null);
      else {
        sent += chunk;
        this.push(block);
      }
    },
  });
}

describe("streaming", () => {
  let agent: AgentProcess;
  let upstream: Upstream;
  let base: string;

  beforeAll(async () => {
    upstream = await startUpstream({ name: "big" });
    agent = await startAgent({
      config: `listeners:\n  - address: "127.0.0.1:0"\nroutes:\n  - id: r\n    pool: p\n    policy: {timeout: 2m}\npools:\n  - id: p\n    endpoints: [{address: "${upstream.address}"}]\n`,
    });
    base = `http://127.0.0.1:${await agent.port("127.0.0.1:0")}`;
  });

  afterAll(async () => {
    await agent?.stop("SIGKILL");
    await upstream?.close();
  });

  it("streams a 1 GB upload to the upstream with the agent's memory growing under 64 MB", async () => {
    const pid = agent.child.pid as number;
    let result: { status: number; bodyBytes: number } | undefined;
    const growth = await peakGrowth(pid, async () => {
      const res = await request(`${base}/upload`, {
        method: "PUT",
        body: zeros(GB),
        headers: { "content-length": String(GB) },
        timeoutMs: 120_000,
      });
      result = { status: res.status, bodyBytes: (await res.json<{ bodyBytes: number }>()).bodyBytes };
    });
    expect(result).toEqual({ status: 200, bodyBytes: GB });
    expect(growth).toBeLessThan(64 * MB);
  }, 120_000);

  it("streams a 1 GB download to the client with the agent's memory growing under 64 MB", async () => {
    upstream.setBehaviour({ stream: { bytes: GB, chunkBytes: 64 * 1024 } });
    const pid = agent.child.pid as number;
    let received = 0;
    const growth = await peakGrowth(pid, async () => {
      const res = await request(`${base}/download`, { timeoutMs: 120_000 });
      received = await res.drain();
    });
    upstream.setBehaviour({});
    expect(received).toBe(GB);
    expect(growth).toBeLessThan(64 * MB);
  }, 120_000);
});

describe("HTTP/2 upstream pools", () => {
  it("speaks HTTP/2 to a pool with protocol: h2 over TLS, concurrent requests multiplexed on one connection", async () => {
    const ca = await createCertificateAuthority("upstream ca");
    const cert = await ca.issueServer({ names: ["backend.internal"] });
    const upstream = await startUpstream({ name: "h2", tls: cert, http2: true });
    const caFile = `${tmpdir()}/coherent-h2-ca-${process.pid}.crt`;
    await writeFile(caFile, ca.certPem);
    const agent = await startAgent({
      config: `listeners:\n  - address: "127.0.0.1:0"\nroutes:\n  - id: r\n    pool: p\npools:\n  - id: p\n    protocol: h2\n    tls: {ca_file: "${caFile}", sni: backend.internal}\n    endpoints: [{address: "${upstream.address}"}]\n`,
    });
    try {
      const port = await agent.port("127.0.0.1:0");
      // The first request opens the connection and learns by ALPN that it speaks h2.
      await (await request(`http://127.0.0.1:${port}/warm`)).drain();
      const responses = await Promise.all(
        Array.from({ length: 8 }, (_, i) => request(`http://127.0.0.1:${port}/h2/${i}`)),
      );
      for (const res of responses) {
        expect(res.status).toBe(200);
        expect((await res.json<{ httpVersion: string }>()).httpVersion).toBe("2.0");
      }
      expect(new Set(upstream.requests.map((r) => r.connectionId)).size).toBe(1);
      expect(upstream.requests[0]?.tls?.servername).toBe("backend.internal");
    } finally {
      await agent.stop("SIGKILL");
      await upstream.close();
    }
  });
});

describe("graceful shutdown", () => {
  it("on SIGTERM fails readiness, finishes in-flight requests, refuses new connections, and exits 0", async () => {
    const upstream = await startUpstream({ name: "slow", delayMs: 1_500 });
    const agent = await startAgent({
      config: `listeners:\n  - address: "127.0.0.1:0"\nroutes:\n  - id: r\n    pool: p\npools:\n  - id: p\n    endpoints: [{address: "${upstream.address}"}]\n`,
      staticConfig: "shutdown:\n  drain_delay: 300ms\n  drain_timeout: 5s\n",
    });
    const port = await agent.port("127.0.0.1:0");
    try {
      const inFlight = request(`http://127.0.0.1:${port}/slow`, { timeoutMs: 10_000 });
      await upstream.waitForRequests(1);
      agent.child.kill("SIGTERM");
      await agent.waitFor((line) => line.msg === "draining");
      const ready = await request(`${agent.adminUrl}/ready`);
      expect(ready.status).toBe(503);
      await ready.drain();
      await expect(request(`http://127.0.0.1:${port}/new`, { timeoutMs: 2_000 })).rejects.toThrow();
      const res = await inFlight;
      expect(res.status).toBe(200);
      await res.drain();
      expect(await agent.stop()).toBe(0);
    } finally {
      await upstream.close();
    }
  }, 20_000);
});
