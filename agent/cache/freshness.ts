/**
 * How long a response stays fresh and how old it already is when it arrives (RFC 9111 §4.2).
 */
import type { CacheDirectives } from "./cache-control.js";
import { type ResponseHeaders, single } from "./cache-headers.js";
import { parseHttpDate } from "./http-date.js";

const DIGITS = /^\d+$/;

/**
 * §4.2.1, for a shared cache: s-maxage, else max-age, else Expires − Date (Date absent or
 * invalid: the time it was received). An invalid Expires means already expired (0). Undefined
 * when the response states no lifetime at all.
 */
export function explicitLifetimeMs(
  directives: CacheDirectives,
  headers: ResponseHeaders,
  receivedAt: number,
): number | undefined {
  if (directives.sMaxAge !== undefined) return directives.sMaxAge * 1000;
  if (directives.maxAge !== undefined) return directives.maxAge * 1000;
  const expiresText = single(headers.expires);
  if (expiresText === undefined) return undefined;
  const expires = parseHttpDate(expiresText);
  if (expires === undefined) return 0;
  const date = parseHttpDate(single(headers.date)) ?? receivedAt;
  return Math.max(0, expires - date);
}

/**
 * The age a response has on arrival: the `Age` the upstream reports (an invalid one counts as
 * none). The apparent age from `Date` (§4.2.3) is left out on purpose: it measures the clock
 * skew between the hosts as much as any age, and would make a proxy whose upstream's clock
 * runs a minute behind store nothing with `max-age=60`.
 */
export function initialAgeMs(headers: ResponseHeaders): number {
  const age = single(headers.age)?.trim();
  return age !== undefined && DIGITS.test(age) ? Number(age) * 1000 : 0;
}

/** The `Age` (§5.1) of an entry now: whole seconds, rounded down. */
export function currentAgeSeconds(
  entry: { readonly initialAgeMs: number; readonly storedAt: number },
  now: number,
) {
  return Math.floor((entry.initialAgeMs + Math.max(0, now - entry.storedAt)) / 1000);
}
