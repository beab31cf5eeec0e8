/**
 * Header values as the cache reads them, and which response headers an entry keeps.
 */
import { HOP_BY_HOP } from "../proxy/headers.js";
import type { HeaderValue, RequestHeaders } from "./cache-request.js";

export type ResponseHeaders = RequestHeaders;
export type StoredHeaders = Readonly<Record<string, string | readonly string[]>>;

/**
 * Not kept: the hop-by-hop headers (the set proxy/headers.ts drops) and those named in
 * Connection, which belong to the upstream's hop; `age`, which is recomputed for every
 * answer; `set-cookie`, for responses that are never stored anyway.
 */
const NOT_KEPT: ReadonlySet<string> = new Set([...HOP_BY_HOP, "age", "set-cookie"]);

/** The first value of a header given once or several times. */
export function single(value: HeaderValue): string | undefined {
  return typeof value === "string" ? value : value?.[0];
}

/** All values of a header as one comma-separated list (RFC 9110 §5.3). */
export function joined(value: HeaderValue): string | undefined {
  return typeof value === "string" ? value : value?.join(", ");
}

/** The response headers an entry keeps, copied so later changes to the original do not leak in. */
export function storedHeaders(headers: ResponseHeaders): Record<string, string | readonly string[]> {
  const connection = joined(headers.connection);
  const named =
    connection === undefined
      ? undefined
      : connection
          .toLowerCase()
          .split(",")
          .map((t) => t.trim());
  const kept: Record<string, string | readonly string[]> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || name.charCodeAt(0) === 58 /* ":" */) continue;
    const lower = name.toLowerCase();
    if (NOT_KEPT.has(lower) || named?.includes(lower)) continue;
    kept[lower] = typeof value === "string" ? value : [...value];
  }
  return kept;
}

/** What the headers count towards an entry's size: names and values, as on the wire. */
export function headerBytes(headers: StoredHeaders): number {
  let bytes = 0;
  for (const name in headers) {
    const value = headers[name]!;
    if (typeof value === "string") bytes += name.length + value.length + 4;
    else for (const v of value) bytes += name.length + v.length + 4;
  }
  return bytes;
}
