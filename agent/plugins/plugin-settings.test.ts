import { describe, expect, it } from "vitest";
import { type Plugin, validateDynamicConfig } from "../../services/config/index.js";
import { DEFAULT_FILTER_TIMEOUT_MS, pluginSettings } from "./plugin-settings.js";

describe("pluginSettings", () => {
  it("gives an external filter the spec's 50 ms timeout and fails it closed unless configured", () => {
    const plugin: Plugin = { id: "auth", type: "external_grpc", address: "127.0.0.1:50051" };
    expect(pluginSettings(plugin)).toEqual({
      kind: "external_grpc",
      id: "auth",
      address: "127.0.0.1:50051",
      timeoutMs: DEFAULT_FILTER_TIMEOUT_MS,
      failMode: "closed",
      tls: undefined,
    });
    expect(DEFAULT_FILTER_TIMEOUT_MS).toBe(50);
  });

  it("keeps what an external filter's config says", () => {
    const plugin: Plugin = {
      id: "auth",
      type: "external_grpc",
      address: "filter:443",
      timeout: 200,
      fail_mode: "open",
      tls: { sni: "filter.internal" },
    };
    expect(pluginSettings(plugin)).toMatchObject({
      timeoutMs: 200,
      failMode: "open",
      tls: { sni: "filter.internal" },
    });
  });

  it("fails the structured logger open unless configured, with the header names lowercased by validation", () => {
    const validated = validateDynamicConfig({
      plugins: [
        {
          id: "log",
          type: "builtin",
          name: "structured_logger",
          config: { headers: ["User-Agent", "x-tenant"] },
        },
      ],
    });
    if (!validated.ok) throw new Error(JSON.stringify(validated.errors));
    const [plugin] = validated.value.plugins ?? [];
    expect(plugin && pluginSettings(plugin)).toEqual({
      kind: "structured_logger",
      id: "log",
      failMode: "open",
      headers: ["user-agent", "x-tenant"],
    });
  });

  it("is refused by validation with every problem's path when the logger's config is wrong", () => {
    const validated = validateDynamicConfig({
      plugins: [
        {
          id: "log",
          type: "builtin",
          name: "structured_logger",
          config: { header: ["a"], headers: ["bad name"] },
        },
      ],
    });
    expect(validated.ok).toBe(false);
    if (validated.ok) return;
    const paths = validated.errors.map((e) => `${e.path} ${e.code}`);
    expect(paths).toContain("plugins[0].config.header unknown_field");
    expect(paths).toContain("plugins[0].config.headers[0] invalid_value");
  });
});
