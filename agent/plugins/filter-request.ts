/**
 * Describes a request to an external filter: the FilterRequest message of filter.proto, built
 * from the plugin context once per call.
 */
import type { IncomingMessage } from "node:http";
import type { Http2ServerRequest } from "node:http2";
import type { TLSSocket } from "node:tls";
import type { ConnectionTls, FilterRequest, HttpHeader } from "../../proto/coherent/v1/filter.js";
import type { PluginContext } from "./plugin.js";

const PLAINTEXT: ConnectionTls = Object.freeze({ encrypted: false, clientCertSubject: "" });
const TLS_WITHOUT_CERT: ConnectionTls = Object.freeze({ encrypted: true, clientCertSubject: "" });

/**
 * Client certificate facts per connection: reading the certificate allocates, and every
 * request of a keep-alive connection or an HTTP/2 session would read the same one.
 */
const certified = new WeakMap<object, ConnectionTls>();

export function filterRequest(ctx: PluginContext): FilterRequest {
  const req = ctx.req;
  const host = req.headers.host ?? req.headers[":authority"];
  return {
    requestId: ctx.requestId,
    routeId: ctx.routeId,
    method: req.method ?? "",
    path: ctx.path ?? req.url ?? "",
    host: typeof host === "string" ? host : "",
    clientAddress: req.socket.remoteAddress ?? "",
    headers: headerList(ctx.upstreamHeaders),
    tls: connectionTls(req),
    jwtClaimsJson: ctx.claims === undefined ? undefined : JSON.stringify(ctx.claims),
  };
}

/** One entry per value, so a repeated header reaches the filter as sent. */
function headerList(headers: Readonly<Record<string, string | string[]>>): HttpHeader[] {
  const list: HttpHeader[] = [];
  for (const name in headers) {
    const value = headers[name];
    if (typeof value === "string") list.push({ name, value });
    else if (value !== undefined) for (const one of value) list.push({ name, value: one });
  }
  return list;
}

export function connectionTls(req: IncomingMessage | Http2ServerRequest): ConnectionTls {
  const socket = req.socket as Partial<TLSSocket>;
  if (socket.encrypted !== true) return PLAINTEXT;
  // Only a certificate the listener verified says who the client is.
  if (socket.authorized !== true) return TLS_WITHOUT_CERT;
  // An HTTP/2 request's socket is a new proxy per stream; its session is per connection.
  const connection: object = ("stream" in req ? req.stream.session : undefined) ?? req.socket;
  let facts = certified.get(connection);
  if (facts === undefined) {
    const subject = socket.getPeerX509Certificate?.()?.subject ?? "";
    facts =
      subject === "" ? TLS_WITHOUT_CERT : Object.freeze({ encrypted: true, clientCertSubject: subject });
    certified.set(connection, facts);
  }
  return facts;
}
