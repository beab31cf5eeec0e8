/**
 * One route's cache: entries by key and Vary variant, bounded by `max_size` bytes with
 * least-recently-used eviction, plus the route's coalescer. Kept across snapshot swaps in the
 * CacheRegistry.
 *
 * How the integrator uses it, per request of a cached route:
 * 1. `lookup(request)`: "bypass" (with `invalidate` for unsafe methods: call `invalidate`
 *    once the answer's status is known), "hit" (serve `entry` with `servedHeaders`; no body
 *    for HEAD), or "miss" with the key.
 * 2. On a miss with `policy.coalesce`, `coalescer.join(key)`: a follower awaits `wait`, then
 *    looks up again on "stored" and goes upstream on "go_upstream" or a second miss.
 * 3. Going upstream, `capture(request, key, leaderTicket)` and feed it the answer.
 *
 * A full store evicts; a broken one answers "bypass" and stores nothing: no method throws
 * (spec: "cache unavailable → bypass cache, serve from upstream"); `failures` counts those.
 * Expired entries go when a lookup finds them or when evicted, whichever comes first.
 */
import type { StoredHeaders } from "./cache-headers.js";
import { primaryKey, urlKey, varyValues } from "./cache-key.js";
import type { CachePolicy } from "./cache-policy.js";
import { type CacheRequest, invalidatesAfter, type LookupDecision, lookupDecision } from "./cache-request.js";
import type { CachedResponse } from "./cached-response.js";
import { Capture, type CaptureSink } from "./capture.js";
import { Coalescer, type LeaderTicket } from "./coalescer.js";
import type { Storable } from "./store-decision.js";

/** `result` is what `proxy_cache_requests_total{result}` counts. */
export type CacheLookup =
  | { readonly result: "bypass"; readonly invalidate: boolean }
  | { readonly result: "miss"; readonly key: string }
  | { readonly result: "hit"; readonly entry: CachedResponse };

const BYPASS: CacheLookup = Object.freeze({ result: "bypass", invalidate: false });
const INVALIDATE: CacheLookup = Object.freeze({ result: "bypass", invalidate: true });

/** Variants kept per key; one more replaces the oldest, so a Vary on a wild header stays cheap. */
export const MAX_VARIANTS = 32;

class Entry implements CachedResponse {
  /** Neighbours in recency order. */
  older: Entry | undefined;
  newer: Entry | undefined;

  constructor(
    readonly key: string,
    readonly url: string,
    readonly varyValues: string,
    readonly status: number,
    readonly headers: StoredHeaders,
    readonly body: readonly Buffer[],
    readonly size: number,
    readonly storedAt: number,
    readonly expiresAt: number,
    readonly initialAgeMs: number,
    readonly shareable: boolean,
  ) {}
}

/** A key's entries; all vary on the same names, those of the latest response stored. */
interface Variants {
  readonly names: readonly string[];
  readonly entries: Entry[];
}

export class CacheStore implements CaptureSink {
  readonly coalescer: Coalescer;
  readonly #now: () => number;
  #policy: CachePolicy;
  readonly #variants = new Map<string, Variants>();
  /** Keys with a credential part, by URL key: an unsafe request drops them with the URL's own. */
  readonly #credentialed = new Map<string, Set<string>>();
  #oldest: Entry | undefined;
  #newest: Entry | undefined;
  #bytes = 0;
  #count = 0;
  #failures = 0;

  constructor(policy: CachePolicy, now: () => number = Date.now) {
    this.#policy = policy;
    this.#now = now;
    this.coalescer = new Coalescer(policy.coalesceTimeoutMs, now);
  }

  get policy(): CachePolicy {
    return this.#policy;
  }

  /** Bytes held, bodies and headers. */
  get bytes(): number {
    return this.#bytes;
  }

  get entries(): number {
    return this.#count;
  }

  /** Failures of the cache's own code, each answered as a bypass. */
  get failures(): number {
    return this.#failures;
  }

  /**
   * A new snapshot's policy for the route. Entries stay unless the key's shape changed
   * (`vary_headers`, `auth_aware`): entries made under the old shape could answer requests the
   * new one tells apart. A smaller `max_size` evicts at once; a changed `ttl` applies to
   * entries stored from now on.
   */
  update(policy: CachePolicy): void {
    const before = this.#policy;
    this.#policy = policy;
    if (before.authAware !== policy.authAware || before.varyHeaders.join() !== policy.varyHeaders.join()) {
      this.clear();
    }
    this.#evictTo(policy.maxSize);
    this.coalescer.timeoutMs = policy.coalesceTimeoutMs;
    if (!policy.coalesce) this.coalescer.releaseAll();
  }

