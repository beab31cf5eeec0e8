import type { IncomingMessage } from "node:http";
import pino from "pino";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type FilterServer, startFilterServer } from "../../deploy/examples/filter-server.js";
import type { Plugin } from "../../services/config/index.js";
import { ExternalGrpcFilter } from "./external-grpc-filter.js";
import { type PluginContext, UNAVAILABLE } from "./plugin.js";
import { PluginRegistry } from "./plugin-registry.js";
import { StructuredLoggerPlugin } from "./structured-logger.js";

const logger = pino({ level: "silent" });

function context(): PluginContext {
  const req = { method: "GET", url: "/", headers: {}, socket: {} } as unknown as IncomingMessage;
  return { req, requestId: "req-1", routeId: "api", upstreamHeaders: {} };
}

describe("PluginRegistry", () => {
  let server: FilterServer;
  let registry: PluginRegistry;
  let configs: Plugin[];

  beforeAll(async () => {
    server = await startFilterServer();
  });
  afterAll(() => server.close());

  beforeEach(() => {
    registry = new PluginRegistry({ logger });
    configs = [
      { id: "auth", type: "external_grpc", address: server.address, timeout: 1_000 },
      { id: "log", type: "builtin", name: "structured_logger" },
    ];
  });
  afterEach(() => registry.close());

  it("makes the plugin of each config entry, by id", () => {
    const plugins = registry.pluginsFor(configs);
    expect([...plugins.keys()]).toEqual(["auth", "log"]);
    expect(plugins.get("auth")).toBeInstanceOf(ExternalGrpcFilter);
    expect(plugins.get("log")).toBeInstanceOf(StructuredLoggerPlugin);
    expect(registry.get("auth")).toBe(plugins.get("auth"));
    expect(registry.get("missing")).toBeUndefined();
  });

  it("keeps a plugin, and its gRPC channel, while its config is unchanged", async () => {
    const first = registry.pluginsFor(configs);
    const second = registry.pluginsFor(configs.map((config) => ({ ...config })));
    registry.retain(second.keys());
    expect(second.get("auth")).toBe(first.get("auth"));
    expect(second.get("log")).toBe(first.get("log"));
    await expect(second.get("auth")?.filter(context())).resolves.toBeUndefined();
  });

  it("replaces a changed plugin, closing the old one only at retain, and keeps counting under its id", async () => {
    const old = registry.pluginsFor(configs).get("auth");
    const changed = registry.pluginsFor([{ ...(configs[0] as Plugin), fail_mode: "open" }]).get("auth");
    expect(changed).not.toBe(old);
    expect(registry.get("auth")).toBe(changed);
    // Requests still on the old snapshot keep a working plugin until the swap is done.
    await expect(old?.filter(context())).resolves.toBeUndefined();

    registry.retain(["auth"]);
    await expect(old?.filter(context())).resolves.toBe(UNAVAILABLE);
    await expect(changed?.filter(context())).resolves.toBeUndefined();
    expect(registry.callCounts()).toEqual([
      { plugin: "auth", outcome: "allow", count: 2 },
      { plugin: "auth", outcome: "deny", count: 0 },
      { plugin: "auth", outcome: "error", count: 1 },
      { plugin: "auth", outcome: "timeout", count: 0 },
    ]);
  });

  it("closes and forgets the plugins a config no longer has, counters included", async () => {
    const auth = registry.pluginsFor(configs).get("auth");
    registry.retain(["log"]);
    expect(registry.get("auth")).toBeUndefined();
    await expect(auth?.filter(context())).resolves.toBe(UNAVAILABLE);
    expect(registry.callCounts().map((count) => count.plugin)).toEqual(["log", "log", "log", "log"]);
  });

  it("closes every plugin on close", async () => {
    const auth = registry.pluginsFor(configs).get("auth");
    registry.close();
    expect(registry.get("log")).toBeUndefined();
    await expect(auth?.filter(context())).resolves.toBe(UNAVAILABLE);
  });
});
