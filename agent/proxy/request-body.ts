/**
 * The request body as sent upstream: none, the request itself, or — when the route limits
 * body size and the client did not declare a length — the request through a counter that
 * fails once past the limit (413), so nothing is buffered to enforce it.
 */
import { type Readable, Transform } from "node:stream";
import type { ClientRequest } from "./engine.js";

export function requestBody(
  req: ClientRequest,
  length: number | undefined,
  limit: number | undefined,
): Readable | null {
  const chunked = req.headers["transfer-encoding"] !== undefined;
  const h2Body = "stream" in req && !req.stream.endAfterHeaders && length === undefined;
  if (!(chunked || h2Body || (length !== undefined && length > 0))) return null;
  if (limit === undefined || length !== undefined) return req;
  return req.pipe(new ByteLimit(limit));
}

export class ByteLimit extends Transform {
  bytes = 0;
  constructor(private readonly limit: number) {
    super();
  }
  override _transform(
    chunk: Buffer,
    _encoding: BufferEncoding,
    done: (error?: Error | null, data?: Buffer) => void,
  ) {
    this.bytes += chunk.length;
    if (this.bytes > this.limit) {
      done(
        Object.assign(new Error("request body over the route's limit"), { code: "COHERENT_BODY_TOO_LARGE" }),
      );
    } else done(null, chunk);
  }
}
