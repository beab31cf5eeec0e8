/**
 * Whether the upstream's answer to a request may be stored, and until when (RFC 9111 §3, §4.2).
 * Called once per answer the cache could keep, when its head arrives.
 *
 * Not stored:
 * - answers to anything but GET: HEAD answers have no body to keep;
 * - requests with `Cache-Control: no-store` or `Range` (see cache-request.ts);
 * - 206 (no range support), 304 (an answer to the client's own condition) and 1xx, always;
 * - other statuses that are not heuristically cacheable (§4.2.2: 200, 203, 204, 300, 301,
 *   308, 404, 405, 410, 414, 501) unless the response states a lifetime;
 * - `no-store`; `private`, as this is a shared cache; `no-cache`, since the cache does not
 *   revalidate and an entry it may not serve unrevalidated would never be served;
 * - `Set-Cookie`: a shared cache must not hand one client's cookie to another;
 * - `Vary: *`, which no later request can match;
 * - without `auth_aware`, answers to requests with Authorization, unless the response says
 *   `public`, `s-maxage` or `must-revalidate` (§3.5) — the entry then serves everyone, as the
 *   origin allowed. Conversely a request with Authorization is answered only by such an entry
 *   (CacheStore). With `auth_aware` they are stored under their credential (cache-key.ts);
 * - answers already stale on arrival (lifetime minus `Age` ≤ 0), and answers without a stated
 *   lifetime when the route has no `ttl`.
 */
import { parseCacheControl } from "./cache-control.js";
import type { ResponseHeaders } from "./cache-headers.js";
import { varyNames } from "./cache-key.js";
import type { CachePolicy } from "./cache-policy.js";
import type { CacheRequest } from "./cache-request.js";
import { explicitLifetimeMs, initialAgeMs } from "./freshness.js";

export type NotStoredReason =
  | "method"
  | "request_no_store"
  | "range"
  | "status"
  | "no_store"
  | "private"
  | "no_cache"
  | "set_cookie"
  | "vary_star"
  | "authorization"
  | "no_lifetime"
  | "stale";

export interface NotStored {
  readonly store: false;
  readonly reason: NotStoredReason;
}

export interface Storable {
  readonly store: true;
  readonly storedAt: number;
  /** The first instant the entry is stale. */
  readonly expiresAt: number;
  /** The age the upstream reported, counted into the `Age` the entry is served with. */
  readonly initialAgeMs: number;
  readonly varyNames: readonly string[];
  /** The response says public, s-maxage or must-revalidate: it may answer Authorization (§3.5). */
  readonly shareable: boolean;
}

export type StoreDecision = NotStored | Storable;

const HEURISTIC = new Set([200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501]);

const notStored = (reason: NotStoredReason): NotStored => Object.freeze({ store: false, reason });
const NOT_STORED: Readonly<Record<NotStoredReason, NotStored>> = {
  method: notStored("method"),
  request_no_store: notStored("request_no_store"),
  range: notStored("range"),
  status: notStored("status"),
  no_store: notStored("no_store"),
  private: notStored("private"),
  no_cache: notStored("no_cache"),
  set_cookie: notStored("set_cookie"),
  vary_star: notStored("vary_star"),
  authorization: notStored("authorization"),
  no_lifetime: notStored("no_lifetime"),
  stale: notStored("stale"),
};

export function storeDecision(
  policy: CachePolicy,
  request: CacheRequest,
  status: number,
  headers: ResponseHeaders,
  now: number,
): StoreDecision {
  if (request.method !== "GET") return NOT_STORED.method;
  if (request.headers.range !== undefined) return NOT_STORED.range;
  if (parseCacheControl(request.headers["cache-control"]).noStore) return NOT_STORED.request_no_store;
  if (status < 200 || status === 206 || status === 304) return NOT_STORED.status;
  const directives = parseCacheControl(headers["cache-control"]);
  if (directives.noStore) return NOT_STORED.no_store;
  if (directives.private) return NOT_STORED.private;
  if (directives.noCache) return NOT_STORED.no_cache;
  if (headers["set-cookie"] !== undefined) return NOT_STORED.set_cookie;
  const names = varyNames(policy, headers.vary);
  if (names === "*") return NOT_STORED.vary_star;
  const shareable = directives.public || directives.mustRevalidate || directives.sMaxAge !== undefined;
  if (request.headers.authorization !== undefined && !policy.authAware && !shareable) {
    return NOT_STORED.authorization;
  }
  const lifetime = explicitLifetimeMs(directives, headers, now);
  const age = initialAgeMs(headers);
  if (lifetime === undefined) {
    if (!HEURISTIC.has(status)) return NOT_STORED.status;
    if (policy.ttlMs === undefined) return NOT_STORED.no_lifetime;
    // The route's ttl is the proxy's own lifetime, counted from arrival whatever the age.
    return {
      store: true,
      storedAt: now,
      expiresAt: now + policy.ttlMs,
      initialAgeMs: age,
      varyNames: names,
      shareable,
    };
  }
  if (lifetime <= age) return NOT_STORED.stale;
  return {
    store: true,
    storedAt: now,
    expiresAt: now + lifetime - age,
    initialAgeMs: age,
    varyNames: names,
    shareable,
  };
}
