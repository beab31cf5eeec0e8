/**
 * Compiling a config into a snapshot, in two steps. `planSnapshot` is pure: router, effective
 * policies, which pool each route uses. `bindSnapshot` attaches the plan to the long-lived
 * registries (connection pools, retry budgets, metric series). Both run off the request path,
 * before the swap.
 */
import {
  type CacheRule,
  contentHash,
  type DynamicConfig,
  type InlinePolicy,
  type Pool,
} from "../../services/config/index.js";
import type { Logger } from "../../services/telemetry/logger.js";
import { type CachePolicy, compileCacheRule } from "../cache/cache-policy.js";
import type { CacheRegistry } from "../cache/cache-registry.js";
import { compileChain } from "../middleware/chain.js";
import type { JwksRegistry } from "../middleware/jwks-registry.js";
import type { AgentMetrics } from "../observability/metrics.js";
import type { PluginRegistry } from "../plugins/plugin-registry.js";
import {
  type BreakerRegistry,
  type BreakerSettings,
  breakerSettings,
} from "../resilience/circuit-breaker.js";
import {
  type LimiterRegistry,
  type LimiterSettings,
  limiterSettings,
} from "../resilience/concurrency-limiter.js";
import {
  type RateLimitConfig,
  type RateLimiterRegistry,
  rateLimitSettings,
} from "../resilience/rate-limiter.js";
import { compileRouter, type Router } from "../router/router.js";
import type { CanaryRegistry } from "../traffic/canary-registry.js";
import { type CompiledTrafficPlan, compileTrafficPlan } from "../traffic/traffic-plan.js";
import type { RetryBudgetRegistry } from "../upstream/retry-budget.js";
import type { PoolRuntime, UpstreamRegistry } from "../upstream/upstream-registry.js";
import { versionOf } from "./config-history.js";
import type { CompiledRoute, EffectivePolicy, RouteTarget, RouteTraffic, Snapshot } from "./snapshot.js";

/** Defaults for what a policy leaves out (Envoy's backoff: 25 ms base, 250 ms cap). */
export const POLICY_DEFAULTS: EffectivePolicy = {
  timeoutMs: 30_000,
  maxAttempts: 1,
  budgetPercent: 10,
  idempotentOnly: true,
  backoffBaseMs: 25,
  backoffMaxMs: 250,
  bodySizeLimit: undefined,
  hedging: undefined,
};

export interface RoutePlan {
  readonly id: string;
  /** The route's pool: its own `pool`, else its traffic plan's stable pool. */
  readonly poolId: string;
  readonly policy: EffectivePolicy;
  readonly requireTls: boolean;
  readonly requireMtls: boolean;
  readonly breaker: BreakerSettings | undefined;
  /** As written: the per-worker share is worked out when bound (it depends on the process). */
  readonly rateLimit: RateLimitConfig | undefined;
  readonly overload: LimiterSettings | undefined;
  readonly traffic: CompiledTrafficPlan | undefined;
  /** The id of the route's middleware chain. */
  readonly middleware: string | undefined;
  readonly cache: CachePolicy | undefined;
}

export interface SnapshotPlan {
  readonly config: DynamicConfig;
  readonly contentHash: string;
  readonly router: Router;
  readonly routes: readonly RoutePlan[];
  readonly pools: readonly Pool[];
}

/** The pure part of compiling: the config must be valid (services/config validated it). */
export function planSnapshot(config: DynamicConfig): SnapshotPlan {
  const routes = config.routes ?? [];
  const policies = new Map((config.policies ?? []).map((p) => [p.id, p]));
  const plans = new Map((config.traffic_management ?? []).map((t) => [t.route, t]));
  const caches = new Map((config.cache ?? []).map((c) => [c.route, c]));
  return {
    config,
    contentHash: contentHash(config),
    router: compileRouter(routes),
    pools: config.pools ?? [],
    routes: routes.map((route) => {
      const written = route.policy ?? (route.policy_ref ? policies.get(route.policy_ref) : undefined);
      const plan = plans.get(route.id);
      const traffic =
        plan && (plan.stable_pool || plan.canary_pool || plan.cohort_routing)
          ? compileTrafficPlan(plan, route.pool)
          : undefined;
      return {
        id: route.id,
        // Validation guarantees one of the two.
        poolId: (route.pool ?? plan?.stable_pool) as string,
        policy: effectivePolicy(written),
        requireTls: route.require_tls === true || written?.require_tls === true,
        requireMtls: route.require_mtls === true,
        breaker: written?.circuit_breaker ? breakerSettings(written.circuit_breaker) : undefined,
        rateLimit: written?.rate_limit,
        overload: plan?.overload_protection ? limiterSettings(plan.overload_protection) : undefined,
        traffic,
        middleware: route.middleware,
        cache: cacheRule(caches.get(route.id)),
      };
    }),
  };
}

