/**
 * The long-lived side of upstream pools: connection pools per endpoint and the balancer of
 * each pool, kept across snapshot swaps by stable key. A snapshot holds references to them;
 * it never owns them.
 *
 * A swap goes in two steps: `prepare` gives the runtimes a new config needs, reusing every
 * one whose settings did not change (so connections and balancer positions survive), then
 * `retain` retires the ones the active snapshot no longer uses. Retiring closes a connection
 * pool gracefully: requests already in flight on it finish first.
 */
import { readFileSync } from "node:fs";
import { type Dispatcher, H2CClient, Pool } from "undici";
import type { Pool as PoolConfig } from "../../services/config/index.js";
import type { AgentMetrics, EndpointMetrics } from "../observability/metrics.js";
import { type BreakerRegistry, breakerSettings, type CircuitBreaker } from "../resilience/circuit-breaker.js";
import { type Balancer, createBalancer } from "./balancers/balancer.js";
import type { HealthRegistry } from "./health/health-registry.js";
import { httpProbe } from "./health/http-probe.js";
import type { PoolHealth } from "./health/pool-health.js";
import { healthSettings } from "./health/settings.js";

const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
const DEFAULT_IDLE_TIMEOUT_MS = 60_000;
const H2_STREAMS_PER_CONNECTION = 100;

export class EndpointRuntime {
  /** Requests in flight now; least_request balances on it. */
  active = 0;

  constructor(
    readonly key: string,
    readonly address: string,
    readonly origin: string,
    readonly dispatcher: Dispatcher,
    readonly metrics: EndpointMetrics,
  ) {}
}

export class PoolRuntime {
  readonly balancer: Balancer;

  constructor(
    readonly id: string,
    readonly spec: string,
    readonly config: PoolConfig,
    readonly endpoints: readonly EndpointRuntime[],
    readonly health: PoolHealth,
    /** The pool's circuit breaker; undefined when the pool configures none. */
    readonly breaker: CircuitBreaker | undefined,
  ) {
    this.balancer = createBalancer(
      config.balancer ?? "round_robin",
      config.endpoints.map((e) => ({ address: e.address, weight: e.weight ?? 1 })),
      {
        isAvailable: (index) => health.isAvailable(index),
        activeRequests: (index) => endpoints[index]?.active ?? 0,
      },
    );
  }

  /** An attempt's outcome, for passive health and outlier detection. */
  reportOutcome(index: number, success: boolean): void {
    this.health.report(index, success);
  }

  /** An endpoint for the fail-open trickle when none is available; -1 for none. */
  trickle(): number {
    return this.health.trickle();
  }

  /**
   * Requests waiting for a connection across the pool's endpoints (max_pending_requests): those
   * in flight beyond what the endpoint's connections can carry. Without a connection limit
   * nothing waits. Worked out from our own counts: undici's stats build objects on every read.
   */
  pending(): number {
    const connections = this.config.connection_pool?.max_connections;
    if (connections === undefined) return 0;
    const capacity = connections * (this.config.protocol === "h2" ? H2_STREAMS_PER_CONNECTION : 1);
    let total = 0;
    for (const endpoint of this.endpoints)
      if (endpoint.active > capacity) total += endpoint.active - capacity;
    return total;
  }
}

/** The registries a pool's runtime takes its long-lived state from. */
export interface PoolStateRegistries {
  readonly metrics: AgentMetrics;
  readonly health: HealthRegistry;
  readonly breakers: BreakerRegistry;
}

export class UpstreamRegistry {
  readonly #pools = new Map<string, PoolRuntime>();
  readonly #endpoints = new Map<string, EndpointRuntime>();

  constructor(private readonly registries: PoolStateRegistries) {}

