/**
 * A snapshot: everything one request needs to be handled, compiled from one config and never
 * changed after. A request reads the current snapshot once and uses only it. Mutable state
 * (connections, balancer positions, retry budgets) lives in registries the snapshot points to.
 */
import type { DynamicConfig } from "../../services/config/index.js";
import type { RouteMetrics } from "../observability/metrics.js";
import type { Router } from "../router/router.js";
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

export interface CompiledRoute {
  readonly id: string;
  readonly pool: PoolRuntime;
  readonly policy: EffectivePolicy;
  readonly requireTls: boolean;
  readonly requireMtls: boolean;
  readonly metrics: RouteMetrics;
  readonly retryBudget: RetryBudget;
}

export interface Snapshot {
  /** `<sequence>-<first 12 hex of the content hash>`: ordered, and names the content. */
  readonly version: string;
  readonly sequence: number;
  readonly contentHash: string;
  readonly config: DynamicConfig;
  readonly router: Router;
  /** Index-aligned with config.routes, as the router answers. */
  readonly routes: readonly CompiledRoute[];
  readonly pools: ReadonlyMap<string, PoolRuntime>;
}
