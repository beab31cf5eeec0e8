/**
 * The builtin `structured_logger` plugin: one JSON line per request that reaches its stage,
 * with the request's identity and the headers the config lists. Credentials never reach the
 * line: a listed Authorization or Cookie header shows only that it was there.
 */
import type { Logger } from "../../services/telemetry/logger.js";
import {
  failureResult,
  type PluginCalls,
  type PluginContext,
  type PluginFilter,
  type StageResult,
} from "./plugin.js";
import type { StructuredLoggerSettings } from "./plugin-settings.js";

export const REDACTED = "[redacted]";

const SECRET_HEADERS: ReadonlySet<string> = new Set([
  "authorization",
  "proxy-authorization",
  "cookie",
  "set-cookie",
]);

export interface StructuredLoggerOptions {
  /** Outcome counters, owned by the registry so they outlive a replaced plugin. */
  readonly calls: PluginCalls;
  /** Where the lines go. */
  readonly logger: Logger;
}

export class StructuredLoggerPlugin implements PluginFilter {
  readonly id: string;
  readonly #headers: readonly string[];
  readonly #failMode: StructuredLoggerSettings["failMode"];
  readonly #calls: PluginCalls;
  readonly #logger: Logger;

  constructor(settings: StructuredLoggerSettings, options: StructuredLoggerOptions) {
    this.id = settings.id;
    this.#headers = settings.headers;
    this.#failMode = settings.failMode;
    this.#calls = options.calls;
    this.#logger = options.logger;
  }

  /** Logs and continues; only a logger that throws makes the fail mode matter. */
  filter(ctx: PluginContext): StageResult {
    try {
      this.#logger.info(
        {
          event: "plugin_request",
          plugin: this.id,
          request_id: ctx.requestId,
          route: ctx.routeId,
          method: ctx.req.method,
          path: ctx.path ?? ctx.req.url,
          headers: this.#selectedHeaders(ctx),
        },
        "request",
      );
    } catch {
      this.#calls.error++;
      return failureResult(this.#failMode);
    }
    this.#calls.allow++;
    return undefined;
  }

  #selectedHeaders(ctx: PluginContext): Record<string, string | string[]> | undefined {
    if (this.#headers.length === 0) return undefined;
    const headers = ctx.req.headers;
    const out: Record<string, string | string[]> = {};
    for (const name of this.#headers) {
      const value = headers[name];
      if (value !== undefined) out[name] = SECRET_HEADERS.has(name) ? REDACTED : value;
    }
    return out;
  }
}