  /** Called once per request of the route, before forwarding. */
  lookup(request: CacheRequest): CacheLookup {
    try {
      const decision = lookupDecision(request);
      if (decision.action === "bypass") return BYPASS;
      if (decision.action === "invalidate") return INVALIDATE;
      const key = primaryKey(this.#policy, request);
      const entry = decision.action === "lookup" ? this.#find(key, request, decision) : undefined;
      return entry === undefined ? { result: "miss", key } : { result: "hit", entry };
    } catch {
      this.#failures++;
      return BYPASS;
    }
  }

  /** For a miss going upstream; `leader` hears the outcome when this request leads a coalesced flight. */
  capture(request: CacheRequest, key: string, leader?: LeaderTicket): Capture {
    return new Capture(this, key, request, this.#now, leader);
  }

  /** After an unsafe request (lookup said `invalidate`), with its answer's status (undefined: none). */
  invalidate(request: CacheRequest, status: number | undefined): void {
    if (!invalidatesAfter(status)) return;
    try {
      const url = urlKey(request);
      this.#drop(url);
      const keys = this.#credentialed.get(url);
      if (keys !== undefined) for (const key of [...keys]) this.#drop(key);
    } catch {
      // Keeping an entry the origin just changed would be wrong: forget everything instead.
      this.#failures++;
      this.clear();
    }
  }

  /** Stores a captured answer (called by Capture); false when refused. */
  put(
    key: string,
    request: CacheRequest,
    decision: Storable,
    status: number,
    headers: StoredHeaders,
    body: readonly Buffer[],
    size: number,
  ): boolean {
    const policy = this.#policy;
    if (size > policy.maxEntrySize || decision.expiresAt <= this.#now()) return false;
    try {
      let variants = this.#variants.get(key);
      if (variants !== undefined && variants.names.join() !== decision.varyNames.join()) {
        // The resource varies on other headers now: the old variants were chosen by the old ones.
        this.#drop(key);
        variants = undefined;
      }
      const values = varyValues(decision.varyNames, request.headers);
      if (variants === undefined) {
        variants = { names: decision.varyNames, entries: [] };
        this.#variants.set(key, variants);
      } else {
        const same = variants.entries.find((e) => e.varyValues === values);
        if (same !== undefined) this.#remove(same);
        if (variants.entries.length >= MAX_VARIANTS) this.#remove(variants.entries[0]!);
        // Removing the last variant dropped the key's record.
        if (!this.#variants.has(key)) this.#variants.set(key, variants);
      }
      const url = urlKey(request);
      const entry = new Entry(
        key,
        url,
        values,
        status,
        headers,
        body,
        size,
        decision.storedAt,
        decision.expiresAt,
        decision.initialAgeMs,
        decision.shareable,
      );
      variants.entries.push(entry);
      if (key !== url) this.#index(url, key);
      this.#link(entry);
      this.#bytes += size;
      this.#count++;
      this.#evictTo(policy.maxSize);
      return true;
    } catch {
      this.#failures++;
      return false;
    }
  }

  failed(): void {
    this.#failures++;
  }

  /** Drops every entry. */
  clear(): void {
    this.#variants.clear();
    this.#credentialed.clear();
    this.#oldest = this.#newest = undefined;
    this.#bytes = 0;
    this.#count = 0;
  }

  /** The route no longer has a cache: entries go, waiting followers go upstream. */
  close(): void {
    this.coalescer.releaseAll();
    this.clear();
  }

  #find(key: string, request: CacheRequest, decision: LookupDecision): Entry | undefined {
    const variants = this.#variants.get(key);
    if (variants === undefined) return undefined;
    const values = varyValues(variants.names, request.headers);
    for (const entry of variants.entries) {
      if (entry.varyValues !== values) continue;
      const now = this.#now();
      if (now >= entry.expiresAt) {
        this.#remove(entry);
        return undefined;
      }
      const age = entry.initialAgeMs + now - entry.storedAt;
      if (age > decision.maxAgeMs || entry.expiresAt - now < decision.minFreshMs) return undefined;
      // §3.5: without auth_aware, credentials share the anonymous key; only what the origin
      // declared shareable may answer them.
      if (!entry.shareable && !this.#policy.authAware && request.headers.authorization !== undefined) {
        return undefined;
      }
      this.#unlink(entry);
      this.#link(entry);
      return entry;
    }
    return undefined;
  }

  #index(url: string, key: string): void {
    let keys = this.#credentialed.get(url);
    if (keys === undefined) {
      keys = new Set();
      this.#credentialed.set(url, keys);
    }
    keys.add(key);
  }

  #drop(key: string): void {
    const variants = this.#variants.get(key);
    if (variants === undefined) return;
    for (const entry of [...variants.entries]) this.#remove(entry);
  }

  #remove(entry: Entry): void {
    this.#unlink(entry);
    this.#bytes -= entry.size;
    this.#count--;
    const variants = this.#variants.get(entry.key);
    if (variants === undefined) return;
    const at = variants.entries.indexOf(entry);
    if (at >= 0) variants.entries.splice(at, 1);
    if (variants.entries.length > 0) return;
    this.#variants.delete(entry.key);
    const keys = this.#credentialed.get(entry.url);
    if (keys?.delete(entry.key) && keys.size === 0) this.#credentialed.delete(entry.url);
  }

  #evictTo(maxSize: number): void {
    while (this.#bytes > maxSize && this.#oldest !== undefined) this.#remove(this.#oldest);
  }

  /** Makes `entry` the most recently used. */
  #link(entry: Entry): void {
    entry.older = this.#newest;
    entry.newer = undefined;
    if (this.#newest === undefined) this.#oldest = entry;
    else this.#newest.newer = entry;
    this.#newest = entry;
  }

  #unlink(entry: Entry): void {
    if (entry.older === undefined) this.#oldest = entry.newer;
    else entry.older.newer = entry.newer;
    if (entry.newer === undefined) this.#newest = entry.older;
    else entry.newer.older = entry.older;
    entry.older = entry.newer = undefined;
  }
}
