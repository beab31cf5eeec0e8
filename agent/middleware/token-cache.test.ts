import { describe, expect, it } from "vitest";
import { TokenCache } from "./token-cache.js";

describe("TokenCache", () => {
  it("keeps an entry until its token's validity ends", () => {
    const cache = new TokenCache<string>(10, 60_000);
    cache.set("t", "claims", 1_000 + 30_000, 1_000);
    expect(cache.get("t", 30_999)).toBe("claims");
    expect(cache.get("t", 31_000)).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it("never keeps an entry past its maximum age", () => {
    const cache = new TokenCache<string>(10, 60_000);
    cache.set("t", "claims", 3_600_000, 0);
    expect(cache.get("t", 59_999)).toBe("claims");
    expect(cache.get("t", 60_000)).toBeUndefined();
  });

  it("does not store a token that is no longer valid", () => {
    const cache = new TokenCache<string>(10, 60_000);
    cache.set("t", "claims", 500, 1_000);
    expect(cache.size).toBe(0);
  });

  it("drops the oldest entry at its bound, hits notwithstanding", () => {
    const cache = new TokenCache<string>(2, 60_000);
    cache.set("a", "A", 60_000, 0);
    cache.set("b", "B", 60_000, 0);
    expect(cache.get("a", 1)).toBe("A");
    cache.set("c", "C", 60_000, 0);
    expect(cache.size).toBe(2);
    expect(cache.get("a", 1)).toBeUndefined();
    expect(cache.get("b", 1)).toBe("B");
    expect(cache.get("c", 1)).toBe("C");
  });

  it("replaces an entry in place without evicting another", () => {
    const cache = new TokenCache<string>(2, 60_000);
    cache.set("a", "A", 60_000, 0);
    cache.set("b", "B", 60_000, 0);
    cache.set("b", "B2", 60_000, 0);
    expect(cache.get("a", 1)).toBe("A");
    expect(cache.get("b", 1)).toBe("B2");
  });
});
