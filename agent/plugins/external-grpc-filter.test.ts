// The external filter plugin against real gRPC on loopback: the example filter server of
// deploy/examples, in process and as its own process, plus a TLS server of the same service.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import type { IncomingMessage } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { Server, ServerCredentials } from "@grpc/grpc-js";
import pino from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { decide, type FilterServer, startFilterServer } from "../../deploy/examples/filter-server.js";
import { type RequestFilterServer, RequestFilterService } from "../../proto/coherent/v1/filter.js";
import { createCertificateAuthority, writePemFiles } from "../../test/support/certs.js";
import { refusedAddress } from "../../test/support/upstream.js";
import { ExternalGrpcFilter } from "./external-grpc-filter.js";
import { PluginCalls, type PluginContext, UNAVAILABLE } from "./plugin.js";
import type { ExternalGrpcSettings } from "./plugin-settings.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
/**
 * What a timed-out call may take beyond its deadline: timers and event-loop turns, with room
 * for a loaded test machine (about 2 ms when idle).
 */
const MARGIN_MS = 100;

const plugins: ExternalGrpcFilter[] = [];
const logLines: Array<Record<string, unknown>> = [];
const logger = pino({ level: "info" }, { write: (line: string) => logLines.push(JSON.parse(line)) });

function createFilter(address: string, overrides: Partial<ExternalGrpcSettings> = {}, now?: () => number) {
  const calls = new PluginCalls();
  const settings: ExternalGrpcSettings = {
    kind: "external_grpc",
    id: "auth",
    address,
    timeoutMs: 1_000,
    failMode: "closed",
    tls: undefined,
    ...overrides,
  };
  const plugin = new ExternalGrpcFilter(settings, { calls, logger, ...(now && { now }) });
  plugins.push(plugin);
  return { plugin, calls };
}

function context(headers: Record<string, string | string[]> = {}, path = "/api/items?page=2"): PluginContext {
  const req = {
    method: "GET",
    url: path,
    headers: { host: "api.example.com", ...headers },
    socket: { remoteAddress: "127.0.0.1" },
  } as unknown as IncomingMessage;
  return { req, requestId: "req-1", routeId: "api", upstreamHeaders: { ...headers }, path };
}

/** The result and how long the filter took to give it. */
async function timed(plugin: ExternalGrpcFilter, ctx: PluginContext) {
  const started = performance.now();
  const result = await plugin.filter(ctx);
  return { result, ms: performance.now() - started };
}

afterEach(() => {
  for (const plugin of plugins.splice(0)) plugin.close();
  logLines.length = 0;
});

describe("ExternalGrpcFilter with a healthy filter", () => {
  let server: FilterServer;

  beforeAll(async () => {
    server = await startFilterServer();
  });
  afterAll(() => server.close());

  it("sends the request and applies an allow's header edits to the upstream headers", async () => {
    const { plugin, calls } = createFilter(server.address);
    const ctx = {
      ...context({ "x-user-id": "spoofed", "x-filtered-by": "edge" }),
      claims: { sub: "user-7" },
    };
    await expect(plugin.filter(ctx)).resolves.toBeUndefined();
    expect(ctx.upstreamHeaders).toEqual({
      "x-user-id": "user-7",
      "x-filtered-by": ["edge", "example-filter"],
    });
    expect(server.lastRequest).toMatchObject({
      requestId: "req-1",
      routeId: "api",
      method: "GET",
      path: "/api/items?page=2",
      host: "api.example.com",
      clientAddress: "127.0.0.1",
      tls: { encrypted: false, clientCertSubject: "" },
      jwtClaimsJson: '{"sub":"user-7"}',
    });
    expect(calls).toMatchObject({ allow: 1, deny: 0, error: 0, timeout: 0 });
  });

  it("turns a deny into a rejection with the filter's status, headers and body", async () => {
    const { plugin, calls } = createFilter(server.address);
    const ctx = context({ "x-block": "1" });
    const result = await plugin.filter(ctx);
    expect(result).toMatchObject({
      status: 403,
      category: "plugin_denied",
      headers: { "content-type": "application/json" },
    });
    expect(JSON.parse(Buffer.from(result?.body ?? []).toString())).toEqual({
      error: "blocked_by_filter",
      request_id: "req-1",
    });
    expect(ctx.upstreamHeaders).toEqual({ "x-block": "1" });
    expect(calls).toMatchObject({ allow: 0, deny: 1 });
  });

  it("fails a malformed answer by the fail mode", async () => {
    const closed = createFilter(server.address);
    await expect(closed.plugin.filter(context({}, "/malformed"))).resolves.toBe(UNAVAILABLE);
    const open = createFilter(server.address, { failMode: "open" });
    await expect(open.plugin.filter(context({}, "/malformed"))).resolves.toBeUndefined();
    expect(closed.calls.error + open.calls.error).toBe(2);
  });

  it("lets calls in flight finish when closed, and fails later calls by the fail mode", async () => {
    const { plugin, calls } = createFilter(server.address);
    const inFlight = plugin.filter(context({ "x-filter-delay-ms": "100" }));
    plugin.close();
    await expect(inFlight).resolves.toBeUndefined();
    const { result, ms } = await timed(plugin, context());
    expect(result).toBe(UNAVAILABLE);
    expect(ms).toBeLessThan(50);
    expect(calls).toMatchObject({ allow: 1, error: 1 });
  });
});

