/**
 * Connection upgrades (WebSocket): routed like any request and passed through the route's
 * middleware chain, then the upstream's 101 is relayed and the two sockets are joined until
 * either side closes. The proxy does not look at the frames. undici writes the Connection and
 * Upgrade headers itself.
 */
import { randomUUID } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import type { Duplex } from "node:stream";
import type { Logger } from "../../services/telemetry/logger.js";
import { ProxyError } from "../errors.js";
import type { StageResult } from "../middleware/middleware.js";
import { hostOf } from "../router/normalize-path.js";
import type { ClientRequest, SnapshotSource } from "./engine.js";
import { routeRequest } from "./engine.js";
import { upstreamRequestHeaders } from "./headers.js";
import { writeRawError } from "./respond.js";

export function handleUpgrade(
  snapshots: SnapshotSource,
  req: ClientRequest,
  socket: Duplex,
  head: Buffer,
  logger: Logger,
): void {
  socket.on("error", () => socket.destroy());
  const requestId = randomUUID();
  const method = req.method ?? "GET";
  const authority = typeof req.headers.host === "string" ? req.headers.host : "";
  const routed = routeRequest(snapshots.current, req, hostOf(authority), method);
  if ("refused" in routed) {
    writeRawError(socket, routed.refused, requestId);
    return;
  }
  const { route, target, encrypted } = routed;
  const path = target.query === "" ? target.path : `${target.path}?${target.query}`;
  const headers = upstreamRequestHeaders(req.headers, {
    clientIp: req.socket.remoteAddress ?? "",
    proto: encrypted ? "https" : "http",
    host: authority,
    requestId,
  });
  const connect = () => {
    const index = route.pool.balancer.pick();
    const endpoint = route.pool.endpoints[index];
    if (!endpoint) {
      writeRawError(socket, ProxyError.NoHealthyUpstream, requestId);
      return;
    }
    endpoint.metrics.requests.inc();
    endpoint.dispatcher
      .upgrade({ path, method, headers, protocol: String(req.headers.upgrade ?? "websocket") })
      .then(({ headers: answer, socket: upstream }) => {
        if (socket.destroyed) {
          upstream.destroy();
          return;
        }
        socket.write(
          `HTTP/1.1 101 Switching Protocols\r\n${headerLines(answer)}x-request-id: ${requestId}\r\n\r\n`,
        );
        if (head.length > 0) upstream.write(head);
        upstream.on("error", () => socket.destroy());
        upstream.pipe(socket);
        socket.pipe(upstream);
        socket.once("close", () => upstream.destroy());
        upstream.once("close", () => socket.destroy());
      })
      .catch((error: Error & { code?: string }) => {
        logger.debug({ err: error, route: route.id }, "upgrade failed upstream");
        writeRawError(
          socket,
          error.code === "ECONNREFUSED" ? ProxyError.UpstreamConnectFailed : ProxyError.UpstreamReset,
          requestId,
        );
      });
  };
  // An upgrade passes the route's middleware like any request: auth, limits and plugins
  // must not be a door a WebSocket handshake walks around.
  const chain = route.chain;
  if (!chain) {
    connect();
    return;
  }
  const next = (rejection: StageResult) =>
    rejection ? writeRawError(socket, rejection, requestId) : connect();
  const result = chain.run({ req, requestId, routeId: route.id, upstreamHeaders: headers, path });
  if (result instanceof Promise) {
    result.then(next).catch((error: unknown) => {
      logger.error({ err: error, route: route.id }, "middleware failed on an upgrade");
      writeRawError(socket, ProxyError.UpstreamReset, requestId);
    });
  } else next(result);
}

function headerLines(headers: IncomingHttpHeaders): string {
  let out = "";
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || name === "x-request-id") continue;
    for (const item of Array.isArray(value) ? value : [value]) out += `${name}: ${item}\r\n`;
  }
  return out;
}
