/**
 * Building blocks of the config schemas: value notations (durations, sizes, …) normalized to
 * canonical units, identifiers, addresses, host patterns and checked regular expressions.
 * Each accepts its canonical output as input too, so a printed canonical config parses back
 * to itself.
 */
import safeRegex from "safe-regex2";
import { z } from "zod";
import { ConfigErrorCode } from "../errors.js";
import {
  type Parsed,
  parseBurnRate,
  parseDuration,
  parsePercent,
  parseRatio,
  parseSize,
  parseStatusRange,
} from "../units.js";

/** Objects reject unknown fields; the validator turns zod's report into "did you mean" hints. */
export const strict = z.strictObject;

function parsedWith<I, T>(input: z.ZodType<I>, parse: (value: I) => Parsed<T>) {
  return input.transform((value, ctx): T => {
    const parsed = parse(value);
    if (parsed.ok) return parsed.value;
    ctx.issues.push({ code: "custom", message: parsed.message, input: value, params: { code: parsed.code } });
    return z.NEVER;
  });
}

function within(
  label: string,
  value: number,
  min: number | undefined,
  max: number | undefined,
): Parsed<number> {
  if (min !== undefined && value < min) return { ok: false, message: `${label} must be at least ${min}` };
  if (max !== undefined && value > max) return { ok: false, message: `${label} must be at most ${max}` };
  return { ok: true, value };
}

const numberOrText = z.union([z.string(), z.number()]);

/**
 * Names a value's notation, and its bounds in canonical units, in the schema's metadata: the
 * reference docs (scripts/docs-generate.ts) read them, since a transform's type says nothing.
 */
function documented<T extends z.ZodType>(
  schema: T,
  notation: string,
  bounds: { min?: number; max?: number } = {},
): T {
  return schema.meta({ notation, ...bounds });
}

/** "5s", "500ms", "1m30s" or milliseconds → milliseconds. Bounds are in milliseconds. */
export function duration(bounds: { min?: number; max?: number } = {}) {
  const schema = parsedWith(numberOrText, (value) => {
    const parsed = parseDuration(value);
    return parsed.ok ? within("duration (ms)", parsed.value, bounds.min, bounds.max) : parsed;
  });
  return documented(schema, "duration", bounds);
}

/** "512KB", "1MB" or bytes → bytes. */
export function size(bounds: { min?: number; max?: number } = {}) {
  const schema = parsedWith(numberOrText, (value) => {
    const parsed = parseSize(value);
    return parsed.ok ? within("size (bytes)", parsed.value, bounds.min, bounds.max) : parsed;
  });
  return documented(schema, "size", bounds);
}

/** 10 or "10%" → percent points, 0–100. */
export const percent = () => documented(parsedWith(numberOrText, parsePercent), "percent");

/** 0.01 or "1%" → a fraction, 0–1. */
export const ratio = () => documented(parsedWith(numberOrText, parseRatio), "ratio");

/** "10x" or 10 → 10. */
export const burnRate = () => documented(parsedWith(numberOrText, parseBurnRate), "burn rate");

/** 200, "200-399", "5xx" or {min, max} → {min, max}. */
export const statusRange = () =>
  documented(
    parsedWith(
      z.union([z.string(), z.number(), z.strictObject({ min: z.number(), max: z.number() })]),
      parseStatusRange,
    ),
    "status range",
  );

export const positiveInt = (max?: number) => (max === undefined ? z.int().min(1) : z.int().min(1).max(max));
export const nonNegativeInt = (max?: number) =>
  max === undefined ? z.int().min(0) : z.int().min(0).max(max);

const ID = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,126}[A-Za-z0-9])?$/;

/** Ids name things across the config, in metrics labels and in diffs, so they stay plain. */
export const id = () =>
  documented(
    z.string().regex(ID, {
      error: "an id is 1–128 letters, digits, '.', '_' or '-', starting and ending with a letter or digit",
    }),
    "id",
  );

const HOST_NAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)$/;
const BRACKETED_IPV6 = /^\[[0-9A-Fa-f:.]+\]$/;

function checkHostPort(value: string, opts: { hostOptional: boolean; portZero: boolean }): Parsed<string> {
  const colon = value.lastIndexOf(":");
  const host = colon < 0 ? value : value.slice(0, colon);
  const port = colon < 0 ? "" : value.slice(colon + 1);
  const example = opts.hostOptional ? '":8080" or "0.0.0.0:8080"' : '"10.0.1.10:8000" or "api.internal:8000"';
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535 || (!opts.portZero && Number(port) === 0)) {
    return { ok: false, message: `invalid address "${value}": needs a port, e.g. ${example}` };
  }
  const hostOk =
    (host === "" && opts.hostOptional) ||
    IPV4.test(host) ||
    BRACKETED_IPV6.test(host) ||
    HOST_NAME.test(host);
  return hostOk
    ? { ok: true, value }
    : { ok: false, message: `invalid host in address "${value}", e.g. ${example}` };
}

/** An upstream endpoint: "host:port" (IPv6 in brackets). */
export const endpointAddress = () =>
  documented(
    parsedWith(z.string(), (value) => checkHostPort(value, { hostOptional: false, portZero: false })),
    "host:port",
  );

/** A listen address: ":8080", "127.0.0.1:8080", "[::]:8443"; port 0 picks a free port. */
export const listenAddress = () =>
  documented(
    parsedWith(z.string(), (value) => checkHostPort(value, { hostOptional: true, portZero: true })),
    "listen address",
  );

const MAX_REGEX_LENGTH = 1024;

/**
 * Patterns are compiled once per snapshot and run on every request, so a pattern that can
 * backtrack catastrophically (nested quantifiers, star height > 1) is refused. The check is
 * safe-regex2's static analysis: fast enough for thousands of routes, and a known
 * approximation (it misses some overlapping alternations).
 */
