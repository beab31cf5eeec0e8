/**
 * A route's `cache` rule compiled once per snapshot into the settings the cache reads per
 * request. A rule in the config is the opt-in: `enabled` defaults to true and only
 * `enabled: false` turns the route's cache off.
 *
 * Defaults, where the rule says nothing:
 * - `max_size` 64 MiB, per route and per worker process.
 * - `max_entry_size` the smaller of 1 MiB and an eighth of `max_size`, so one response cannot
 *   push most of the route's cache out; a configured value above `max_size` is cut to it.
 * - `ttl` none: only responses whose upstream gives a freshness lifetime (s-maxage, max-age,
 *   Expires) are stored. With `ttl`, it is the lifetime of responses that give none and whose
 *   status is heuristically cacheable; it never extends or shortens the upstream's own.
 * - `auth_aware` false, `coalesce` false, `coalesce_timeout` 5 s.
 */
import type { CacheRule } from "../../services/config/index.js";

const MIB = 1024 * 1024;
export const DEFAULT_MAX_SIZE = 64 * MIB;
export const DEFAULT_MAX_ENTRY_SIZE = MIB;
export const DEFAULT_COALESCE_TIMEOUT_MS = 5_000;

export interface CachePolicy {
  readonly route: string;
  /** Lifetime for responses that give none; undefined: such responses are not stored. */
  readonly ttlMs: number | undefined;
  /** Request headers every entry of the route varies on, lowercased, sorted, without repeats. */
  readonly varyHeaders: readonly string[];
  /** Bytes of all entries (bodies and headers) together. */
  readonly maxSize: number;
  /** Bytes of one entry; larger responses pass through unstored. */
  readonly maxEntrySize: number;
  readonly authAware: boolean;
  readonly coalesce: boolean;
  readonly coalesceTimeoutMs: number;
}

/** The route's cache policy; undefined when the rule says `enabled: false`. */
export function compileCacheRule(rule: CacheRule): CachePolicy | undefined {
  if (rule.enabled === false) return undefined;
  const maxSize = rule.max_size ?? DEFAULT_MAX_SIZE;
  const maxEntrySize =
    rule.max_entry_size === undefined
      ? Math.max(1, Math.min(DEFAULT_MAX_ENTRY_SIZE, Math.floor(maxSize / 8)))
      : Math.min(rule.max_entry_size, maxSize);
  return {
    route: rule.route,
    ttlMs: rule.ttl,
    varyHeaders: [...new Set(rule.vary_headers?.map((name) => name.toLowerCase()))].sort(),
    maxSize,
    maxEntrySize,
    authAware: rule.auth_aware ?? false,
    coalesce: rule.coalesce ?? false,
    coalesceTimeoutMs: rule.coalesce_timeout ?? DEFAULT_COALESCE_TIMEOUT_MS,
  };
}
