/**
 * Every registry of one agent process: the long-lived, mutable state that snapshots point to
 * (connections, health, breakers, budgets, limiters, canary counters), keyed by stable ids so
 * it survives swaps. Binding a snapshot takes from them; `retain` drops what the active
 * snapshot no longer uses. State changes worth an operator's attention are logged here.
 */
import type { Logger } from "../../services/telemetry/logger.js";
import { CacheRegistry } from "../cache/cache-registry.js";
import { JwksRegistry } from "../middleware/jwks-registry.js";
import type { AgentMetrics } from "../observability/metrics.js";
import { PluginRegistry } from "../plugins/plugin-registry.js";
import { BreakerRegistry } from "../resilience/circuit-breaker.js";
import { LimiterRegistry } from "../resilience/concurrency-limiter.js";
import { RateLimiterRegistry } from "../resilience/rate-limiter.js";
import type { Registries } from "../snapshot/compile.js";
import type { Snapshot } from "../snapshot/snapshot.js";
import { CanaryRegistry } from "../traffic/canary-registry.js";
import { HealthRegistry } from "../upstream/health/health-registry.js";
import { RetryBudgetRegistry } from "../upstream/retry-budget.js";
import { UpstreamRegistry } from "../upstream/upstream-registry.js";
import type { RouteLimitsView, RuntimeState } from "./runtime-state.js";

export class AgentRegistries implements Registries {
  readonly health: HealthRegistry;
  readonly breakers: BreakerRegistry;
  readonly upstreams: UpstreamRegistry;
  readonly retryBudgets = new RetryBudgetRegistry();
  readonly limiters = new LimiterRegistry();
  readonly rateLimiters = new RateLimiterRegistry();
  readonly canaries: CanaryRegistry;
  readonly jwks: JwksRegistry;
  readonly plugins: PluginRegistry;
  readonly caches = new CacheRegistry();

  constructor(
    readonly metrics: AgentMetrics,
    readonly workers: number,
    readonly logger: Logger,
  ) {
    this.jwks = new JwksRegistry({ logger });
    this.plugins = new PluginRegistry({ logger });
    this.health = new HealthRegistry({
      listener: (change) => {
        if (change.to === "ejected") metrics.endpointEjected(change.pool, change.address);
        logger.warn({ event: "endpoint_health", ...change }, "endpoint health changed");
      },
    });
    this.breakers = new BreakerRegistry((key, from, to, reason) => {
      if (to === "open") metrics.breakerTripped(key);
      logger.warn({ event: "breaker", breaker: key, from, to, reason }, "circuit breaker changed state");
    });
    this.canaries = new CanaryRegistry({
      onBrake: (route, reason) =>
        logger.error(
          { event: "canary_brake", route, reason },
          "canary braked: it gets no traffic until a new config",
        ),
    });
    this.upstreams = new UpstreamRegistry(this);
    metrics.observe({
      pools: () =>
        this.health
          .list()
          .map((pool) => ({ pool: pool.id, healthy: pool.healthyCount(), total: pool.total })),
      breakers: () => this.breakers.list(),
      retryBudgets: () => this.retryBudgets.tokens(),
      limiters: () => this.limiters.list(),
      canaries: () => this.canaries.list(),
      caches: () => this.caches.list(),
      pluginCalls: () => this.plugins.callCounts(),
    });
  }

  /** Drops what `snapshot` does not use; connection pools close once their requests finish. */
  retain(snapshot: Snapshot): Promise<void> {
    const routes = new Set(snapshot.routes.map((r) => r.id));
    this.retryBudgets.retain(routes);
    this.limiters.retain(routes);
    const chains = [...snapshot.chains.values()];
    this.rateLimiters.retain(new Set([...routes, ...chains.flatMap((c) => c.rateLimiterKeys)]));
    this.jwks.retain(new Set(chains.flatMap((c) => c.jwksKeys)));
    this.plugins.retain(snapshot.plugins);
    this.caches.retain(new Set(snapshot.routes.filter((r) => r.cache).map((r) => r.id)));
    this.canaries.retain(routes);
    this.health.retain(snapshot.pools.keys());
    const breakers = new Set<string>();
    for (const pool of snapshot.pools.values()) if (pool.breaker) breakers.add(`pool:${pool.id}`);
    for (const route of snapshot.routes) if (route.breaker) breakers.add(`route:${route.id}`);
    this.breakers.retain(breakers);
    this.metrics.retain({ routes, pools: new Set(snapshot.pools.keys()) });
    return this.upstreams.retain(snapshot.pools);
  }

  /** What the admin API shows of this process's runtime state. */
  state(): RuntimeState {
    return {
      pools: this.health.list().map((pool) => ({ pool: pool.id, endpoints: pool.describe() })),
      breakers: this.breakers.list().map((b) => {
        const [kind, id] = splitKey(b.key);
        return {
          [kind]: id,
          state: b.state,
          trips: b.trips,
          in_flight: b.inFlight,
          error_percent: Math.round(b.errorPercent * 100) / 100,
        };
      }),
      canaries: this.canaries.list(),
      limits: this.#limits(),
    };
  }

  #limits(): RouteLimitsView[] {
    const overload = new Map(this.limiters.list().map((l) => [l.route, l]));
    const rates = new Map(this.rateLimiters.list().map((r) => [r.route, r]));
    return [...this.retryBudgets.tokens()].map(([route, tokens]) => {
      const o = overload.get(route);
      const r = rates.get(route);
      return {
        route,
        ...(o && { overload: { limit: o.limit, in_flight: o.inFlight, queued: o.queued } }),
        ...(r && { rate_limit: { requests_per_second: r.requestsPerSecond, burst: r.burst, keys: r.keys } }),
        retry_budget_tokens: Math.floor(tokens),
      };
    });
  }

  /** Stops health checks and closes every connection pool (at once with `force`). */
  async close(force: boolean): Promise<void> {
    this.health.close();
    this.plugins.close();
    this.limiters.retain(new Set());
    await this.upstreams.close(force);
  }
}

function splitKey(key: string): ["pool" | "route", string] {
  const colon = key.indexOf(":");
  return [key.slice(0, colon) === "route" ? "route" : "pool", key.slice(colon + 1)];
}
