/**
 * The closed set of errors the proxy itself answers with. Each category is the `error` field
 * of the JSON body, a label value of the error metrics, and has one HTTP status. Everything
 * that goes wrong in the request path ends as one of these, in proxy/respond.ts.
 */
export const ProxyError = {
  BadRequest: { category: "bad_request", status: 400 },
  Unauthorized: { category: "unauthorized", status: 401 },
  TlsRequired: { category: "tls_required", status: 403 },
  /** A plugin's filter answered the request itself (its own status, 403 by default, and body). */
  PluginDenied: { category: "plugin_denied", status: 403 },
  MtlsRequired: { category: "mtls_required", status: 403 },
  NoRoute: { category: "no_route", status: 404 },
  /** The request head did not arrive within read_header_timeout (slowloris). */
  RequestTimeout: { category: "request_timeout", status: 408 },
  PayloadTooLarge: { category: "payload_too_large", status: 413 },
  RateLimited: { category: "rate_limited", status: 429 },
  HeadersTooLarge: { category: "headers_too_large", status: 431 },
  UpstreamConnectFailed: { category: "upstream_connect_failed", status: 502 },
  /** The upstream closed or reset the connection, or answered with something that is not HTTP. */
  UpstreamReset: { category: "upstream_reset", status: 502 },
  CircuitOpen: { category: "circuit_open", status: 503 },
  Overloaded: { category: "overloaded", status: 503 },
  /** A `fail_mode: closed` plugin failed: its call errored, timed out or answered nonsense. */
  PluginUnavailable: { category: "plugin_unavailable", status: 503 },
  NoHealthyUpstream: { category: "no_healthy_upstream", status: 503 },
  UpstreamTimeout: { category: "upstream_timeout", status: 504 },
} as const;

export type ProxyErrorKind = (typeof ProxyError)[keyof typeof ProxyError];
export type ProxyErrorCategory = ProxyErrorKind["category"];

/**
 * An answer the proxy makes: one of the above, or the same shape with another status (a
 * plugin's own deny status) and optionally a body of its own.
 */
export interface ErrorAnswer {
  readonly category: ProxyErrorCategory;
  readonly status: number;
  readonly headers?: Readonly<Record<string, string | string[]>>;
  /** Sent as given instead of the JSON error body. */
  readonly body?: Uint8Array;
}
