/**
 * The contract between the request path and a middleware chain's stages: what a stage sees of
 * a request, and how it ends one.
 *
 * A stage's request hook runs before the request is forwarded. It returns `undefined` to hand
 * on to the next stage, a `Rejection` to answer the client instead, or a promise of either when
 * it has to wait (a JWT not seen before, an external plugin). Stages that never wait keep the
 * whole chain synchronous: no promise and no microtask for the request.
 */
import type { JWTPayload } from "jose";
import type { ProxyErrorCategory } from "../errors.js";
import type { ClientRequest } from "../proxy/engine.js";

export interface MiddlewareContext {
  readonly req: ClientRequest;
  readonly requestId: string;
  readonly routeId: string;
  /**
   * The headers that will be sent upstream, names in lower case; stages add, set and remove
   * here, never on `req.headers`.
   */
  readonly upstreamHeaders: Record<string, string | string[]>;
  /** The normalized path and query the upstream receives; `req.url` when absent. */
  readonly path?: string;
  /**
   * The verified claims of the request's JWT, set by an auth stage. Shared by every request
   * presenting the same token (they come from its cache): read, never modify.
   */
  claims?: Readonly<JWTPayload>;
}

export interface Rejection {
  readonly status: number;
  /** The `error` field of the proxy's JSON answer, and the error metric's label. */
  readonly category: ProxyErrorCategory;
  /** Extra response headers (Retry-After, WWW-Authenticate, a plugin's own). */
  readonly headers?: Readonly<Record<string, string | string[]>>;
  /**
   * A plugin's own response body, sent exactly as given with `headers` (possibly empty);
   * absent, the answer is the proxy's JSON `{"error": category, "request_id"}`.
   */
  readonly body?: Uint8Array;
}

export type StageResult = Rejection | undefined;

/** A stage's work on one request, made once per snapshot when its chain compiles. */
export type RequestHook = (ctx: MiddlewareContext) => StageResult | Promise<StageResult>;

/** What a `plugin` stage calls; implementations live with the plugins. */
export interface PluginFilter {
  filter(ctx: MiddlewareContext): StageResult | Promise<StageResult>;
}

/** A rejection with one of the proxy's errors (ProxyError.X). */
export function rejection(
  error: { readonly category: ProxyErrorCategory; readonly status: number },
  headers?: Readonly<Record<string, string>>,
): Rejection {
  return headers === undefined
    ? { status: error.status, category: error.category }
    : { status: error.status, category: error.category, headers };
}