export function checkRegex(pattern: string): Parsed<string> {
  const code = ConfigErrorCode.UnsafeRegex;
  if (pattern.length > MAX_REGEX_LENGTH) {
    return { ok: false, code, message: `regular expression longer than ${MAX_REGEX_LENGTH} characters` };
  }
  try {
    new RegExp(pattern);
  } catch (err) {
    return { ok: false, code, message: `invalid regular expression: ${(err as Error).message}` };
  }
  if (!safeRegex(pattern)) {
    return {
      ok: false,
      code,
      message: `regular expression "${pattern}" can backtrack catastrophically (nested quantifiers); rewrite it without a repeated group that itself repeats`,
    };
  }
  return { ok: true, value: pattern };
}

export const regex = () => documented(parsedWith(z.string(), checkRegex), "regex");

const REGEX_SYNTAX = /[\\^$()[\]{}|+?]|\.\*/;

/**
 * How a host pattern is read: a regex when it contains regex syntax (the spec's
 * `".*\\.example\\.com"`), a wildcard when it starts with `*.`, otherwise an exact name.
 * Exact and wildcard hosts are case-insensitive, so they are stored lowercased.
 */
export function hostPatternKind(pattern: string): "regex" | "wildcard" | "exact" | "any" {
  if (pattern === "*") return "any";
  // A bracketed IPv6 address ("[::1]") is a host, not a character class.
  if (BRACKETED_IPV6.test(pattern.replace(/:\d{1,5}$/, ""))) return "exact";
  if (REGEX_SYNTAX.test(pattern)) return "regex";
  return pattern.startsWith("*.") ? "wildcard" : "exact";
}

export const hostPattern = () =>
  documented(
    parsedWith(z.string(), (value): Parsed<string> => {
      const kind = hostPatternKind(value);
      if (kind === "regex") return checkRegex(value);
      if (kind === "any") return { ok: true, value };
      const name = kind === "wildcard" ? value.slice(2) : value;
      const bare = name.replace(/:\d{1,5}$/, "");
      if (!HOST_NAME.test(bare) && !IPV4.test(bare) && !BRACKETED_IPV6.test(bare)) {
        return {
          ok: false,
          message: `invalid host "${value}": use a name (api.example.com), a wildcard (*.example.com) or an anchored regex`,
        };
      }
      return { ok: true, value: value.toLowerCase() };
    }),
    "host pattern",
  );

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** An HTTP field name; case-insensitive, so stored lowercased. */
export const headerName = () =>
  documented(
    z
      .string()
      .regex(HEADER_NAME, { error: "not a valid HTTP header name" })
      .transform((name) => name.toLowerCase()),
    "header name",
  );

/**
 * A map keyed by header name. Keys are lowercased; two keys differing only in case are one
 * header written twice, which is reported rather than silently merged.
 */
export function headerMap<T extends z.ZodType>(value: T) {
  return z.record(z.string(), value).transform((map, ctx) => {
    const out = new Map<string, z.output<T>>();
    for (const [name, entry] of Object.entries(map)) {
      if (!HEADER_NAME.test(name)) {
        ctx.issues.push({
          code: "custom",
          message: `"${name}" is not a valid HTTP header name`,
          path: [name],
          input: name,
        });
        continue;
      }
      const lower = name.toLowerCase();
      if (out.has(lower)) {
        ctx.issues.push({
          code: "custom",
          message: `header "${name}" is given twice (header names are case-insensitive)`,
          path: [name],
          input: name,
        });
      }
      out.set(lower, entry as z.output<T>);
    }
    return Object.fromEntries(out);
  });
}

/** What a request is keyed by (rate limits, consistent hashing, cohorts). */
export const requestKey = () =>
  documented(
    parsedWith(z.string(), (value): Parsed<string> => {
      if (value === "client_ip") return { ok: true, value };
      const match = /^(header|cookie):(.+)$/.exec(value);
      if (match && HEADER_NAME.test(match[2] as string)) {
        return {
          ok: true,
          value: match[1] === "header" ? `header:${(match[2] as string).toLowerCase()}` : value,
        };
      }
      return { ok: false, message: `invalid key "${value}": use client_ip, header:NAME or cookie:NAME` };
    }),
    "request key",
  );

export const HTTP_METHODS = [
  "GET",
  "HEAD",
  "POST",
  "PUT",
  "DELETE",
  "PATCH",
  "OPTIONS",
  "CONNECT",
  "TRACE",
] as const;

/** Methods are case-insensitive in config, stored uppercase, sorted and without repeats. */
export const methodList = () =>
  z
    .array(
      z
        .string()
        .transform((m) => m.toUpperCase())
        .pipe(z.enum(HTTP_METHODS, { error: `a method is one of ${HTTP_METHODS.join(", ")}` })),
    )
    .min(1)
    .transform((methods) => [...new Set(methods)].sort())
    .meta({ notation: "HTTP methods" });

export const urlString = () =>
  documented(z.url({ protocol: /^https?$/, error: "must be an http(s) URL" }), "URL");
/**
 * A route's path or prefix: what the router compares normalized request paths with, so it
 * must be able to match one. The router normalizes the rest (dot segments, repeated slashes).
 */
export const routePath = () =>
  z
    .string()
    .startsWith("/", { error: 'a path starts with "/"' })
    .refine((path) => !/[?#\\]|%00/i.test(path), {
      error: "a path cannot contain ?, #, \\ or %00: requests with them never reach a route",
    })
    .meta({ notation: "path" });

export const filePath = () =>
  documented(z.string().min(1, { error: "a file path must not be empty" }), "file path");
