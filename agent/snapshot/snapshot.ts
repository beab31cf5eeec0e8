/**
 * A snapshot: everything one request needs to be handled, compiled from one config and never
 * changed after. A request reads the current snapshot once and uses only it. Mutable state
 * (connections, balancer positions, retry budgets) lives in registries the snapshot points to.
 */
import type { DynamicConfig } from "../../services/config/index.js";
import type { CacheStore } from "../cache/cache-store.js";
import type { CompiledChain } from "../middleware/chain.js";
import type { CacheMetrics, RouteMetrics } from "../observability/metrics.js";
import type { CircuitBreaker } from "../resilience/circuit-breaker.js";
import type { ConcurrencyLimiter } from "../resilience/concurrency-limiter.js";
import type { RateLimiter } from "../resilience/rate-limiter.js";
import type { Router } from "../router/router.js";
import type { CanaryState } from "../traffic/canary-registry.js";
import type { CompiledTrafficPlan } from "../traffic/traffic-plan.js";
import type { RetryBudget } from "../upstream/retry-budget.js";
import type { PoolRuntime } from "../upstream/upstream-registry.js";

/** A route's policy with every default applied: the request path reads no optional fields. */
export interface EffectivePolicy {
  readonly timeoutMs: number;
  readonly maxAttempts: number;
  readonly budgetPercent: number;
  readonly idempotentOnly: boolean;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  /** Largest request body accepted; undefined: no limit. */
  readonly bodySizeLimit: number | undefined;
  /** Hedged GET/HEAD requests; undefined: none. */
  readonly hedging: { readonly delayMs: number; readonly maxHedges: number } | undefined;
}

/** A pool a route can send to, with the route's metric series for it. */
export interface RouteTarget {
  readonly pool: PoolRuntime;
  readonly metrics: RouteMetrics;
}

/** A route's traffic plan bound to its state: where each request goes, and the canary's brake. */
export interface RouteTraffic {
  readonly plan: CompiledTrafficPlan;
  readonly canary: CanaryState;
  /** Every pool the plan can choose, by id. */
  readonly targets: ReadonlyMap<string, RouteTarget>;
}

export interface CompiledRoute extends RouteTarget {
  readonly id: string;
  readonly policy: EffectivePolicy;
  readonly requireTls: boolean;
  readonly requireMtls: boolean;
  readonly retryBudget: RetryBudget;
  /** The route policy's own circuit breaker (the pool's is on the pool). */
  readonly breaker: CircuitBreaker | undefined;
  readonly rateLimiter: RateLimiter | undefined;
  /** The overload protection of the route's traffic plan. */
  readonly limiter: ConcurrencyLimiter | undefined;
  readonly traffic: RouteTraffic | undefined;
  readonly chain: CompiledChain | undefined;
  /** The route's cache; undefined when it has no (enabled) cache rule. */
  readonly cache: CacheStore | undefined;
  readonly cacheMetrics: CacheMetrics | undefined;
}

export interface Snapshot {
  /** `<sequence>-<first 12 hex of the content hash>`: ordered, and names the content. */
  readonly version: string;
  readonly sequence: number;
  /** The signed bundle this config came from; 0 for a file or an admin apply. */
  readonly bundleVersion: number;
  readonly contentHash: string;
  readonly config: DynamicConfig;
  readonly router: Router;
  /** Index-aligned with config.routes, as the router answers. */
  readonly routes: readonly CompiledRoute[];
  readonly pools: ReadonlyMap<string, PoolRuntime>;
  /** The middleware chains, compiled once for this snapshot, by id. */
  readonly chains: ReadonlyMap<string, CompiledChain>;
  /** The ids of the plugins this snapshot runs. */
  readonly plugins: readonly string[];
}
