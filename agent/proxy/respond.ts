/**
 * The one place where the proxy answers on its own: every error category of ../errors.ts
 * becomes the same JSON shape, `{"error", "request_id"}`, with its status.
 */
import { type ServerResponse, STATUS_CODES } from "node:http";
import type { Http2ServerResponse } from "node:http2";
import type { Duplex } from "node:stream";
import type { ErrorAnswer } from "../errors.js";

export type ClientResponse = ServerResponse | Http2ServerResponse;

/**
 * Answers with the error, or — when the response has already started and a status can no
 * longer be sent — cuts the connection, so the client sees a failure and never a truncated
 * body passed off as complete.
 */
export function respondError(
  res: ClientResponse,
  error: ErrorAnswer,
  requestId: string,
  headers: Readonly<Record<string, string | string[]>> | undefined = error.headers,
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (error.body !== undefined) {
    // A plugin's own answer: its headers and body as given.
    res.writeHead(error.status, {
      ...headers,
      "content-length": error.body.byteLength,
      "x-request-id": requestId,
    });
    res.end(error.body);
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
export function writeRawError(socket: Duplex, error: ErrorAnswer, requestId: string): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = `{"error":"${error.category}","request_id":${JSON.stringify(requestId)}}`;
  socket.end(
    `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? ""}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nx-request-id: ${requestId}\r\nconnection: close\r\n\r\n${body}`,
  );
}
