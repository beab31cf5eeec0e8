/**
 * The cache stores of a process by route id, kept across snapshot swaps: a swap that keeps a
 * route's cache rule keeps its entries (see CacheStore.update for what a changed rule drops).
 */
import type { CachePolicy } from "./cache-policy.js";
import { CacheStore } from "./cache-store.js";

/** One route's row for metrics and the admin API. */
export interface CacheStatus {
  readonly route: string;
  readonly entries: number;
  readonly bytes: number;
  /** `proxy_cache_coalesce_waiters{route}`. */
  readonly waiters: number;
}

export class CacheRegistry {
  readonly #stores = new Map<string, CacheStore>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Called when a snapshot is bound, for each route with an enabled cache rule. */
  storeFor(route: string, policy: CachePolicy): CacheStore {
    let store = this.#stores.get(route);
    if (store === undefined) {
      store = new CacheStore(policy, this.#now);
      this.#stores.set(route, store);
    } else store.update(policy);
    return store;
  }

  /** Drops the stores of routes the active snapshot does not cache; their waiters go upstream. */
  retain(routes: ReadonlySet<string>): void {
    for (const [route, store] of this.#stores) {
      if (routes.has(route)) continue;
      store.close();
      this.#stores.delete(route);
    }
  }

  list(): CacheStatus[] {
    return Array.from(this.#stores, ([route, store]) => ({
      route,
      entries: store.entries,
      bytes: store.bytes,
      waiters: store.coalescer.waiters,
    }));
  }
}
