/**
 * Parsers for the value notations of the config: durations, sizes, percentages, ratios,
 * status ranges and burn rates. Each returns a result instead of throwing, so the schema can
 * report the message at the field's path. Canonical units: milliseconds, bytes, percent
 * points (0–100), fractions (0–1).
 */

import type { ConfigErrorCode } from "./errors.js";

/** A parsed value, or why not; `code` when the failure is more specific than invalid_value. */
export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string; code?: ConfigErrorCode };

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const fail = (message: string): Parsed<never> => ({ ok: false, message });
const TOO_LARGE = "is too large";

const DURATION_UNITS_MS: Record<string, number> = {
  us: 0.001,
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
};
const DURATION_PART = /(\d+(?:\.\d+)?)(us|ms|s|m|h)/y;

/**
 * "500ms", "5s", "1.5s", "1m30s", "2h" or a number of milliseconds → milliseconds. Fractions
 * of a millisecond round up, so "500us" never silently becomes 0; the sum is first rounded
 * to microseconds, so float noise ("4.03s" = 4030.0000000000005 ms) does not add one.
 */
export function parseDuration(input: string | number): Parsed<number> {
  if (typeof input === "number") {
    return Number.isFinite(input) && input >= 0
      ? wholeMs(input)
      : fail("a duration must be a non-negative number of milliseconds");
  }
  const text = input.trim();
  if (text === "0") return ok(0);
  let total = 0;
  DURATION_PART.lastIndex = 0;
  while (DURATION_PART.lastIndex < text.length) {
    const start = DURATION_PART.lastIndex;
    const match = DURATION_PART.exec(text);
    if (!match || match.index !== start) {
      return fail(
        `invalid duration "${input}": use a number with a unit (us, ms, s, m, h), e.g. 500ms or 1m30s`,
      );
    }
    total += Number(match[1]) * (DURATION_UNITS_MS[match[2] as string] as number);
  }
  if (text.length === 0) return fail("a duration must not be empty");
  return wholeMs(total);
}

function wholeMs(ms: number): Parsed<number> {
  const value = Math.ceil(Math.round(ms * 1000) / 1000);
  return Number.isSafeInteger(value) ? ok(value) : fail(`a duration ${TOO_LARGE}`);
}

const SIZE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1024,
  kib: 1024,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
};
const SIZE = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i;

/** "512KB", "1MB", "10MiB" or a number of bytes → bytes. KB/MB/GB are binary (1024), as in nginx. */
export function parseSize(input: string | number): Parsed<number> {
  if (typeof input === "number") {
    return Number.isInteger(input) && input >= 0 ? ok(input) : fail("a size must be a whole number of bytes");
  }
  const match = SIZE.exec(input.trim());
  const unit = match ? SIZE_UNITS[(match[2] || "b").toLowerCase()] : undefined;
  if (!match || unit === undefined) {
    return fail(`invalid size "${input}": use a number with a unit (B, KB, MB, GB), e.g. 512KB or 1MB`);
  }
  const bytes = Math.round(Number(match[1]) * unit);
  return Number.isSafeInteger(bytes) ? ok(bytes) : fail(`a size ${TOO_LARGE}`);
}

/** 10 or "10%" → 10 (percent points, 0–100). */
export function parsePercent(input: string | number): Parsed<number> {
  const value = typeof input === "number" ? input : percentText(input);
  if (value === undefined)
    return fail(`invalid percentage "${input}": use a number from 0 to 100, e.g. 10 or "10%"`);
  if (!(value >= 0 && value <= 100)) return fail(`a percentage must be between 0 and 100, got ${value}`);
  return ok(value);
}

/** 0.01, "0.01" or "1%" → 0.01 (a fraction, 0–1). */
export function parseRatio(input: string | number): Parsed<number> {
  let value: number | undefined;
  if (typeof input === "number") value = input;
  else {
    const text = input.trim();
    value = text.endsWith("%") ? mapDefined(numberText(text.slice(0, -1)), (p) => p / 100) : numberText(text);
  }
  if (value === undefined)
    return fail(`invalid ratio "${input}": use a fraction such as 0.01, or a percentage such as "1%"`);
  if (!(value >= 0 && value <= 1)) return fail(`a ratio must be between 0 and 1, got ${value}`);
  return ok(value);
}

/** "10x" or 10 → 10: how many times faster than sustainable the error budget burns. */
export function parseBurnRate(input: string | number): Parsed<number> {
  const value = typeof input === "number" ? input : numberText(input.trim().replace(/x$/i, ""));
  if (value === undefined || !(value > 0) || !Number.isFinite(value)) {
    return fail(`invalid burn rate "${input}": use a positive multiple such as 10x`);
  }
  return ok(value);
}

export interface StatusRange {
  readonly min: number;
  readonly max: number;
}

const STATUS_RANGE = /^([1-5]\d\d)\s*-\s*([1-5]\d\d)$/;
const STATUS_CLASS = /^([1-5])xx$/i;

/** 200, "200", "200-399", "5xx" or {min, max} → {min, max}, inclusive, within 100–599. */
export function parseStatusRange(input: string | number | StatusRange): Parsed<StatusRange> {
  let range: StatusRange | undefined;
  if (typeof input === "number") range = { min: input, max: input };
  else if (typeof input === "object") range = input;
  else {
    const text = input.trim();
    const single = /^[1-5]\d\d$/.test(text) ? Number(text) : undefined;
    const span = STATUS_RANGE.exec(text);
    const klass = STATUS_CLASS.exec(text);
    if (single !== undefined) range = { min: single, max: single };
    else if (span) range = { min: Number(span[1]), max: Number(span[2]) };
    else if (klass) range = { min: Number(klass[1]) * 100, max: Number(klass[1]) * 100 + 99 };
  }
  if (!range) return fail(`invalid status range "${String(input)}": use 200, "200-399" or "5xx"`);
  const { min, max } = range;
  if (!Number.isInteger(min) || !Number.isInteger(max) || min < 100 || max > 599) {
    return fail("status codes must be whole numbers from 100 to 599");
  }
  if (min > max) return fail(`status range starts above its end (${min} > ${max})`);
  return ok({ min, max });
}

function percentText(text: string): number | undefined {
  const trimmed = text.trim();
  return trimmed.endsWith("%") ? numberText(trimmed.slice(0, -1)) : numberText(trimmed);
}

function numberText(text: string): number | undefined {
  const trimmed = text.trim();
  if (!/^\d+(\.\d+)?$/.test(trimmed)) return undefined;
  return Number(trimmed);
}

function mapDefined<T, U>(value: T | undefined, fn: (value: T) => U): U | undefined {
  return value === undefined ? undefined : fn(value);
}
