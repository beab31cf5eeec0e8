import { describe, expect, it } from "vitest";
import { compileCacheRule, DEFAULT_COALESCE_TIMEOUT_MS, DEFAULT_MAX_SIZE } from "./cache-policy.js";

describe("compileCacheRule", () => {
  it("is off only with enabled: false", () => {
    expect(compileCacheRule({ route: "r", enabled: false })).toBeUndefined();
    expect(compileCacheRule({ route: "r" })).toBeDefined();
  });

  it("fills the documented defaults", () => {
    expect(compileCacheRule({ route: "r" })).toEqual({
      route: "r",
      ttlMs: undefined,
      varyHeaders: [],
      maxSize: DEFAULT_MAX_SIZE,
      maxEntrySize: 1024 * 1024,
      authAware: false,
      coalesce: false,
      coalesceTimeoutMs: DEFAULT_COALESCE_TIMEOUT_MS,
    });
  });

  it("limits an entry to an eighth of a small max_size, and never above max_size", () => {
    expect(compileCacheRule({ route: "r", max_size: 800 })?.maxEntrySize).toBe(100);
    expect(compileCacheRule({ route: "r", max_size: 800, max_entry_size: 5000 })?.maxEntrySize).toBe(800);
  });

  it("sorts vary_headers and drops repeats", () => {
    expect(compileCacheRule({ route: "r", vary_headers: ["x-b", "accept", "x-b"] })?.varyHeaders).toEqual([
      "accept",
      "x-b",
    ]);
  });
});
