/**
 * The value notations of the config, each read into its canonical unit: durations into
 * milliseconds, sizes into bytes, percentages into percent points (0–100), ratios into
 * fractions (0–1), burn rates into multiples and status ranges into {min, max}. A plain number
 * is already in the canonical unit.
 */
import { describe, expect, it } from "vitest";
import {
  type Parsed,
  parseBurnRate,
  parseDuration,
  parsePercent,
  parseRatio,
  parseSize,
  parseStatusRange,
  type StatusRange,
} from "./units.js";

function expectRefused<T>(result: Parsed<T>): void {
  expect(result.ok, JSON.stringify(result)).toBe(false);
  if (!result.ok) expect(result.message.trim()).not.toBe("");
}

describe("parseDuration", () => {
  it.each<[string | number, number]>([
    ["500ms", 500],
    ["5s", 5000],
    ["1.5s", 1500],
    ["5m", 300_000],
    ["1m30s", 90_000],
    ["2h", 7_200_000],
    ["1h30m15s500ms", 5_415_500],
    ["0", 0],
    ["0s", 0],
    [" 5s ", 5000],
    ["2.25s", 2250],
    ["1.5ms", 2],
    ["500us", 1],
    ["1us", 1],
    ["1500us", 2],
    [250, 250],
    [0, 0],
    [1.5, 2],
  ])("reads %j as %d milliseconds", (input, ms) => {
    expect(parseDuration(input)).toEqual({ ok: true, value: ms });
  });

  // BUG: the sum of decimal parts is multiplied in floating point and then rounded up, so
  // float noise becomes a whole extra millisecond: "4.03s" → 4031, "0.27m" → 16201, "8.06s" → 8061
  // (4.03 * 1000 = 4030.0000000000005). Rounding up is meant for sub-millisecond values
  // ("500us"), not for noise below 1e-6.
  it.each<[string, number]>([
    ["4.03s", 4030],
    ["0.27m", 16_200],
    ["8.06s", 8060],
  ])("reads %j as exactly %d milliseconds", (input, ms) => {
    expect(parseDuration(input)).toEqual({ ok: true, value: ms });
  });

  it.each<[string | number]>([
    ["5 seconds"],
    ["5"],
    ["-1s"],
    ["1d"],
    ["5m30"],
    ["ms"],
    ["1.s"],
    [""],
    ["   "],
    [-1],
    [Number.NaN],
    [Number.POSITIVE_INFINITY],
  ])("refuses %j with a message", (input) => {
    expectRefused(parseDuration(input));
  });
});

describe("parseSize", () => {
  it.each<[string | number, number]>([
    ["100B", 100],
    ["100", 100],
    ["512KB", 524_288],
    ["1.5KB", 1536],
    ["1MB", 1_048_576],
    ["1 MB", 1_048_576],
    ["10MB", 10_485_760],
    ["10MiB", 10_485_760],
    ["10mb", 10_485_760],
    ["1GB", 1_073_741_824],
    ["1GiB", 1_073_741_824],
    [2048, 2048],
    [0, 0],
  ])("reads %j as %d bytes", (input, bytes) => {
    expect(parseSize(input)).toEqual({ ok: true, value: bytes });
  });

  it.each<[string | number]>([
    ["1TB"],
    ["ten MB"],
    ["-5MB"],
    ["MB"],
    [""],
    [-1],
    [1.5],
    [Number.POSITIVE_INFINITY],
  ])("refuses %j with a message", (input) => {
    expectRefused(parseSize(input));
  });

  // BUG: 400 digits read as Number() give Infinity, which is returned as a size; the
  // canonical config then holds null where the size was.
  it("refuses a size too large to be a finite number", () => {
    expectRefused(parseSize(`1${"0".repeat(400)}`));
  });
});

