/**
 * The one place where the proxy answers on its own: every error category of ../errors.ts
 * becomes the same JSON shape, `{"error", "request_id"}`, with its status.
 */
import { type ServerResponse, STATUS_CODES } from "node:http";
import type { Http2ServerResponse } from "node:http2";
import type { Duplex } from "node:stream";
import type { ProxyErrorKind } from "../errors.js";

export type ClientResponse = ServerResponse | Http2ServerResponse;

/**
 * Answers with the error, or — when the response has already started and a status can no
 * longer be sent — cuts the connection, so the client sees a failure and never a truncated
 * body passed off as complete.
 */
export function respondError(
  res: ClientResponse,
  error: ProxyErrorKind,
  requestId: string,
  headers?: Record<string, string>,
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = `{"error":"${error.category}","request_id":${JSON.stringify(requestId)}}`;
  res.writeHead(error.status, {
    ...headers,
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
    "x-request-id": requestId,
  });
  res.end(body);
}

/**
 * The same answer written straight to a socket, for the cases that have no response object:
 * a request Node could not parse, and a refused upgrade. The connection closes after it.
 */
export function writeRawError(socket: Duplex, error: ProxyErrorKind, requestId: string): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = `{"error":"${error.category}","request_id":${JSON.stringify(requestId)}}`;
  socket.end(
    `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? ""}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nx-request-id: ${requestId}\r\nconnection: close\r\n\r\n${body}`,
  );
}
