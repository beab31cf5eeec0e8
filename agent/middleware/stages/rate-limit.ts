/**
 * The `rate_limit` stage: the token bucket of a named policy's `rate_limit`, keyed by the
 * stage's `key` when it has one, else the policy's (see resilience/rate-limiter.ts for the
 * bucket and the per-worker share). Past it, 429 `rate_limited` with Retry-After in seconds.
 *
 * Buckets live in the RateLimiterRegistry under `middleware:<chain>:<policy>:<key>`, so they
 * survive config swaps and stage reordering. They belong to the chain: every route using the
 * chain draws from them, as from one Envoy local rate limit filter; a per-route limit is the
 * route policy's `rate_limit`. The policy id alone would make unrelated chains share one
 * bucket, and a stage index would restart buckets whenever a stage is inserted before it.
 * Two identical stages in one chain therefore share a bucket, each taking a token.
 */
import type { Policy } from "../../../services/config/index.js";
import { ProxyError } from "../../errors.js";
import { requestKey } from "../../proxy/request-key.js";
import { type RateLimiterRegistry, rateLimitSettings } from "../../resilience/rate-limiter.js";
import { type Rejection, type RequestHook, rejection } from "../middleware.js";

export interface RateLimitStageDeps {
  readonly rateLimiters: RateLimiterRegistry;
  readonly workers: number;
  readonly policies: ReadonlyMap<string, Policy>;
}

export interface CompiledRateLimit {
  readonly request: RequestHook;
  /** The registry key of the stage's limiter, for RateLimiterRegistry.retain. */
  readonly limiterKey: string;
}

/** Throws when the policy is unknown or has no rate_limit (validation rules both out). */
export function compileRateLimitStage(
  chainId: string,
  stage: { readonly policy_ref: string; readonly config?: { readonly key?: string } },
  deps: RateLimitStageDeps,
): CompiledRateLimit {
  const limit = deps.policies.get(stage.policy_ref)?.rate_limit;
  if (!limit) throw new Error(`policy "${stage.policy_ref}" is unknown or has no rate_limit`);
  const key = stage.config?.key ?? limit.key;
  const settings = rateLimitSettings({ ...limit, key }, deps.workers);
  const limiterKey = `middleware:${chainId}:${stage.policy_ref}:${key ?? "route"}`;
  const limiter = deps.rateLimiters.limiterFor(limiterKey, settings);
  return {
    limiterKey,
    request: (ctx) => {
      const wait = limiter.take(key === undefined ? undefined : requestKey(key, ctx.req));
      return wait === 0 ? undefined : rateLimited(wait);
    },
  };
}

/** Refusals by Retry-After, made once each: a flood of refused requests allocates nothing. */
const REFUSALS: Rejection[] = [];

function rateLimited(seconds: number): Rejection {
  let refusal = REFUSALS[seconds];
  if (refusal === undefined) {
    refusal = rejection(ProxyError.RateLimited, { "retry-after": String(seconds) });
    if (seconds <= 3600) REFUSALS[seconds] = refusal;
  }
  return refusal;
}
