/**
 * Request smuggling through a real agent process: raw bytes over node:net to its listener, a
 * real upstream behind a tap that keeps every byte the agent sends it. An ambiguous request —
 * two framings (CL.TE, TE.CL, two Content-Lengths), a Transfer-Encoding the agent would read
 * one way and an upstream another, a bad chunk size, an obs-fold, a header name with a space,
 * an absolute-form target — must be refused with 400 before anything reaches the upstream.
 * Whatever the agent accepts it re-frames itself, so the upstream never parses a request the
 * agent did not route, and a later request on the agent's pooled upstream connection still
 * gets its own answer (no response-queue poisoning).
 *
 * Oversized headers (431), slowloris on headers (read_header_timeout) and a malformed request
 * line are covered by test/agent/listener-limits.test.ts; a slow body (read_timeout) is here.
 */
import { connect, createServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AgentProcess, startAgent } from "../support/agent-process.js";
import { rawHttp, request } from "../support/http.js";
import { reportReliability } from "../support/reliability.js";
import { startUpstream, type Upstream } from "../support/upstream.js";

const LISTENER = "127.0.0.1:0";
/** Marks the smuggled request: it must never show up at the upstream as a request of its own. */
const SMUGGLED = "/smuggled-ffa3";

let agent: AgentProcess;
let upstream: Upstream;
let tap: Tap;
let port: number;
let requestsSent = 0;
let requestsFailed = 0;

/** A TCP relay in front of the upstream that keeps every byte the agent sends through it. */
interface Tap {
  readonly address: string;
  /** Everything the agent sent the upstream so far, latin1. */
  received(): string;
  close(): Promise<void>;
}

