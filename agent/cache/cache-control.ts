/**
 * Cache-Control (RFC 9111 §5.2) reduced to the directives this cache acts on. Parsed only when
 * the header is present; most requests carry none and get NO_DIRECTIVES without parsing.
 *
 * Directive names are case-insensitive; arguments may be quoted. A qualified `private="…"` or
 * `no-cache="…"` counts as the unqualified directive (stricter, and always correct). An invalid
 * or negative delta-seconds reads as 0, i.e. stale (§4.2.1 encourages that); a directive given
 * twice with different values takes the smaller, the more restrictive one.
 */

export interface CacheDirectives {
  readonly noStore: boolean;
  readonly noCache: boolean;
  readonly private: boolean;
  readonly public: boolean;
  readonly mustRevalidate: boolean;
  /** Seconds; undefined when absent. */
  readonly maxAge: number | undefined;
  readonly sMaxAge: number | undefined;
  readonly minFresh: number | undefined;
}

export const NO_DIRECTIVES: CacheDirectives = Object.freeze({
  noStore: false,
  noCache: false,
  private: false,
  public: false,
  mustRevalidate: false,
  maxAge: undefined,
  sMaxAge: undefined,
  minFresh: undefined,
});

/** §1.2.2: the greatest delta-seconds a cache has to represent. */
const MAX_DELTA_SECONDS = 2_147_483_648;
const DIGITS = /^\d+$/;

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

export function parseCacheControl(value: string | readonly string[] | undefined): CacheDirectives {
  if (value === undefined) return NO_DIRECTIVES;
  const text = typeof value === "string" ? value : value.join(",");
  const directives: Mutable<CacheDirectives> = { ...NO_DIRECTIVES };
  let start = 0;
  let quoted = false;
  for (let i = 0; i <= text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 34 /* " */) quoted = !quoted;
    else if (c === 92 /* \ */ && quoted) i++;
    else if ((c === 44 /* , */ && !quoted) || i === text.length) {
      apply(directives, text.slice(start, i));
      start = i + 1;
    }
  }
  return directives;
}

function apply(directives: Mutable<CacheDirectives>, part: string): void {
  const eq = part.indexOf("=");
  const name = (eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase();
  const argument = eq < 0 ? undefined : unquote(part.slice(eq + 1).trim());
  switch (name) {
    case "no-store":
      directives.noStore = true;
      break;
    case "no-cache":
      directives.noCache = true;
      break;
    case "private":
      directives.private = true;
      break;
    case "public":
      directives.public = true;
      break;
    case "must-revalidate":
      directives.mustRevalidate = true;
      break;
    case "max-age":
      directives.maxAge = smaller(directives.maxAge, deltaSeconds(argument));
      break;
    case "s-maxage":
      directives.sMaxAge = smaller(directives.sMaxAge, deltaSeconds(argument));
      break;
    case "min-fresh":
      directives.minFresh = smaller(directives.minFresh, deltaSeconds(argument));
      break;
  }
}

function unquote(argument: string): string {
  return argument.length >= 2 && argument.startsWith('"') && argument.endsWith('"')
    ? argument.slice(1, -1).replace(/\\(.)/g, "$1")
    : argument;
}

function deltaSeconds(argument: string | undefined): number {
  if (argument === undefined || !DIGITS.test(argument)) return 0;
  return Math.min(Number(argument), MAX_DELTA_SECONDS);
}

function smaller(previous: number | undefined, next: number): number {
  return previous === undefined ? next : Math.min(previous, next);
}