function cacheRule(rule: CacheRule | undefined): CachePolicy | undefined {
  return rule === undefined ? undefined : compileCacheRule(rule);
}

export function effectivePolicy(policy: InlinePolicy | undefined): EffectivePolicy {
  const d = POLICY_DEFAULTS;
  return {
    timeoutMs: policy?.timeout ?? d.timeoutMs,
    maxAttempts: policy?.retries?.max_attempts ?? d.maxAttempts,
    budgetPercent: policy?.retries?.budget_percent ?? d.budgetPercent,
    idempotentOnly: policy?.retries?.idempotent_only ?? d.idempotentOnly,
    backoffBaseMs: policy?.retries?.backoff?.base ?? d.backoffBaseMs,
    backoffMaxMs: policy?.retries?.backoff?.max ?? d.backoffMaxMs,
    bodySizeLimit: policy?.body_size_limit ?? d.bodySizeLimit,
    hedging: policy?.hedging
      ? { delayMs: policy.hedging.delay, maxHedges: policy.hedging.max_hedges ?? 1 }
      : d.hedging,
  };
}

export interface Registries {
  readonly upstreams: UpstreamRegistry;
  readonly retryBudgets: RetryBudgetRegistry;
  readonly breakers: BreakerRegistry;
  readonly limiters: LimiterRegistry;
  readonly rateLimiters: RateLimiterRegistry;
  readonly canaries: CanaryRegistry;
  readonly jwks: JwksRegistry;
  readonly plugins: PluginRegistry;
  readonly caches: CacheRegistry;
  readonly metrics: AgentMetrics;
  readonly logger: Logger;
  /** Processes serving the same config (cluster workers): each takes its share of a rate limit. */
  readonly workers: number;
}

/**
 * Attaches a plan to the registries; the registries keep what is unchanged. Middleware chains
 * compile here, once per snapshot, because their stages take state from registries (rate
 * limits, key sets, plugins). Throws ChainCompileError for a chain that cannot compile.
 */
export function bindSnapshot(
  plan: SnapshotPlan,
  sequence: number,
  registries: Registries,
  bundleVersion = 0,
): Snapshot {
  const pools: ReadonlyMap<string, PoolRuntime> = registries.upstreams.prepare(plan.pools);
  const plugins = registries.plugins.pluginsFor(plan.config.plugins);
  const policies = new Map((plan.config.policies ?? []).map((p) => [p.id, p]));
  const chains = new Map(
    (plan.config.middleware ?? []).map((chain) => [
      chain.id,
      compileChain(chain, {
        rateLimiters: registries.rateLimiters,
        workers: registries.workers,
        jwks: registries.jwks,
        plugins,
        policies,
        logger: registries.logger,
      }),
    ]),
  );
  const target = (routeId: string, poolId: string): RouteTarget => ({
    pool: pools.get(poolId) as PoolRuntime,
    metrics: registries.metrics.bindRoute(routeId, poolId),
  });
  const routes: CompiledRoute[] = plan.routes.map((route) => ({
    id: route.id,
    ...target(route.id, route.poolId),
    policy: route.policy,
    requireTls: route.requireTls,
    requireMtls: route.requireMtls,
    retryBudget: registries.retryBudgets.budgetFor(route.id, route.policy.budgetPercent),
    breaker: route.breaker && registries.breakers.breakerFor(`route:${route.id}`, route.breaker),
    rateLimiter:
      route.rateLimit &&
      registries.rateLimiters.limiterFor(route.id, rateLimitSettings(route.rateLimit, registries.workers)),
    limiter: route.overload && registries.limiters.limiterFor(route.id, route.overload),
    traffic: route.traffic && bindTraffic(route.id, route.traffic, registries, target),
    chain: route.middleware === undefined ? undefined : chains.get(route.middleware),
    cache: route.cache && registries.caches.storeFor(route.id, route.cache),
    cacheMetrics: route.cache && registries.metrics.bindCache(route.id),
  }));
  return {
    version: versionOf(sequence, plan.contentHash),
    sequence,
    bundleVersion,
    contentHash: plan.contentHash,
    config: plan.config,
    router: plan.router,
    routes,
    pools,
    chains,
    plugins: [...plugins.keys()],
  };
}

function bindTraffic(
  routeId: string,
  plan: CompiledTrafficPlan,
  registries: Registries,
  target: (routeId: string, poolId: string) => RouteTarget,
): RouteTraffic {
  return {
    plan,
    canary: registries.canaries.stateFor(routeId, plan),
    targets: new Map(plan.pools.map((id) => [id, target(routeId, id)])),
  };
}
