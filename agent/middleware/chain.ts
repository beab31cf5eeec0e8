/**
 * Middleware chains: compiled once per snapshot from the config's `middleware` entries, run by
 * the engine for each request of a route that names one, after routing and before the request
 * is admitted and forwarded.
 *
 * Compiling turns each stage into a request hook (stages/), in declared order, and collects
 * what is not per-request work: the response header edits, and the `tracing` and `access_log`
 * markers, which only say how the engine treats the chain's routes. Long-lived state (rate
 * limit buckets, remote key sets) comes from the registries in ChainDeps; the chain lists the
 * keys it holds there so the caller can retain them when it retires a snapshot.
 *
 * Running stops at the first rejection. It stays synchronous while hooks answer synchronously
 * and continues asynchronously from the first hook that returns a promise. Built-in stages
 * never throw; a plugin's failure becomes a rejection (stages/plugin.ts).
 */
import type { MiddlewareChain, Policy } from "../../services/config/index.js";
import type { Logger } from "../../services/telemetry/logger.js";
import type { RateLimiterRegistry } from "../resilience/rate-limiter.js";
import type { HeaderEdits, HeaderOp } from "./header-edits.js";
import type { JwksRegistry } from "./jwks-registry.js";
import type { MiddlewareContext, PluginFilter, RequestHook, StageResult } from "./middleware.js";
import { compileAuthStage } from "./stages/auth.js";
import { compileHeaderTransformStage } from "./stages/header-transform.js";
import { jwtKeys } from "./stages/jwt-keys.js";
import { compilePluginStage } from "./stages/plugin.js";
import { compileRateLimitStage } from "./stages/rate-limit.js";
import { compileRequestIdStage } from "./stages/request-id.js";

export interface ChainDeps {
  readonly rateLimiters: RateLimiterRegistry;
  /** Worker processes sharing the configured rate limits. */
  readonly workers: number;
  readonly jwks: JwksRegistry;
  /** The plugins of the snapshot being compiled. */
  readonly plugins: { get(id: string): PluginFilter | undefined };
  readonly policies: ReadonlyMap<string, Policy>;
  readonly logger: Pick<Logger, "error">;
  /** The clock of the verified-token caches; Date.now by default. */
  readonly now?: () => number;
}

export interface CompiledChain {
  readonly id: string;
  /** Runs the request hooks in order: undefined to go on, or the rejection to answer with. */
  run(ctx: MiddlewareContext): StageResult | Promise<StageResult>;
  /** Edits for the client response's headers (applyHeaderEdits); undefined when none. */
  readonly responseEdits: HeaderEdits | undefined;
  /** The chain has a `tracing` stage: its routes' requests are traced. */
  readonly traced: boolean;
  /** The chain has an `access_log` stage: its routes are logged even with the access log off. */
  readonly accessLogged: boolean;
  /** Keys held in ChainDeps.rateLimiters, to keep in its retain set. */
  readonly rateLimiterKeys: readonly string[];
  /** Keys held in ChainDeps.jwks, to keep in its retain set. */
  readonly jwksKeys: readonly string[];
}

/** A stage that cannot be compiled, e.g. an unreadable `jwks_file`. */
export class ChainCompileError extends Error {
  readonly code = "MIDDLEWARE_COMPILE_FAILED";

  constructor(
    readonly chain: string,
    readonly stage: number,
    reason: string,
    options?: ErrorOptions,
  ) {
    super(`middleware "${chain}" stages[${stage}]: ${reason}`, options);
  }
}

/** Throws ChainCompileError; nothing of a chain that fails to compile is used. */
export function compileChain(chain: MiddlewareChain, deps: ChainDeps): CompiledChain {
  const hooks: RequestHook[] = [];
  const response: HeaderOp[] = [];
  const rateLimiterKeys: string[] = [];
  const jwksKeys: string[] = [];
  let traced = false;
  let accessLogged = false;
  const add = (hook: RequestHook | undefined) => {
    if (hook) hooks.push(hook);
  };

  chain.stages.forEach((stage, index) => {
    try {
      switch (stage.type) {
        case "request_id":
          add(compileRequestIdStage(stage.config));
          break;
        case "auth": {
          const keys = jwtKeys(stage.config.jwt, deps.jwks);
          if (keys.jwksKey !== undefined) jwksKeys.push(keys.jwksKey);
          add(compileAuthStage(stage.config.jwt, { getKey: keys.getKey, now: deps.now ?? Date.now }));
          break;
        }
        case "rate_limit": {
          const limit = compileRateLimitStage(chain.id, stage, deps);
          rateLimiterKeys.push(limit.limiterKey);
          add(limit.request);
          break;
        }
        case "header_transform": {
          const transform = compileHeaderTransformStage(stage.config);
          add(transform.request);
          response.push(...transform.response);
          break;
        }
        case "tracing":
          traced = true;
          break;
        case "access_log":
          accessLogged = true;
          break;
        case "plugin":
          add(compilePluginStage(stage.plugin, deps.plugins.get(stage.plugin), deps.logger));
          break;
      }
    } catch (error) {
      throw new ChainCompileError(chain.id, index, error instanceof Error ? error.message : String(error), {
        cause: error,
      });
    }
  });

  return new Chain(chain.id, hooks, response.length === 0 ? undefined : response, {
    traced,
    accessLogged,
    rateLimiterKeys,
    jwksKeys,
  });
}

type ChainFacts = Pick<CompiledChain, "traced" | "accessLogged" | "rateLimiterKeys" | "jwksKeys">;

class Chain implements CompiledChain {
  readonly traced: boolean;
  readonly accessLogged: boolean;
  readonly rateLimiterKeys: readonly string[];
  readonly jwksKeys: readonly string[];

  constructor(
    readonly id: string,
    private readonly hooks: readonly RequestHook[],
    readonly responseEdits: HeaderEdits | undefined,
    facts: ChainFacts,
  ) {
    this.traced = facts.traced;
    this.accessLogged = facts.accessLogged;
    this.rateLimiterKeys = facts.rateLimiterKeys;
    this.jwksKeys = facts.jwksKeys;
  }

  run(ctx: MiddlewareContext): StageResult | Promise<StageResult> {
    return runFrom(this.hooks, 0, ctx);
  }
}

function runFrom(
  hooks: readonly RequestHook[],
  start: number,
  ctx: MiddlewareContext,
): StageResult | Promise<StageResult> {
  for (let i = start; i < hooks.length; i++) {
    const result = hooks[i]!(ctx);
    if (result === undefined) continue;
    if (result instanceof Promise) return resume(hooks, i + 1, ctx, result);
    return result;
  }
  return undefined;
}

/** The rest of a chain after a hook that had to wait. */
async function resume(
  hooks: readonly RequestHook[],
  next: number,
  ctx: MiddlewareContext,
  pending: Promise<StageResult>,
): Promise<StageResult> {
  const result = await pending;
  return result === undefined ? runFrom(hooks, next, ctx) : result;
}
