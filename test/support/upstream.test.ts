import { type Agent, Client, type Dispatcher } from "undici";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { type CertificateAuthority, createCertificateAuthority, type PemPair } from "./certs.js";
import { createTlsAgent, rawHttp, readBytes, request, wsHandshake } from "./http.js";
import {
  type EchoBody,
  refusedAddress,
  type StartUpstreamOptions,
  startUpstream,
  streamedBody,
  type Upstream,
} from "./upstream.js";

const upstreams: Upstream[] = [];
const agents: Dispatcher[] = [];

afterEach(async () => {
  await Promise.all(upstreams.splice(0).map((upstream) => upstream.close()));
  await Promise.all(agents.splice(0).map((agent) => agent.close()));
});

async function upstream(options?: StartUpstreamOptions): Promise<Upstream> {
  const started = await startUpstream(options);
  upstreams.push(started);
  return started;
}

// One connection of its own: an undici Agent may open a second connection for back-to-back
// requests (its client frees up a tick after the body ends), which would blur keep-alive counts.
function singleConnection(url: string): Client {
  const created = new Client(url);
  agents.push(created);
  return created;
}

async function statuses(up: Upstream, count: number): Promise<number[]> {
  const seen: number[] = [];
  for (let i = 0; i < count; i++) {
    const response = await request(`${up.url}/${i}`);
    await response.drain();
    seen.push(response.status);
  }
  return seen;
}

