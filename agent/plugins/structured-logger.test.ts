import type { IncomingMessage } from "node:http";
import pino from "pino";
import { describe, expect, it } from "vitest";
import type { Logger } from "../../services/telemetry/logger.js";
import { PluginCalls, type PluginContext, UNAVAILABLE } from "./plugin.js";
import type { StructuredLoggerSettings } from "./plugin-settings.js";
import { REDACTED, StructuredLoggerPlugin } from "./structured-logger.js";

/** Every credential below contains this, so one search finds any of them leaking. */
const SECRET = "s3cr3t";

function context(): PluginContext {
  const req = {
    method: "POST",
    url: "/raw/./orders",
    headers: {
      "user-agent": "curl/8",
      authorization: `Bearer ${SECRET}-token`,
      cookie: `session=${SECRET}-cookie`,
      "proxy-authorization": `Basic ${SECRET}-proxy`,
      "x-tenant": "acme",
    },
    socket: {},
  } as unknown as IncomingMessage;
  return { req, requestId: "req-9", routeId: "orders", upstreamHeaders: {}, path: "/orders" };
}

function settings(overrides: Partial<StructuredLoggerSettings> = {}): StructuredLoggerSettings {
  return { kind: "structured_logger", id: "request-logger", failMode: "open", headers: [], ...overrides };
}

function capture() {
  const lines: string[] = [];
  const logger = pino({ level: "info" }, { write: (line: string) => lines.push(line) });
  return { lines, logger };
}

describe("StructuredLoggerPlugin", () => {
  it("logs one line per request with its identity and the listed headers", () => {
    const { lines, logger } = capture();
    const calls = new PluginCalls();
    const plugin = new StructuredLoggerPlugin(settings({ headers: ["user-agent", "x-tenant", "x-absent"] }), {
      calls,
      logger,
    });
    expect(plugin.filter(context())).toBeUndefined();
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0] as string)).toMatchObject({
      event: "plugin_request",
      plugin: "request-logger",
      request_id: "req-9",
      route: "orders",
      method: "POST",
      path: "/orders",
      headers: { "user-agent": "curl/8", "x-tenant": "acme" },
    });
    expect(calls).toMatchObject({ allow: 1, error: 0 });
  });

  it("shows that a listed credential was sent, never its value", () => {
    const { lines, logger } = capture();
    const plugin = new StructuredLoggerPlugin(
      settings({ headers: ["authorization", "cookie", "proxy-authorization", "x-tenant"] }),
      { calls: new PluginCalls(), logger },
    );
    plugin.filter(context());
    const line = lines[0] as string;
    expect(line).not.toContain(SECRET);
    expect(JSON.parse(line).headers).toEqual({
      authorization: REDACTED,
      cookie: REDACTED,
      "proxy-authorization": REDACTED,
      "x-tenant": "acme",
    });
  });

  it("leaves headers out when none are listed", () => {
    const { lines, logger } = capture();
    new StructuredLoggerPlugin(settings(), { calls: new PluginCalls(), logger }).filter(context());
    expect(JSON.parse(lines[0] as string)).not.toHaveProperty("headers");
  });

  it.each([
    ["open", undefined],
    ["closed", UNAVAILABLE],
  ] as const)("honours fail_mode %s when logging throws", (failMode, expected) => {
    const broken = {
      info: () => {
        throw new Error("disk full");
      },
    } as unknown as Logger;
    const calls = new PluginCalls();
    const plugin = new StructuredLoggerPlugin(settings({ failMode }), { calls, logger: broken });
    expect(plugin.filter(context())).toBe(expected);
    expect(calls).toMatchObject({ allow: 0, error: 1 });
  });
});
