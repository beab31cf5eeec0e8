/**
 * The `request_id` stage. With the default header, X-Request-Id, there is nothing left to do:
 * the engine already takes the client's id when it is well formed, makes one otherwise, and
 * sends it upstream. With another `header`, that header is honoured the same way and, when
 * missing or malformed, set to the request's id, so upstream and the proxy's logs agree.
 */
import type { RequestHook } from "../middleware.js";

export const DEFAULT_REQUEST_ID_HEADER = "x-request-id";

/** What the engine accepts as a client's request id: 1 to 128 visible ASCII characters. */
const REQUEST_ID = /^[\x21-\x7e]{1,128}$/;

export function compileRequestIdStage(
  config: { readonly header?: string } | undefined,
): RequestHook | undefined {
  const name = config?.header?.toLowerCase() ?? DEFAULT_REQUEST_ID_HEADER;
  if (name === DEFAULT_REQUEST_ID_HEADER) return undefined;
  return (ctx) => {
    const given = ctx.req.headers[name];
    // A repeated header is collapsed to its first value, or the id when that one is unusable.
    const first = Array.isArray(given) ? given[0] : given;
    ctx.upstreamHeaders[name] = first !== undefined && REQUEST_ID.test(first) ? first : ctx.requestId;
    return undefined;
  };
}
