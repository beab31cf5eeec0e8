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
  const headers: Record<string, string | readonly string[]> = { ...entry.headers };
  headers.age = String(currentAgeSeconds(entry, now));
  return headers;
}
