/**
 * Per-route rate limits: a token bucket of `burst` tokens refilled at `requests_per_second`,
 * one for the route or one per key (client IP, a header's or a cookie's value).
 *
 * A bucket is kept as one number, its theoretical arrival time (GCRA, the token bucket's
 * equivalent): the time at which it would be full again. A request is allowed when, one token
 * later, that time is at most `burst` tokens' worth ahead of now; a bucket whose time has
 * passed is full and carries no state, so it can be dropped. Keyed buckets are bounded in
 * number: a new key at the bound first drops full buckets from the oldest end, and when it
 * finds none among the first few, the oldest bucket, whose key then starts afresh with a full
 * burst — leniency traded for bounded memory.
 *
 * Workers (node:cluster) share no memory, so with N workers each enforces `rate / N` and
 * `ceil(burst / N)`: the cluster's total matches the config when the kernel spreads connections
 * evenly, and one worker's client cannot use the whole route's burst.
 */
import type { InlinePolicy } from "../../services/config/index.js";

export type RateLimitConfig = NonNullable<InlinePolicy["rate_limit"]>;

export interface RateLimitSettings {
  /** This worker's share of the rate. */
  readonly requestsPerSecond: number;
  /** This worker's share of the burst, at least 1. */
  readonly burst: number;
  /** What a bucket is per: "client_ip", "header:<lower-case name>" or "cookie:NAME"; undefined: the route. */
  readonly key: string | undefined;
}

export function rateLimitSettings(config: RateLimitConfig, workers: number): RateLimitSettings {
  const burst = config.burst ?? Math.ceil(config.requests_per_second);
  return {
    requestsPerSecond: config.requests_per_second / workers,
    burst: Math.ceil(burst / workers),
    key: config.key,
  };
}

export const MAX_KEYS = 100_000;
/** Buckets looked at from the oldest end for full ones when a new key meets the bound. */
const EVICT_SCAN = 32;
/** Float slack for the comparison, far below any real interval. */
const EPSILON_MS = 1e-6;

export class RateLimiter {
  #intervalMs = 0;
  #toleranceMs = 0;
  #key: string | undefined;
  /** The route's bucket, when there is no key (or a request lacks it). */
  #routeTat = Number.NEGATIVE_INFINITY;
  readonly #tats = new Map<string, number>();

  constructor(
    settings: RateLimitSettings,
    private readonly now: () => number = Date.now,
    private readonly maxKeys: number = MAX_KEYS,
  ) {
    this.update(settings);
  }

  #settings!: RateLimitSettings;

  get settings(): RateLimitSettings {
    return this.#settings;
  }

  /** Applies a new config; buckets stay unless what they are keyed by changed. */
  update(settings: RateLimitSettings): void {
    this.#settings = settings;
    this.#intervalMs = 1000 / settings.requestsPerSecond;
    this.#toleranceMs = settings.burst * this.#intervalMs + EPSILON_MS;
    if (settings.key !== this.#key) this.#tats.clear();
    this.#key = settings.key;
  }

  /** What requests are keyed by: client_ip, header:NAME or cookie:NAME; undefined: one bucket. */
  get key(): string | undefined {
    return this.#key;
  }

  /** Keyed buckets held now. */
  get keys(): number {
    return this.#tats.size;
  }

  /**
   * Takes a token for a request with this key (undefined: the route's bucket). 0: allowed;
   * otherwise refused, and the whole seconds until a token is there, for Retry-After.
   */
  take(key: string | undefined): number {
    const now = this.now();
    if (key === undefined) {
      const wait = this.#waitMs(this.#routeTat, now);
      if (wait > 0) return toSeconds(wait);
      this.#routeTat = Math.max(this.#routeTat, now) + this.#intervalMs;
      return 0;
    }
    const tat = this.#tats.get(key);
    if (tat === undefined || tat <= now) {
      // A full bucket: (re)insert it at the young end, so the oldest end holds the keys whose
      // buckets were last full longest ago.
      if (tat !== undefined) this.#tats.delete(key);
      else if (this.#tats.size >= this.maxKeys) this.#evict(now);
      this.#tats.set(key, now + this.#intervalMs);
      return 0;
    }
    const wait = this.#waitMs(tat, now);
    if (wait > 0) return toSeconds(wait);
    this.#tats.set(key, tat + this.#intervalMs);
    return 0;
  }

  #waitMs(tat: number, now: number): number {
    return Math.max(tat, now) + this.#intervalMs - now - this.#toleranceMs;
  }

  #evict(now: number): void {
    let scanned = 0;
    let dropped = false;
    for (const [key, tat] of this.#tats) {
      if (tat <= now) {
        this.#tats.delete(key);
        dropped = true;
      }
      if (++scanned >= EVICT_SCAN) break;
    }
    if (dropped) return;
    for (const key of this.#tats.keys()) {
      this.#tats.delete(key);
      return;
    }
  }
}

function toSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

/** Rate limiters by route id; a route that stays across a swap keeps its buckets. */
export class RateLimiterRegistry {
  readonly #limiters = new Map<string, RateLimiter>();

  constructor(private readonly now: () => number = Date.now) {}

  limiterFor(route: string, settings: RateLimitSettings): RateLimiter {
    let limiter = this.#limiters.get(route);
    if (limiter) limiter.update(settings);
    else {
      limiter = new RateLimiter(settings, this.now);
      this.#limiters.set(route, limiter);
    }
    return limiter;
  }

  /** Drops the limiters of routes the active config no longer limits. */
  retain(routes: ReadonlySet<string>): void {
    for (const route of this.#limiters.keys()) if (!routes.has(route)) this.#limiters.delete(route);
  }

  list(): RateLimiterStatus[] {
    return Array.from(this.#limiters, ([route, l]) => ({
      route,
      requestsPerSecond: l.settings.requestsPerSecond,
      burst: l.settings.burst,
      keys: l.keys,
    }));
  }
}

export interface RateLimiterStatus {
  readonly route: string;
  /** This process's share (see rateLimitSettings). */
  readonly requestsPerSecond: number;
  readonly burst: number;
  readonly keys: number;
}
