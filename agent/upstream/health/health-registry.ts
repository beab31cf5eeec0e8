/**
 * Pool health by pool id, kept across snapshot swaps: binding a snapshot asks `healthFor`
 * each of its pools (an existing pool keeps its endpoints' state and takes the new settings),
 * then `retain` drops the pools the snapshot no longer has and stops their checks.
 */
import { PoolHealth, type PoolHealthOptions, type ProbeFor } from "./pool-health.js";
import type { HealthSettings } from "./settings.js";

export class HealthRegistry {
  readonly #pools = new Map<string, PoolHealth>();

  /** `options` apply to every pool: the clock, the schedules' randomness, the change listener. */
  constructor(private readonly options: PoolHealthOptions = {}) {}

  healthFor(
    poolId: string,
    addresses: readonly string[],
    settings: HealthSettings,
    probeFor: ProbeFor,
  ): PoolHealth {
    const existing = this.#pools.get(poolId);
    if (existing) {
      existing.update(addresses, settings, probeFor);
      return existing;
    }
    const created = new PoolHealth(poolId, addresses, settings, probeFor, this.options);
    this.#pools.set(poolId, created);
    return created;
  }

  get(poolId: string): PoolHealth | undefined {
    return this.#pools.get(poolId);
  }

  /** Keeps exactly these pools; the others' checks stop. */
  retain(poolIds: Iterable<string>): void {
    const keep = new Set(poolIds);
    for (const [id, pool] of this.#pools) {
      if (keep.has(id)) continue;
      pool.close();
      this.#pools.delete(id);
    }
  }

  list(): PoolHealth[] {
    return [...this.#pools.values()];
  }

  /** Stops every pool's checks. Idempotent. */
  close(): void {
    for (const pool of this.#pools.values()) pool.close();
    this.#pools.clear();
  }
}
