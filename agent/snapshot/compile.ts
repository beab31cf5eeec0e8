/**
 * Compiling a config into a snapshot, in two steps. `planSnapshot` is pure: router, effective
 * policies, which pool each route uses. `bindSnapshot` attaches the plan to the long-lived
 * registries (connection pools, retry budgets, metric series). Both run off the request path,
 * before the swap.
 */
import {
  contentHash,
  type DynamicConfig,
  type InlinePolicy,
  type Pool,
} from "../../services/config/index.js";
import type { AgentMetrics } from "../observability/metrics.js";
import { compileRouter, type Router } from "../router/router.js";
import type { RetryBudgetRegistry } from "../upstream/retry-budget.js";
import type { PoolRuntime, UpstreamRegistry } from "../upstream/upstream-registry.js";
import { versionOf } from "./config-history.js";
import type { CompiledRoute, EffectivePolicy, Snapshot } from "./snapshot.js";

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
  readonly poolId: string;
  readonly policy: EffectivePolicy;
  readonly requireTls: boolean;
  readonly requireMtls: boolean;
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
  const stablePools = new Map((config.traffic_management ?? []).map((t) => [t.route, t.stable_pool]));
  return {
    config,
    contentHash: contentHash(config),
    router: compileRouter(routes),
    pools: config.pools ?? [],
    routes: routes.map((route) => {
      const written = route.policy ?? (route.policy_ref ? policies.get(route.policy_ref) : undefined);
      const policy = effectivePolicy(written);
      return {
        id: route.id,
        // Validation guarantees one of the two.
        poolId: (route.pool ?? stablePools.get(route.id)) as string,
        policy,
        requireTls: route.require_tls === true || written?.require_tls === true,
        requireMtls: route.require_mtls === true,
      };
    }),
  };
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
  readonly metrics: AgentMetrics;
}

/** Attaches a plan to the registries; the registries keep what is unchanged. */
export function bindSnapshot(plan: SnapshotPlan, sequence: number, registries: Registries): Snapshot {
  const pools: ReadonlyMap<string, PoolRuntime> = registries.upstreams.prepare(plan.pools);
  const routes: CompiledRoute[] = plan.routes.map((route) => ({
    id: route.id,
    pool: pools.get(route.poolId) as PoolRuntime,
    policy: route.policy,
    requireTls: route.requireTls,
    requireMtls: route.requireMtls,
    metrics: registries.metrics.bindRoute(route.id, route.poolId),
    retryBudget: registries.retryBudgets.budgetFor(route.id, route.policy.budgetPercent),
  }));
  return {
    version: versionOf(sequence, plan.contentHash),
    sequence,
    contentHash: plan.contentHash,
    config: plan.config,
    router: plan.router,
    routes,
    pools,
  };
}
