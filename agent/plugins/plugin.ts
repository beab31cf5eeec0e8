/**
 * What a plugin is to the middleware chain: a stage that looks at a request before it goes
 * upstream and either lets it continue, possibly with edited upstream headers, or answers it.
 * Implementations: external-grpc-filter.ts (`type: external_grpc`) and structured-logger.ts
 * (`type: builtin`, `name: structured_logger`); plugin-registry.ts keeps them across swaps.
 */
import { ProxyError } from "../errors.js";
import type { MiddlewareContext, Rejection, StageResult } from "../middleware/middleware.js";

export type { StageResult };

/** The proxy's error categories plugins answer with. */
export const PluginError = {
  Denied: ProxyError.PluginDenied,
  Unavailable: ProxyError.PluginUnavailable,
} as const;

/** One request as a plugin sees it: the middleware context at its place in the chain. */
export type PluginContext = MiddlewareContext;

/** A plugin's refusal: the proxy answers with it and the upstream never sees the request. */
export type PluginRejection = Rejection;

export interface PluginFilter {
  readonly id: string;
  /** Never throws or rejects: every failure is already turned into the plugin's fail mode. */
  filter(ctx: PluginContext): StageResult | Promise<StageResult>;
}

export type FailMode = "open" | "closed";

/** The rejection of a failed `fail_mode: closed` plugin; shared, so failing allocates nothing. */
export const UNAVAILABLE: PluginRejection = Object.freeze({ ...PluginError.Unavailable });

/** What a failed plugin call means for the request. */
export function failureResult(failMode: FailMode): StageResult {
  return failMode === "closed" ? UNAVAILABLE : undefined;
}

export const PLUGIN_OUTCOMES = ["allow", "deny", "error", "timeout"] as const;
export type PluginOutcome = (typeof PLUGIN_OUTCOMES)[number];

/**
 * Calls of one plugin by outcome, the `proxy_plugin_calls_total{plugin, outcome}` counter.
 * Owned by the registry per plugin id, so a plugin replaced by a config change keeps counting
 * where its predecessor stopped.
 */
export class PluginCalls {
  allow = 0;
  deny = 0;
  error = 0;
  timeout = 0;
}