describe("ExternalGrpcFilter with a slow filter", () => {
  let server: FilterServer;

  beforeAll(async () => {
    server = await startFilterServer({ delayMs: 1_000 });
  });
  afterAll(() => server.close());

  it.each([
    ["closed", UNAVAILABLE],
    ["open", undefined],
  ] as const)("gives up at the timeout and fails %s", async (failMode, expected) => {
    const { plugin, calls } = createFilter(server.address, { timeoutMs: 50, failMode });
    const ctx = context({ accept: "*/*" });
    const { result, ms } = await timed(plugin, ctx);
    expect(result).toBe(expected);
    expect(ms).toBeGreaterThanOrEqual(45);
    expect(ms).toBeLessThan(50 + MARGIN_MS);
    expect(ctx.upstreamHeaders).toEqual({ accept: "*/*" });
    expect(calls).toMatchObject({ timeout: 1, error: 0 });
  });

  it("warns at most once per interval while calls fail, with the number of failures", async () => {
    let now = 0;
    const { plugin } = createFilter(server.address, { timeoutMs: 20 }, () => now);
    await plugin.filter(context());
    now = 5_000;
    await plugin.filter(context());
    await plugin.filter(context());
    expect(logLines.map((line) => line.failures)).toEqual([1]);
    now = 10_000;
    await plugin.filter(context());
    expect(logLines).toHaveLength(2);
    expect(logLines[1]).toMatchObject({
      event: "plugin_failed",
      plugin: "auth",
      outcome: "timeout",
      failures: 3,
      fail_mode: "closed",
    });
  });
});

describe("ExternalGrpcFilter with a filter that is gone", () => {
  it.each([
    ["closed", UNAVAILABLE],
    ["open", undefined],
  ] as const)(
    "fails %s at once when nothing listens, long before the timeout",
    async (failMode, expected) => {
      const { plugin, calls } = createFilter(await refusedAddress(), { timeoutMs: 2_000, failMode });
      const { result, ms } = await timed(plugin, context());
      expect(result).toBe(expected);
      expect(ms).toBeLessThan(500);
      expect(calls).toMatchObject({ error: 1, timeout: 0 });
    },
  );

  it("fails by the fail mode when the filter crashes mid-call", async () => {
    const server = await startFilterServer();
    const { plugin, calls } = createFilter(server.address, { timeoutMs: 2_000 });
    const { result, ms } = await timed(plugin, context({}, "/crash"));
    expect(result).toBe(UNAVAILABLE);
    expect(ms).toBeLessThan(500);
    expect(calls.error).toBe(1);
  });

  describe("run as its own process", () => {
    let child: ChildProcess | undefined;
    afterEach(() => {
      child?.kill("SIGKILL");
    });

    it("fails by the fail mode when the filter process is killed mid-call", async () => {
      child = spawn(
        process.execPath,
        [
          "--import",
          "tsx",
          "deploy/examples/filter-server.ts",
          "--listen",
          "127.0.0.1:0",
          "--delay-ms",
          "3000",
        ],
        { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] },
      );
      const [line] = (await once(
        createInterface({ input: child.stdout as NodeJS.ReadableStream }),
        "line",
      )) as [string];
      const address = /listening on (\S+)/.exec(line)?.[1];
      expect(address).toBeDefined();
      const { plugin, calls } = createFilter(address as string, { timeoutMs: 5_000, failMode: "open" });
      const ctx = context({ accept: "*/*" });
      const started = performance.now();
      const pending = plugin.filter(ctx);
      setTimeout(() => child?.kill("SIGKILL"), 200);
      await expect(pending).resolves.toBeUndefined();
      expect(performance.now() - started).toBeLessThan(1_500);
      expect(ctx.upstreamHeaders).toEqual({ accept: "*/*" });
      expect(calls).toMatchObject({ error: 1, timeout: 0 });
    });
  });
});

describe("ExternalGrpcFilter over TLS", () => {
  let dir: string;
  let server: Server;
  let port: number;
  let caFile: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "coherent-filter-tls-"));
    const ca = await createCertificateAuthority("filter-ca");
    const leaf = await ca.issueServer({ names: ["filter.internal"] });
    caFile = (await writePemFiles(dir, "ca", { certPem: ca.certPem, keyPem: ca.keyPem })).certFile;
    server = new Server();
    const implementation: RequestFilterServer = {
      filter: (call, callback) => callback(null, decide(call.request)),
    };
    server.addService(RequestFilterService, implementation);
    const credentials = ServerCredentials.createSsl(null, [
      { cert_chain: Buffer.from(leaf.certPem), private_key: Buffer.from(leaf.keyPem) },
    ]);
    port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", credentials, (err, bound) => (err ? reject(err) : resolve(bound))),
    );
  });
  afterAll(async () => {
    server.forceShutdown();
    await rm(dir, { recursive: true, force: true });
  });

  it("verifies the filter's certificate against tls.ca_file for the name in tls.sni", async () => {
    const { plugin } = createFilter(`127.0.0.1:${port}`, {
      tls: { ca_file: caFile, sni: "filter.internal" },
    });
    const ctx = context();
    await expect(plugin.filter(ctx)).resolves.toBeUndefined();
    expect(ctx.upstreamHeaders["x-filtered-by"]).toBe("example-filter");
  });

  it("refuses a filter whose certificate is not for the expected name", async () => {
    const { plugin, calls } = createFilter(`127.0.0.1:${port}`, {
      tls: { ca_file: caFile, sni: "other.internal" },
    });
    await expect(plugin.filter(context())).resolves.toBe(UNAVAILABLE);
    expect(calls.error).toBe(1);
  });

  it("cannot be created when a TLS file is missing, naming the plugin and the field", () => {
    expect(() => createFilter(`127.0.0.1:${port}`, { tls: { ca_file: join(dir, "missing.crt") } })).toThrow(
      /plugin auth: cannot read tls\.ca_file/,
    );
  });
});