  /**
   * The runtimes for `pools`: existing ones where nothing changed, new ones otherwise. Health
   * and breaker state come from their registries by pool id, so they outlive a changed pool.
   */
  prepare(pools: readonly PoolConfig[]): Map<string, PoolRuntime> {
    const out = new Map<string, PoolRuntime>();
    for (const pool of pools) {
      const spec = JSON.stringify(pool);
      let runtime = this.#pools.get(pool.id);
      if (!runtime || runtime.spec !== spec) {
        const endpoints = pool.endpoints.map((endpoint) => this.#endpoint(pool, endpoint.address));
        const settings = healthSettings(pool);
        const path = settings.active?.path;
        const health = this.registries.health.healthFor(
          pool.id,
          endpoints.map((e) => e.address),
          settings,
          (index) => {
            const endpoint = endpoints[index];
            return endpoint && path !== undefined
              ? httpProbe(endpoint.dispatcher, endpoint.origin, path)
              : undefined;
          },
        );
        const breaker = pool.circuit_breaker
          ? this.registries.breakers.breakerFor(`pool:${pool.id}`, breakerSettings(pool.circuit_breaker))
          : undefined;
        runtime = new PoolRuntime(pool.id, spec, pool, endpoints, health, breaker);
      }
      out.set(pool.id, runtime);
    }
    return out;
  }

  /**
   * Makes `active` the set in use and retires everything else, once in-flight requests on
   * it are done. Returns when the retired connection pools are closed.
   */
  async retain(active: ReadonlyMap<string, PoolRuntime>): Promise<void> {
    this.#pools.clear();
    const used = new Set<string>();
    for (const [id, runtime] of active) {
      this.#pools.set(id, runtime);
      for (const endpoint of runtime.endpoints) used.add(endpoint.key);
    }
    const retired: EndpointRuntime[] = [];
    for (const [key, endpoint] of this.#endpoints) {
      if (!used.has(key)) {
        this.#endpoints.delete(key);
        retired.push(endpoint);
      }
    }
    await Promise.allSettled(retired.map((endpoint) => endpoint.dispatcher.close()));
  }

  /** Closes every connection pool: at once with `force`, else after in-flight requests. */
  async close(force = false): Promise<void> {
    const all = [...this.#endpoints.values()];
    this.#endpoints.clear();
    this.#pools.clear();
    await Promise.allSettled(all.map((e) => (force ? e.dispatcher.destroy() : e.dispatcher.close())));
  }

  #endpoint(pool: PoolConfig, address: string): EndpointRuntime {
    const settings = {
      protocol: pool.protocol,
      tls: pool.tls,
      connection_pool: pool.connection_pool,
    };
    // Connections belong to (pool, endpoint, connection settings): a weight or balancer change
    // keeps them, a TLS or protocol change replaces them.
    const key = `${pool.id}\u0000${address}\u0000${JSON.stringify(settings)}`;
    let endpoint = this.#endpoints.get(key);
    if (!endpoint) {
      const origin = `${pool.tls ? "https" : "http"}://${address}`;
      endpoint = new EndpointRuntime(
        key,
        address,
        origin,
        createDispatcher(origin, pool),
        this.registries.metrics.bindEndpoint(pool.id, address),
      );
      this.#endpoints.set(key, endpoint);
    }
    return endpoint;
  }
}

function createDispatcher(origin: string, pool: PoolConfig): Dispatcher {
  const limits = pool.connection_pool;
  const tls = pool.tls;
  const connect = {
    timeout: limits?.connect_timeout ?? DEFAULT_CONNECT_TIMEOUT_MS,
    ...(tls
      ? {
          servername: tls.sni,
          ca: tls.ca_file ? readFileSync(tls.ca_file) : undefined,
          cert: tls.cert_file ? readFileSync(tls.cert_file) : undefined,
          key: tls.key_file ? readFileSync(tls.key_file) : undefined,
          rejectUnauthorized: tls.verify ?? true,
        }
      : {}),
  };
  const common = {
    keepAliveTimeout: limits?.idle_timeout ?? DEFAULT_IDLE_TIMEOUT_MS,
    // The engine enforces the route's deadline; undici's own timeouts stay out of its way.
    headersTimeout: 0,
    bodyTimeout: 0,
    connect,
  };
  // HTTP/2 to a cleartext upstream is prior-knowledge h2c, one multiplexed session.
  if (pool.protocol === "h2" && !tls) return new H2CClient(origin, common);
  const h2 = pool.protocol === "h2";
  return new Pool(origin, {
    ...common,
    connections: limits?.max_connections ?? null,
    allowH2: h2,
    // undici counts a connection busy past `pipelining` requests; for HTTP/2 that is the
    // number of streams it multiplexes before opening another connection.
    pipelining: h2 ? H2_STREAMS_PER_CONNECTION : 1,
  });
}
