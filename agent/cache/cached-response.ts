/**
 * A stored response as the integrator serves it: status, headers (with `Age`) and the body
 * chunks — written as they are for GET, left out for HEAD.
 */
import type { StoredHeaders } from "./cache-headers.js";
import { currentAgeSeconds } from "./freshness.js";

export interface CachedResponse {
  readonly status: number;
  /** Without hop-by-hop headers and `age`; shared by every answer, never to be changed. */
  readonly headers: StoredHeaders;
  readonly body: readonly Buffer[];
  /** Body and header bytes, as counted against `max_size`. */
  readonly size: number;
  readonly storedAt: number;
  readonly expiresAt: number;
  readonly initialAgeMs: number;
}

/** The headers of one answer from `entry`: a copy with its current `Age` (RFC 9111 §5.1). */
export function servedHeaders(
  entry: CachedResponse,
  now: number,
): Record<string, string | readonly string[]> {
  // Copied name by name: a spread copy that then gains `age` costs V8 a new hidden class per hit.
  const headers: Record<string, string | readonly string[]> = {};
  for (const name in entry.headers) headers[name] = entry.headers[name] as string | readonly string[];
  headers.age = String(currentAgeSeconds(entry, now));
  return headers;
}

/** Each entry's headers as a flat [name, value, …] list, made on its first hit. */
const headerLists = new WeakMap<CachedResponse, readonly string[]>();

/**
 * The same headers as `servedHeaders`, as a new flat [name, value, …] list that the caller may
 * extend: node writes a list it is given as it is. A hit written from a list took about 2 µs
 * less of the agent's CPU than from an object (27.5 → 25.8 µs in
 * test/bench/middleware-cache.bench.ts).
 */
export function servedHeaderList(entry: CachedResponse, now: number): string[] {
  let list = headerLists.get(entry);
  if (list === undefined) {
    const flat: string[] = [];
    for (const [name, value] of Object.entries(entry.headers)) {
      if (typeof value === "string") flat.push(name, value);
      else for (const one of value) flat.push(name, one);
    }
    list = flat;
    headerLists.set(entry, list);
  }
  const headers = list.slice();
  headers.push("age", String(currentAgeSeconds(entry, now)));
  return headers;
}
