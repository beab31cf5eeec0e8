/**
 * Tokens already verified, so that a client reusing its JWT pays one Map lookup instead of a
 * signature verification (tens of microseconds) on every request.
 *
 * An entry is kept until the token would stop verifying (its `exp`, with the same clock skew
 * verification allows) and never longer than `maxAgeMs` after it was verified. That bound is
 * the price of the cache: a token signed with a key the issuer has since withdrawn from its key
 * set stays accepted for up to `maxAgeMs`, as one already accepted would be for its lifetime by
 * a service that verifies only at the start of a session.
 *
 * Eviction is first in, first out: hits do not reorder the map, so a hit costs no write. Every
 * entry ages out within `maxAgeMs` anyway, and a busy token evicted early is verified once more.
 */

export const TOKEN_CACHE_ENTRIES = 10_000;
export const TOKEN_CACHE_MAX_AGE_MS = 5 * 60_000;

interface Entry<T> {
  readonly value: T;
  readonly expiresAt: number;
}

export class TokenCache<T> {
  readonly #entries = new Map<string, Entry<T>>();

  constructor(
    private readonly maxEntries: number = TOKEN_CACHE_ENTRIES,
    private readonly maxAgeMs: number = TOKEN_CACHE_MAX_AGE_MS,
  ) {}

  get size(): number {
    return this.#entries.size;
  }

  /** What was stored for this token, unless it has expired by `now`. */
  get(token: string, now: number): T | undefined {
    const entry = this.#entries.get(token);
    if (entry === undefined) return undefined;
    if (entry.expiresAt > now) return entry.value;
    this.#entries.delete(token);
    return undefined;
  }

  /** Stores a token verified at `now` that verifies until `validUntil` (ms). */
  set(token: string, value: T, validUntil: number, now: number): void {
    const expiresAt = Math.min(validUntil, now + this.maxAgeMs);
    if (expiresAt <= now) return;
    if (!this.#entries.has(token) && this.#entries.size >= this.maxEntries) {
      for (const oldest of this.#entries.keys()) {
        this.#entries.delete(oldest);
        break;
      }
    }
    this.#entries.set(token, { value, expiresAt });
  }
}