describe("startUpstream over HTTP/1.1", { timeout: 5_000 }, () => {
  it("echoes method, raw target, headers and body size as JSON", async () => {
    const up = await upstream({ name: "alpha" });
    const response = await request(`${up.url}/a/b?x=1&y=%20z`, {
      method: "POST",
      headers: { "x-test": "yes", "content-type": "application/octet-stream" },
      body: Buffer.alloc(1234, 7),
    });
    expect(response.status).toBe(200);
    expect(response.headers["x-upstream"]).toBe("alpha");
    const echo = await response.json<EchoBody>();
    expect(echo).toMatchObject({
      method: "POST",
      path: "/a/b?x=1&y=%20z",
      bodyBytes: 1234,
      upstream: "alpha",
    });
    expect(echo.httpVersion).toBe("1.1");
    expect(echo.headers["x-test"]).toBe("yes");
    expect(up.requests).toHaveLength(1);
    expect(up.requests[0]).toMatchObject({
      method: "POST",
      path: "/a/b?x=1&y=%20z",
      bodyBytes: 1234,
      bodyComplete: true,
      upgrade: false,
      connectionId: 1,
    });
    expect(up.requests[0]!.rawHeaders).toContain("x-test");
    expect(up.requests[0]!.tls).toBeUndefined();
  });

  it("is named after its address unless given a name", async () => {
    const up = await upstream();
    expect(up.address).toBe(`127.0.0.1:${up.port}`);
    expect(up.url).toBe(`http://127.0.0.1:${up.port}`);
    expect(up.name).toBe(up.address);
    const echo = await (await request(up.url)).json<EchoBody>();
    expect(echo.upstream).toBe(up.address);
  });

  it("counts a large request body without buffering it", async () => {
    const up = await upstream();
    const echo = await (
      await request(up.url, { method: "PUT", body: Buffer.alloc(3 * 1024 * 1024) })
    ).json<EchoBody>();
    expect(echo.bodyBytes).toBe(3 * 1024 * 1024);
  });

  it("answers a fixed status, body and headers", async () => {
    const up = await upstream({ status: 503, body: "down", headers: { "retry-after": "1" } });
    const response = await request(up.url);
    expect(response.status).toBe(503);
    expect(response.headers["retry-after"]).toBe("1");
    expect(response.headers["x-upstream"]).toBe(up.name);
    expect(await response.text()).toBe("down");
  });

  it("answers HEAD with the echo's headers and no body", async () => {
    const up = await upstream();
    const response = await request(up.url, { method: "HEAD" });
    expect(response.status).toBe(200);
    expect(Number(response.headers["content-length"])).toBeGreaterThan(0);
    expect(await response.text()).toBe("");
  });

  it("changes behaviour at runtime for requests that arrive afterwards", async () => {
    const up = await upstream();
    expect((await request(up.url)).status).toBe(200);
    up.setBehaviour({ status: 418, body: "teapot" });
    const response = await request(up.url);
    expect(response.status).toBe(418);
    expect(await response.text()).toBe("teapot");
    up.setBehaviour({});
    expect((await request(up.url)).status).toBe(200);
    expect(up.requests).toHaveLength(3);
  });

  it("rejects contradictory behaviour, naming every problem", async () => {
    await expect(startUpstream({ hang: true, reset: true, body: "x", stream: { bytes: 1 } })).rejects.toThrow(
      /body: set body or stream, not both; hang: set hang or reset, not both/,
    );
    const up = await upstream();
    expect(() => up.setBehaviour({ fail: { percent: 150 } })).toThrow(/fail.percent: 150 is outside 0–100/);
  });

  it("delays the response headers", async () => {
    const up = await upstream({ delayMs: 300 });
    const started = performance.now();
    const response = await request(up.url);
    expect(performance.now() - started).toBeGreaterThanOrEqual(280);
    expect(response.status).toBe(200);
    await response.drain();
  });

  it("hangs until the client gives up, having recorded the request", async () => {
    const up = await upstream({ hang: true });
    const started = performance.now();
    await expect(request(up.url, { timeoutMs: 300 })).rejects.toMatchObject({ name: "TimeoutError" });
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(up.requests).toHaveLength(1);
  });

  it("surfaces a reset before the response as a request error", async () => {
    const up = await upstream({ reset: true });
    await expect(request(up.url)).rejects.toThrow();
    expect(up.requests).toHaveLength(1);
  });

  it("surfaces a reset mid-body as a body error after the headers arrived", async () => {
    const up = await upstream({ stream: { bytes: 1024 * 1024 }, resetAfterBytes: 64 * 1024 });
    const response = await request(up.url);
    expect(response.status).toBe(200);
    expect(response.headers["content-length"]).toBe(String(1024 * 1024));
    await expect(response.drain()).rejects.toThrow();
  });

  it("cuts a chunked body too, so the client cannot mistake it for complete", async () => {
    const up = await upstream({ stream: { bytes: 100_000, chunked: true }, resetAfterBytes: 10_000 });
    const response = await request(up.url);
    expect(response.headers["content-length"]).toBeUndefined();
    await expect(response.drain()).rejects.toThrow();
  });

  it("fails a seeded share of requests, reproducibly", async () => {
    const fail = { percent: 30, seed: 42 };
    const first = await statuses(await upstream({ fail }), 60);
    const second = await statuses(await upstream({ fail }), 60);
    expect(second).toEqual(first);
    const failures = first.filter((status) => status !== 200);
    expect(failures.length).toBeGreaterThan(6);
    expect(failures.length).toBeLessThan(36);
    expect(new Set(failures)).toEqual(new Set([500, 502, 503]));

    const reseeded = await upstream({ fail: { percent: 30, seed: 7 } });
    expect(await statuses(reseeded, 60)).not.toEqual(first);
    // Setting the behaviour again restarts the sequence.
    reseeded.setBehaviour({ fail });
    expect(await statuses(reseeded, 60)).toEqual(first);
  });

  it("fails with the given statuses only, and 100% fails every request", async () => {
    const up = await upstream({ fail: { percent: 100, statuses: [502] } });
    expect(await statuses(up, 5)).toEqual([502, 502, 502, 502, 502]);
    const response = await request(up.url);
    expect(await response.json()).toMatchObject({
      error: "injected failure",
      status: 502,
      upstream: up.name,
    });
  });

  it("streams a generated body of exactly the requested size", async () => {
    const size = 5 * 1024 * 1024 + 17;
    const up = await upstream({ stream: { bytes: size } });
    const response = await request(up.url);
    expect(response.headers["content-length"]).toBe(String(size));
    expect(await response.drain()).toBe(size);
  });

  it("streams the documented byte pattern, chunked when asked", async () => {
    const up = await upstream({ stream: { bytes: 70_000, chunkBytes: 1000, chunked: true } });
    const response = await request(up.url);
    expect(response.headers["transfer-encoding"]).toBe("chunked");
    expect((await response.bytes()).equals(streamedBody(70_000))).toBe(true);
  });

  it("sends a slow body: headers at once, chunks spaced by the interval", async () => {
    const up = await upstream({ stream: { bytes: 500, chunkBytes: 100, intervalMs: 150 } });
    const started = performance.now();
    const response = await request(up.url);
    // Headers come with the first chunk, long before the four intervals (600 ms) have passed.
    expect(performance.now() - started).toBeLessThan(300);
    expect(await response.drain()).toBe(500);
    expect(performance.now() - started).toBeGreaterThanOrEqual(580);
  });

  it("reuses one connection for sequential keep-alive requests", async () => {
    const up = await upstream();
    const client = singleConnection(up.url);
    for (let i = 0; i < 5; i++) await (await request(up.url, { dispatcher: client })).drain();
    expect(up.connections).toBe(1);
    expect(up.requests.map((r) => r.connectionId)).toEqual([1, 1, 1, 1, 1]);

    const other = singleConnection(up.url);
    await (await request(up.url, { dispatcher: other })).drain();
    expect(up.connections).toBe(2);
    expect(up.requests.at(-1)!.connectionId).toBe(2);
  });

  it("opens a connection per request when the client asks to close", async () => {
    const up = await upstream();
    const client = singleConnection(up.url);
    for (let i = 0; i < 3; i++) {
      await (await request(up.url, { dispatcher: client, headers: { connection: "close" } })).drain();
    }
    expect(up.connections).toBe(3);
    expect(up.requests.map((r) => r.connectionId)).toEqual([1, 2, 3]);
  });

  it("echoes raw bytes both ways after a WebSocket handshake", async () => {
    const up = await upstream();
    const ws = await wsHandshake(up.port, "/chat?room=1", { "sec-websocket-protocol": "chat, superchat" });
    try {
      expect(ws.status).toBe(101);
      expect(ws.acceptValid).toBe(true);
      expect(ws.headers["sec-websocket-protocol"]).toBe("chat");
      expect(ws.headers["x-upstream"]).toBe(up.name);
      ws.socket.write("hello");
      expect((await readBytes(ws.socket, 5)).toString()).toBe("hello");
      const frame = Buffer.from([0x81, 0x85, 1, 2, 3, 4, 0x69, 0x67, 0x6f, 0x68, 0x6e]);
      ws.socket.write(frame);
      expect((await readBytes(ws.socket, frame.length)).equals(frame)).toBe(true);
      expect(up.requests[0]).toMatchObject({ method: "GET", path: "/chat?room=1", upgrade: true });
    } finally {
      ws.socket.destroy();
    }
  });

  it("refuses upgrades when websocket is off", async () => {
    const up = await upstream({ websocket: false });
    const ws = await wsHandshake(up.port, "/");
    ws.socket.destroy();
    expect(ws.status).toBe(400);
    expect(ws.acceptValid).toBe(false);
  });

  it("waits for requests that have not arrived yet, and times out otherwise", async () => {
    const up = await upstream();
    const waiting = up.waitForRequests(2);
    await (await request(up.url)).drain();
    await (await request(up.url)).drain();
    await expect(waiting).resolves.toBeUndefined();
    await expect(up.waitForRequests(3, 50)).rejects.toThrow(/2 of 3 requests after 50 ms/);
  });

  it("close() ends hung connections at once and is idempotent", async () => {
    const up = await startUpstream({ hang: true });
    const pending = request(up.url, { timeoutMs: 4_000 });
    await up.waitForRequests(1);
    const started = performance.now();
    await Promise.all([up.close(), up.close()]);
    await expect(pending).rejects.toThrow();
    expect(performance.now() - started).toBeLessThan(500);
    await up.close();
  });

  it("answers raw requests that undici would not send", async () => {
    const up = await upstream();
    const result = await rawHttp(up.port, ["GET /raw HTTP/1.1\r\nHost: x\r\n", "Connection: close\r\n\r\n"], {
      gapMs: 20,
    });
    expect(result.status).toBe(200);
    expect(result.closed).toBe(true);
    expect(result.text).toContain('"path":"/raw"');
  });

  it("refusedAddress() names a port where connections are refused", async () => {
    const address = await refusedAddress();
    expect(address).toMatch(/^127\.0\.0\.1:\d+$/);
    await expect(request(`http://${address}/`)).rejects.toMatchObject({ code: "ECONNREFUSED" });
  });
});

