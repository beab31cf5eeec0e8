/**
 * Header rewriting between client and upstream: hop-by-hop headers stay on their own hop
 * (RFC 9110 7.6.1), HTTP/2 pseudo-headers never leave, and the upstream learns who asked
 * through X-Forwarded-For/-Proto/-Host.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";

/** RFC 9110 §7.6.1: headers that belong to one connection, never forwarded or stored. */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "http2-settings",
]);

/** Headers named in Connection are hop-by-hop too. */
function connectionTokens(value: string | string[] | undefined): Set<string> | undefined {
  if (value === undefined) return undefined;
  // Nearly every message says only "keep-alive" or "close", neither of which names another
  // header: no set to build on the request path.
  if (typeof value === "string" && !value.includes(",")) {
    const token = value.trim().toLowerCase();
    if (token === "keep-alive" || token === "close") return undefined;
  }
  const tokens = new Set<string>();
  for (const part of Array.isArray(value) ? value : [value]) {
    for (const token of part.split(",")) tokens.add(token.trim().toLowerCase());
  }
  return tokens;
}

export interface ForwardedFor {
  readonly clientIp: string;
  readonly proto: "http" | "https";
  readonly host: string;
  readonly requestId: string;
}

/** The headers sent upstream for a client request. */
export function upstreamRequestHeaders(
  headers: IncomingHttpHeaders,
  forwarded: ForwardedFor,
): Record<string, string | string[]> {
  const dropped = connectionTokens(headers.connection);
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || name.charCodeAt(0) === 58 /* ":" */) continue;
    if (HOP_BY_HOP.has(name) || dropped?.has(name)) continue;
    out[name] = value;
  }
  // An HTTP/2 request names its host in :authority.
  if (out.host === undefined && forwarded.host !== "") out.host = forwarded.host;
  const prior = headers["x-forwarded-for"];
  out["x-forwarded-for"] = prior ? `${prior}, ${forwarded.clientIp}` : forwarded.clientIp;
  out["x-forwarded-proto"] = forwarded.proto;
  out["x-forwarded-host"] = forwarded.host;
  out["x-request-id"] = forwarded.requestId;
  return out;
}

/** The headers sent to the client for an upstream response. */
export function clientResponseHeaders(headers: IncomingHttpHeaders, requestId: string): OutgoingHttpHeaders {
  const dropped = connectionTokens(headers.connection);
  const out: OutgoingHttpHeaders = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || HOP_BY_HOP.has(name) || dropped?.has(name)) continue;
    out[name] = value;
  }
  out["x-request-id"] = requestId;
  return out;
}
