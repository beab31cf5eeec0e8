/**
 * What a request asks of the cache, before any entry is looked at (RFC 9111 §4, §5.2.1).
 *
 * - GET and HEAD may be answered from the cache; HEAD from an entry a GET stored.
 * - Other safe methods (OPTIONS, TRACE) pass by. Every other method is unsafe: it passes by
 *   and, once answered, invalidates the entries of its URL (§4.4, see `invalidatesAfter`).
 * - `Range` passes by: there is no range support, and a whole stored body is no answer to it.
 * - `If-Match`, `If-Unmodified-Since` and `If-Range` pass by: preconditions are the origin's to
 *   judge. `If-None-Match` and `If-Modified-Since` may be answered with the stored 200, which
 *   is a valid answer to them.
 * - `Cache-Control: no-store` passes by and stores nothing (§5.2.1.5).
 * - `no-cache` or `max-age=0` (and `Pragma: no-cache` when there is no Cache-Control, §5.4)
 *   revalidate: the cache answers nothing and the upstream's answer may be stored.
 * - `max-age=N` and `min-fresh=N` limit which entry may answer; `max-stale` is ignored, since
 *   nothing stale is ever served, and `only-if-cached` too: such a request is forwarded.
 */
import { parseCacheControl } from "./cache-control.js";

export type HeaderValue = string | string[] | undefined;
export type RequestHeaders = Readonly<Record<string, HeaderValue>>;

/** The parts of a client request the cache reads; Node's request headers fit `headers`. */
export interface CacheRequest {
  readonly method: string;
  /** The host as routed (lowercase, as the router matched it). */
  readonly host: string;
  /** Path and query as forwarded upstream. */
  readonly path: string;
  readonly headers: RequestHeaders;
}

/**
 * - `lookup`: may be answered by a fresh entry; on a miss the upstream's answer may be stored.
 * - `revalidate`: goes upstream (a miss); the answer may be stored.
 * - `bypass`: goes upstream; nothing is stored.
 * - `invalidate`: goes upstream; nothing is stored; the URL's entries are dropped after it.
 */
export type LookupAction = "lookup" | "revalidate" | "bypass" | "invalidate";

export interface LookupDecision {
  readonly action: LookupAction;
  /** The request's max-age in ms: an older entry may not answer it. */
  readonly maxAgeMs: number;
  /** The request's min-fresh in ms: an entry fresh for less may not answer it. */
  readonly minFreshMs: number;
}

const decision = (action: LookupAction): LookupDecision =>
  Object.freeze({ action, maxAgeMs: Number.POSITIVE_INFINITY, minFreshMs: 0 });
const LOOKUP = decision("lookup");
const REVALIDATE = decision("revalidate");
const BYPASS = decision("bypass");
const INVALIDATE = decision("invalidate");

/** Called once per request of a cached route; allocates only for max-age/min-fresh requests. */
export function lookupDecision(request: CacheRequest): LookupDecision {
  const method = request.method;
  if (method !== "GET" && method !== "HEAD") {
    return method === "OPTIONS" || method === "TRACE" ? BYPASS : INVALIDATE;
  }
  const headers = request.headers;
  if (
    headers.range !== undefined ||
    headers["if-match"] !== undefined ||
    headers["if-unmodified-since"] !== undefined ||
    headers["if-range"] !== undefined
  ) {
    return BYPASS;
  }
  const cacheControl = headers["cache-control"];
  if (cacheControl === undefined) return saysNoCache(headers.pragma) ? REVALIDATE : LOOKUP;
  const directives = parseCacheControl(cacheControl);
  if (directives.noStore) return BYPASS;
  if (directives.noCache || directives.maxAge === 0) return REVALIDATE;
  if (directives.maxAge === undefined && directives.minFresh === undefined) return LOOKUP;
  return {
    action: "lookup",
    maxAgeMs: directives.maxAge === undefined ? Number.POSITIVE_INFINITY : directives.maxAge * 1000,
    minFreshMs: (directives.minFresh ?? 0) * 1000,
  };
}

function saysNoCache(pragma: HeaderValue): boolean {
  if (pragma === undefined) return false;
  const text = typeof pragma === "string" ? pragma : pragma.join(",");
  return text.toLowerCase().includes("no-cache");
}

/**
 * Whether an unsafe request's outcome drops its URL's entries. §4.4 requires it after a 2xx
 * or 3xx; a 5xx or no answer at all (`undefined`) drops them too, since the change may have
 * happened all the same and dropping an entry is never wrong. Only a 4xx, a request the
 * origin refused, leaves them.
 */
export function invalidatesAfter(status: number | undefined): boolean {
  return status === undefined || status < 400 || status >= 500;
}
