/**
 * Cache keys. An entry is found in two steps:
 *
 * - the primary key: the method class (GET and HEAD share one, the only one stored), the host
 *   and the path with its query as given; with `auth_aware`, plus a SHA-256 of the request's
 *   Authorization and Cookie values when it has either, so an entry stored for one
 *   credential is never found with another (or with none);
 * - the variant: the request's values of the entry's vary names — the response's `Vary`
 *   plus the route's `vary_headers` (RFC 9111 §4.1).
 */
import { createHash } from "node:crypto";
import { joined } from "./cache-headers.js";
import type { CachePolicy } from "./cache-policy.js";
import type { CacheRequest, HeaderValue, RequestHeaders } from "./cache-request.js";

/** The key of a URL's entries without credentials; unsafe methods invalidate through it. */
export function urlKey(request: CacheRequest): string {
  return `GET ${request.host} ${request.path}`;
}

/** The key a request's entries are stored under. */
export function primaryKey(policy: CachePolicy, request: CacheRequest): string {
  const url = urlKey(request);
  if (!policy.authAware) return url;
  const credential = credentialHash(request.headers);
  return credential === undefined ? url : `${url} ${credential}`;
}

/** SHA-256 of the request's credentials, or undefined when it has none. */
export function credentialHash(headers: RequestHeaders): string | undefined {
  const authorization = headers.authorization;
  const cookie = headers.cookie;
  if (authorization === undefined && cookie === undefined) return undefined;
  return createHash("sha256")
    .update(`${joined(authorization) ?? ""}\n${joined(cookie) ?? ""}`)
    .digest("base64url");
}

const NONE: readonly string[] = Object.freeze([]);

/**
 * The request headers an entry varies on: the response's `Vary` and the route's
 * `vary_headers`, lowercased, sorted, without repeats; "*" when `Vary: *`.
 */
export function varyNames(policy: CachePolicy, vary: HeaderValue): readonly string[] | "*" {
  const listed = joined(vary);
  if (listed === undefined || listed.trim() === "")
    return policy.varyHeaders.length === 0 ? NONE : policy.varyHeaders;
  const names = new Set(policy.varyHeaders);
  for (const part of listed.split(",")) {
    const name = part.trim().toLowerCase();
    if (name === "*") return "*";
    if (name !== "") names.add(name);
  }
  return [...names].sort();
}

/**
 * The request's values of `names` as one string, equal for two requests exactly when each
 * header is absent in both or present in both with the same normalized value: repeated
 * headers combined, spaces around list commas removed.
 */
export function varyValues(names: readonly string[], headers: RequestHeaders): string {
  if (names.length === 0) return "";
  let values = "";
  for (const name of names) {
    const value = joined(headers[name]);
    // Values cannot contain a newline; "=" tells an empty value from an absent one.
    values += value === undefined ? "\n" : `=${normalize(value)}\n`;
  }
  return values;
}

function normalize(value: string): string {
  return value.includes(",")
    ? value
        .split(",")
        .map((part) => part.trim())
        .join(",")
    : value.trim();
}