describe("parsePercent", () => {
  it.each<[string | number, number]>([
    [10, 10],
    ["10%", 10],
    ["10 %", 10],
    ["10", 10],
    ["12.5%", 12.5],
    [0.5, 0.5],
    [0, 0],
    [100, 100],
    ["100%", 100],
  ])("reads %j as %d percent", (input, percent) => {
    expect(parsePercent(input)).toEqual({ ok: true, value: percent });
  });

  it.each<[string | number]>([[101], [-1], ["150%"], ["-5%"], ["ten"], ["%"], [""], [Number.NaN]])(
    "refuses %j with a message",
    (input) => {
      expectRefused(parsePercent(input));
    },
  );
});

describe("parseRatio", () => {
  it.each<[string | number, number]>([
    [0.01, 0.01],
    [0, 0],
    [1, 1],
    ["1%", 0.01],
    ["0.5%", 0.005],
    ["100%", 1],
  ])("reads %j as the fraction %d", (input, fraction) => {
    expect(parseRatio(input)).toEqual({ ok: true, value: fraction });
  });

  it.each<[string | number]>([[1.5], [-0.1], ["150%"], ["abc"], [""], [Number.NaN]])(
    "refuses %j with a message",
    (input) => {
      expectRefused(parseRatio(input));
    },
  );

  // BUG: a numeric string without "%" is read as a percentage, so "0.01" (a quoted YAML
  // value, or a JSON string) becomes 0.0001, while the number 0.01 is 0.01; and "50" is
  // accepted as 0.5 while the number 50 is refused. The doc and the error message both say
  // a ratio is "a fraction such as 0.01, or a percentage such as "1%"".
  it('reads the numeric string "0.01" as the fraction 0.01, as it reads the number', () => {
    expect(parseRatio("0.01")).toEqual({ ok: true, value: 0.01 });
  });

  it('refuses the numeric string "50" as it refuses the number 50', () => {
    expectRefused(parseRatio("50"));
  });
});

describe("parseBurnRate", () => {
  it.each<[string | number, number]>([
    ["10x", 10],
    ["10X", 10],
    ["2.5x", 2.5],
    ["1x", 1],
    ["10", 10],
    [10, 10],
    [0.5, 0.5],
  ])("reads %j as a burn rate of %d", (input, rate) => {
    expect(parseBurnRate(input)).toEqual({ ok: true, value: rate });
  });

  it.each<[string | number]>([["0x"], [0], [-1], ["x"], ["ten x"], ["10xx"], ["-2x"], [""], [Number.NaN]])(
    "refuses %j with a message",
    (input) => {
      expectRefused(parseBurnRate(input));
    },
  );

  // BUG: Infinity is "a positive multiple" by the check `value > 0`; 400 digits followed by
  // "x" reach it from config text, and the canonical config then holds null.
  it.each<[string | number]>([[`1${"0".repeat(400)}x`], [Number.POSITIVE_INFINITY]])(
    "refuses the infinite burn rate %s",
    (input) => {
      expectRefused(parseBurnRate(input));
    },
  );
});

describe("parseStatusRange", () => {
  it.each<[string | number | StatusRange, StatusRange]>([
    [200, { min: 200, max: 200 }],
    ["200", { min: 200, max: 200 }],
    ["200-399", { min: 200, max: 399 }],
    ["200 - 399", { min: 200, max: 399 }],
    ["5xx", { min: 500, max: 599 }],
    ["2XX", { min: 200, max: 299 }],
    [
      { min: 200, max: 204 },
      { min: 200, max: 204 },
    ],
    [100, { min: 100, max: 100 }],
    ["100-599", { min: 100, max: 599 }],
  ])("reads %j as %j", (input, range) => {
    expect(parseStatusRange(input)).toEqual({ ok: true, value: range });
  });

  it.each<[string | number | StatusRange]>([
    [600],
    ["600"],
    [99],
    ["399-200"],
    ["200-600"],
    ["6xx"],
    ["200-"],
    ["ok"],
    [""],
    [200.5],
    [{ min: 300, max: 200 }],
    [{ min: 0, max: 200 }],
  ])("refuses %j with a message", (input) => {
    expectRefused(parseStatusRange(input));
  });

  it("says which end is wrong in a reversed range", () => {
    const result = parseStatusRange("399-200");
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.message).toMatch(/399 > 200/);
  });
});