async function startTap(target: Upstream): Promise<Tap> {
  const chunks: Buffer[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const backend = connect({ host: "127.0.0.1", port: target.port });
    sockets.add(client).add(backend);
    client.on("data", (chunk: Buffer) => chunks.push(chunk));
    client.pipe(backend).pipe(client);
    const drop = (): void => {
      client.destroy();
      backend.destroy();
      sockets.delete(client);
      sockets.delete(backend);
    };
    client.on("error", drop).on("close", drop);
    backend.on("error", drop).on("close", drop);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port: tapPort } = server.address() as { port: number };
  return {
    address: `127.0.0.1:${tapPort}`,
    received: () => Buffer.concat(chunks).toString("latin1"),
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

beforeAll(async () => {
  upstream = await startUpstream({ name: "u" });
  tap = await startTap(upstream);
  agent = await startAgent({
    config: `listeners:
  - address: "${LISTENER}"
    read_header_timeout: 2s
    read_timeout: 2s
routes:
  - id: r
    pool: p
pools:
  - id: p
    endpoints: [{address: "${tap.address}"}]
`,
  });
  port = await agent.port(LISTENER);
}, 60_000);

afterAll(async () => {
  await agent?.stop("SIGKILL");
  await tap?.close();
  await upstream?.close();
});

const head = (lines: readonly string[]): string => `${lines.join("\r\n")}\r\n\r\n`;
const smuggled = `GET ${SMUGGLED} HTTP/1.1\r\nHost: x\r\n\r\n`;

interface Attack {
  readonly name: string;
  readonly bytes: string;
}

/** Each is refused with 400: the agent cannot know where the request ends, or must not guess. */
const refused: Attack[] = [
  {
    name: "CL.TE: Content-Length and Transfer-Encoding chunked",
    bytes:
      head(["POST / HTTP/1.1", "Host: x", "Content-Length: 6", "Transfer-Encoding: chunked"]) +
      `0\r\n\r\n${smuggled}`,
  },
  {
    name: "TE.CL: Transfer-Encoding chunked before a short Content-Length",
    bytes: `${head(["POST / HTTP/1.1", "Host: x", "Transfer-Encoding: chunked", "Content-Length: 4"])}${(
      smuggled.length + 1
    ).toString(16)}\r\n${smuggled}X\r\n0\r\n\r\n`,
  },
  {
    name: "two Content-Lengths with different values",
    bytes: `${head(["POST / HTTP/1.1", "Host: x", "Content-Length: 0", `Content-Length: ${smuggled.length}`])}${smuggled}`,
  },
  {
    name: "a Content-Length list with different values",
    bytes: `${head(["POST / HTTP/1.1", "Host: x", `Content-Length: 0, ${smuggled.length}`])}${smuggled}`,
  },
  {
    name: "a signed Content-Length",
    bytes: `${head(["POST / HTTP/1.1", "Host: x", `Content-Length: +${smuggled.length}`])}${smuggled}`,
  },
  {
    name: "Transfer-Encoding folded onto a second line (obs-fold) beside a Content-Length",
    bytes: `${head(["POST / HTTP/1.1", "Host: x", "Content-Length: 5", "Transfer-Encoding:", " chunked"])}0\r\n\r\n${smuggled}`,
  },
  {
    name: "Transfer-Encoding chunked, identity (chunked not last)",
    bytes: `${head(["POST / HTTP/1.1", "Host: x", "Transfer-Encoding: chunked, identity"])}0\r\n\r\n${smuggled}`,
  },
  {
    name: "Transfer-Encoding of an unknown coding beside a Content-Length",
    bytes: `${head(["POST / HTTP/1.1", "Host: x", "Transfer-Encoding: xchunked", "Content-Length: 5"])}0\r\n\r\n${smuggled}`,
  },
  {
    name: "a space between Transfer-Encoding and its colon",
    bytes: `${head(["POST / HTTP/1.1", "Host: x", "Transfer-Encoding : chunked", "Content-Length: 5"])}0\r\n\r\n${smuggled}`,
  },
  {
    name: "a header name with a space inside",
    bytes: head(["GET / HTTP/1.1", "Host: x", "X Forwarded-For: 10.0.0.1"]),
  },
  {
    name: "an obs-fold continuation line in an ordinary header",
    bytes: head(["GET / HTTP/1.1", "Host: x", "X-Note: first", " second"]),
  },
  {
    name: "an absolute-form target naming another host",
    bytes: head(["GET http://internal.example/admin HTTP/1.1", "Host: x", "Connection: close"]),
  },
  {
    name: "a request without Host in HTTP/1.1",
    bytes: head(["GET / HTTP/1.1"]),
  },
];

/**
 * Refused once the head was read: the head is valid, so the agent may have begun forwarding
 * it, but the body is cut and the bytes after it are never read as a request.
 */
const refusedInBody: Attack[] = [
  {
    name: "a negative chunk size",
    bytes: `${head(["POST / HTTP/1.1", "Host: x", "Transfer-Encoding: chunked"])}-1\r\nA\r\n0\r\n\r\n${smuggled}`,
  },
  {
    name: "a chunk size that overflows 64 bits",
    bytes: `${head(["POST / HTTP/1.1", "Host: x", "Transfer-Encoding: chunked"])}10000000000000001\r\nA\r\n0\r\n\r\n${smuggled}`,
  },
  {
    name: "a chunk size that is not hex",
    bytes: `${head(["POST / HTTP/1.1", "Host: x", "Transfer-Encoding: chunked"])}zz\r\nA\r\n0\r\n\r\n${smuggled}`,
  },
  {
    name: "a chunk whose data is longer than its size",
    bytes: `${head(["POST / HTTP/1.1", "Host: x", "Transfer-Encoding: chunked"])}1\r\nAB\r\n0\r\n\r\n${smuggled}`,
  },
  {
    name: "a bare LF ending a chunk size",
    bytes: `${head(["POST / HTTP/1.1", "Host: x", "Transfer-Encoding: chunked"])}5\nAAAAA\r\n0\r\n\r\n${smuggled}`,
  },
];

/** A fresh request through the agent's pooled upstream connection still gets its own echo. */
async function checkNotPoisoned(marker: string): Promise<void> {
  requestsSent++;
  const res = await request(`http://127.0.0.1:${port}/after-${marker}`);
  const echo = await res.json<{ path: string }>();
  if (res.status !== 200) requestsFailed++;
  expect(res.status).toBe(200);
  expect(echo.path).toBe(`/after-${marker}`);
}

function upstreamSawSmuggled(): boolean {
  return (
    upstream.requests.some((r) => r.path.includes(SMUGGLED) || r.path.includes("internal.example")) ||
    tap.received().includes(SMUGGLED)
  );
}

describe("request smuggling through the agent", () => {
  it.each(refused.map((attack, i) => ({ ...attack, i })))(
    "refuses $name with 400 and the upstream sees nothing of it",
    async ({ bytes, i }) => {
      const before = upstream.requests.length;
      const res = await rawHttp(port, bytes, { timeoutMs: 3_000 });
      expect(res.status, res.text).toBe(400);
      // One response only: the bytes after the refused request are never read as a request.
      expect(res.text.match(/HTTP\/1\.1 \d{3}/g)).toHaveLength(1);
      expect(upstream.requests.length).toBe(before);
      expect(upstreamSawSmuggled()).toBe(false);
      await checkNotPoisoned(`refused-${i}`);
    },
  );

  it.each(refusedInBody.map((attack, i) => ({ ...attack, i })))(
    "refuses $name with 400, never completes its body upstream, and reads nothing after it",
    async ({ bytes, i }) => {
      const before = upstream.requests.length;
      const res = await rawHttp(port, bytes, { timeoutMs: 3_000 });
      expect(res.status, res.text).toBe(400);
      expect(res.text.match(/HTTP\/1\.1 \d{3}/g)).toHaveLength(1);
      expect(res.closed || res.errorCode !== undefined).toBe(true);
      // Forwarding may have begun on the valid head; the cut body must never look complete.
      const forwarded = upstream.requests.slice(before);
      expect(forwarded.length).toBeLessThanOrEqual(1);
      for (const r of forwarded) {
        expect(r.path).toBe("/");
        await expect.poll(() => r.bodyComplete === false || r.bodyBytes < 2).toBe(true);
      }
      expect(upstreamSawSmuggled()).toBe(false);
      await checkNotPoisoned(`body-${i}`);
    },
  );

  it("refuses two Host headers with 400 (RFC 9112 §3.2) and forwards nothing", async () => {
    const start = tap.received().length;
    const before = upstream.requests.length;
    const res = await rawHttp(
      port,
      head(["GET /two-hosts HTTP/1.1", "Host: x", "Host: internal.example", "Connection: close"]),
      { timeoutMs: 3_000 },
    );
    expect(res.status).toBe(400);
    expect(upstream.requests.slice(before)).toHaveLength(0);
    expect(tap.received().slice(start)).not.toContain("internal.example");
    await checkNotPoisoned("two-hosts");
  });

  it("reads Transfer-Encoding in odd casing as chunked and forwards exactly the chunked body", async () => {
    const before = upstream.requests.length;
    const body = "hello";
    const res = await rawHttp(
      port,
      `${head(["POST /te-case HTTP/1.1", "Host: x", "Transfer-Encoding: ChUnKeD", "Connection: close"])}5\r\n${body}\r\n0\r\n\r\n`,
      { timeoutMs: 3_000 },
    );
    expect(res.status, res.text).toBe(200);
    const forwarded = upstream.requests.slice(before);
    expect(forwarded.map((r) => r.path)).toEqual(["/te-case"]);
    expect(forwarded[0]?.bodyBytes).toBe(body.length);
    await checkNotPoisoned("te-case");
  });

  it("answers pipelined requests in order, each forwarded as its own request", async () => {
    const before = upstream.requests.length;
    const res = await rawHttp(
      port,
      `${head(["POST /first HTTP/1.1", "Host: x", "Content-Length: 5"])}ABCDE${head(["GET /second HTTP/1.1", "Host: x", "Connection: close"])}`,
      { timeoutMs: 3_000 },
    );
    expect(res.text.match(/HTTP\/1\.1 200/g)).toHaveLength(2);
    expect(res.text.indexOf('"path":"/first"')).toBeLessThan(res.text.indexOf('"path":"/second"'));
    const forwarded = upstream.requests.slice(before);
    expect(forwarded.map((r) => [r.path, r.bodyBytes])).toEqual([
      ["/first", 5],
      ["/second", 0],
    ]);
  });

  it("forwards one Content-Length or chunked framing upstream, never both", async () => {
    const start = tap.received().length;
    const res = await rawHttp(
      port,
      `${head(["POST /framed HTTP/1.1", "Host: x", "Transfer-Encoding: chunked", "Connection: close"])}3\r\nabc\r\n0\r\n\r\n`,
      { timeoutMs: 3_000 },
    );
    expect(res.status).toBe(200);
    const sent = tap.received().slice(start);
    const headEnd = sent.indexOf("\r\n\r\n");
    const forwardedHead = sent.slice(0, headEnd).toLowerCase();
    expect(forwardedHead.startsWith("post /framed http/1.1")).toBe(true);
    const framings = [
      /\r\ncontent-length:/.test(forwardedHead),
      /\r\ntransfer-encoding:/.test(forwardedHead),
    ];
    expect(framings.filter(Boolean)).toHaveLength(1);
  });

  it("closes a connection whose body trickles in slower than read_timeout", async () => {
    const started = Date.now();
    const parts = [
      head(["POST /slow-body HTTP/1.1", "Host: x", "Content-Length: 100"]),
      ...Array.from({ length: 30 }, () => "x"),
    ];
    const res = await rawHttp(port, parts, { gapMs: 200, timeoutMs: 8_000 });
    // The agent answers 408 (or, once it has begun forwarding, cuts the exchange) and closes.
    expect(res.closed || res.errorCode !== undefined).toBe(true);
    expect(res.status === undefined || res.status === 408 || res.status >= 500).toBe(true);
    expect(Date.now() - started).toBeLessThan(5_500);
    const seen = upstream.requests.filter((r) => r.path === "/slow-body");
    expect(seen.every((r) => r.bodyBytes < 100)).toBe(true);
    await checkNotPoisoned("slow-body");
  });

  afterAll(() => {
    reportReliability({
      suite: "security",
      scenario: "http request smuggling through the agent",
      loadHeld: "none",
      faultsInjected: 0,
      badInputsTried: refused.length + refusedInBody.length + 3,
      requestsSent,
      requestsFailed,
      bundlesLost: 0,
      notes: "every ambiguous framing refused with 400; the upstream never saw a smuggled request",
    });
  });
});
