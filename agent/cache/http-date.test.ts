import { describe, expect, it } from "vitest";
import { parseHttpDate } from "./http-date.js";

const NOV_6_1994 = Date.UTC(1994, 10, 6, 8, 49, 37);

describe("parseHttpDate (RFC 9110 §5.6.7)", () => {
  it("reads IMF-fixdate", () => {
    expect(parseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT")).toBe(NOV_6_1994);
  });

  it("reads the obsolete RFC 850 and asctime forms", () => {
    expect(parseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT")).toBe(NOV_6_1994);
    expect(parseHttpDate("Sun Nov  6 08:49:37 1994")).toBe(NOV_6_1994);
  });

  it("reads two-digit years below 70 as this century", () => {
    expect(parseHttpDate("Monday, 01-Jan-29 00:00:00 GMT")).toBe(Date.UTC(2029, 0, 1));
  });

  it("refuses what Date.parse would guess at", () => {
    for (const text of [
      "0",
      "-1",
      "2099",
      "tomorrow",
      "",
      "Sun, 06 Nov 1994 08:49:37 PST",
      "1994-11-06T08:49:37Z",
    ]) {
      expect(parseHttpDate(text)).toBeUndefined();
    }
  });

  it("refuses dates that do not exist", () => {
    expect(parseHttpDate("Fri, 30 Feb 2024 00:00:00 GMT")).toBeUndefined();
    expect(parseHttpDate("Fri, 01 Mar 2024 24:00:00 GMT")).toBeUndefined();
    expect(parseHttpDate("Fri, 01 Foo 2024 00:00:00 GMT")).toBeUndefined();
  });
});