describe("startUpstream over TLS", { timeout: 5_000 }, () => {
  let ca: CertificateAuthority;
  let serverCert: PemPair;

  beforeAll(async () => {
    ca = await createCertificateAuthority("Upstream Test CA");
    serverCert = await ca.issueServer({ names: ["upstream.test", "localhost", "127.0.0.1"] });
  });

  function tlsAgent(options: { client?: PemPair; servername?: string } = {}): Agent {
    const created = createTlsAgent({
      ca: ca.certPem,
      ...(options.servername === undefined ? {} : { servername: options.servername }),
      ...(options.client === undefined ? {} : { cert: options.client.certPem, key: options.client.keyPem }),
    });
    agents.push(created);
    return created;
  }

  it("serves HTTPS and records the SNI the client sent", async () => {
    const up = await upstream({ tls: serverCert });
    expect(up.url).toBe(`https://127.0.0.1:${up.port}`);
    const response = await request(`${up.url}/secure`, {
      dispatcher: tlsAgent({ servername: "upstream.test" }),
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ path: "/secure", httpVersion: "1.1" });
    expect(up.requests[0]!.tls).toEqual({
      servername: "upstream.test",
      alpnProtocol: "http/1.1",
      clientCommonName: null,
    });
  });

  it("serves HTTP/2 to clients that offer it and shares one session between requests", async () => {
    const up = await upstream({ tls: serverCert, http2: true });
    // A single Client: an Agent may dial another connection for concurrent requests even on h2.
    const h2 = new Client(up.url, { allowH2: true, connect: { ca: ca.certPem } });
    agents.push(h2);
    await (await request(`${up.url}/0`, { dispatcher: h2 })).drain();
    const responses = await Promise.all([
      request(`${up.url}/1`, { dispatcher: h2 }),
      request(`${up.url}/2`, { dispatcher: h2 }),
    ]);
    const echoes = await Promise.all(responses.map((r) => r.json<EchoBody>()));
    expect(echoes.map((e) => e.httpVersion)).toEqual(["2.0", "2.0"]);
    expect(echoes[0]!.headers[":authority"]).toBe(up.address);
    expect(up.requests.map((r) => r.tls?.alpnProtocol)).toEqual(["h2", "h2", "h2"]);
    expect(up.requests.map((r) => r.connectionId)).toEqual([1, 1, 1]);
    expect(up.connections).toBe(1);
  });

  it("still serves HTTP/1.1 on the HTTP/2 variant", async () => {
    const up = await upstream({ tls: serverCert, http2: true });
    const echo = await (await request(up.url, { dispatcher: tlsAgent() })).json<EchoBody>();
    expect(echo.httpVersion).toBe("1.1");
  });

  it("applies behaviour on HTTP/2 streams: status, stream body, stream reset", async () => {
    const up = await upstream({ tls: serverCert, http2: true, status: 201, stream: { bytes: 200_000 } });
    const h2 = new Client(up.url, { allowH2: true, connect: { ca: ca.certPem } });
    agents.push(h2);
    const response = await request(up.url, { dispatcher: h2 });
    expect(response.status).toBe(201);
    expect(await response.drain()).toBe(200_000);
    up.setBehaviour({ reset: true });
    await expect(request(up.url, { dispatcher: h2 })).rejects.toThrow();
    // A stream reset leaves the session usable.
    up.setBehaviour({});
    expect((await request(up.url, { dispatcher: h2 })).status).toBe(200);
    expect(up.connections).toBe(1);
  });

  it("requires a client cert from the given CA when clientCaPem is set", async () => {
    const up = await upstream({ tls: { ...serverCert, clientCaPem: ca.certPem } });
    const client = await ca.issueClient({ commonName: "edge-proxy" });
    const response = await request(up.url, { dispatcher: tlsAgent({ client }) });
    expect(response.status).toBe(200);
    await response.drain();
    expect(up.requests[0]!.tls?.clientCommonName).toBe("edge-proxy");
    await expect(request(up.url, { dispatcher: tlsAgent() })).rejects.toThrow();
    expect(up.requests).toHaveLength(1);
  });

  it("needs tls for http2, and says so", async () => {
    await expect(startUpstream({ http2: true })).rejects.toThrow(/http2 needs tls/);
  });
});
