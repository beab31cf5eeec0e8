import { describe, expect, it } from "vitest";
import { NO_DIRECTIVES, parseCacheControl } from "./cache-control.js";

describe("parseCacheControl", () => {
  it("reads no header as no directives, without parsing", () => {
    expect(parseCacheControl(undefined)).toBe(NO_DIRECTIVES);
  });

  it("reads names case-insensitively, with spaces and repeated header lines", () => {
    expect(parseCacheControl(["Public , MAX-AGE=60", "s-maxage=30"])).toMatchObject({
      public: true,
      maxAge: 60,
      sMaxAge: 30,
    });
  });

  it("does not split on commas inside a quoted argument", () => {
    const directives = parseCacheControl('private="set-cookie, x-user", max-age=5');
    expect(directives).toMatchObject({ private: true, maxAge: 5, noStore: false });
  });

  it("reads a quoted delta-seconds", () => {
    expect(parseCacheControl('max-age="60"').maxAge).toBe(60);
  });

  it("reads an invalid or negative delta-seconds as 0 (stale)", () => {
    expect(parseCacheControl("max-age=-1").maxAge).toBe(0);
    expect(parseCacheControl("s-maxage=1.5").sMaxAge).toBe(0);
    expect(parseCacheControl("max-age").maxAge).toBe(0);
  });

  it("takes the smaller of conflicting values", () => {
    expect(parseCacheControl("max-age=60, max-age=10").maxAge).toBe(10);
  });

  it("caps huge values at 2^31 seconds", () => {
    expect(parseCacheControl("max-age=99999999999999999999").maxAge).toBe(2_147_483_648);
  });

  it("ignores directives it does not act on", () => {
    expect(parseCacheControl("immutable, stale-while-revalidate=30, no-transform")).toEqual(NO_DIRECTIVES);
  });
});
