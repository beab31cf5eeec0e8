/**
 * Turns an external filter's FilterResponse into the stage's result: an allow's header edits
 * applied to the upstream headers, or a deny as a rejection. A response that breaks the
 * contract (no decision, an invalid or protected header, a status out of range) is MALFORMED,
 * checked in full before anything is applied, so a broken filter never half-edits a request.
 */
import type { FilterAllow, FilterDeny, FilterResponse, HttpHeader } from "../../proto/coherent/v1/filter.js";
import { PluginError, type PluginRejection, type StageResult } from "./plugin.js";

export const MALFORMED: unique symbol = Symbol("malformed filter response");

/** RFC 9110 token characters. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;
/** What Node refuses in a header value (its own check), so the response can always be sent. */
const INVALID_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
/**
 * Headers the proxy owns: hop-by-hop ones and the message framing. A filter changing them
 * would break the connection rather than the request. `__proto__` would edit the header
 * object's prototype instead of a header.
 */
const PROTECTED = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "http2-settings",
  "content-length",
  "__proto__",
]);

/** Called with the response of a successful call; `upstreamHeaders` is changed only on allow. */
export function applyDecision(
  response: FilterResponse,
  upstreamHeaders: Record<string, string | string[]>,
): StageResult | typeof MALFORMED {
  const decision = response.decision;
  if (decision === undefined) return MALFORMED;
  if (decision.$case === "deny") return denial(decision.value);
  return applyAllow(decision.value, upstreamHeaders) ? undefined : MALFORMED;
}

function applyAllow(allow: FilterAllow, headers: Record<string, string | string[]>): boolean {
  for (const name of allow.removeHeaders) if (!editableName(name)) return false;
  if (!validHeaders(allow.setHeaders) || !validHeaders(allow.addHeaders)) return false;
  for (const name of allow.removeHeaders) delete headers[name.toLowerCase()];
  for (const header of allow.setHeaders) delete headers[header.name.toLowerCase()];
  for (const header of allow.setHeaders) append(headers, header.name.toLowerCase(), header.value);
  for (const header of allow.addHeaders) append(headers, header.name.toLowerCase(), header.value);
  return true;
}

function denial(deny: FilterDeny): PluginRejection | typeof MALFORMED {
  const status = deny.status === 0 ? PluginError.Denied.status : deny.status;
  if (status < 200 || status > 599 || !validHeaders(deny.headers)) return MALFORMED;
  const headers: Record<string, string | string[]> = {};
  for (const header of deny.headers) append(headers, header.name.toLowerCase(), header.value);
  return { status, category: PluginError.Denied.category, headers, body: deny.body };
}

function editableName(name: string): boolean {
  const lower = name.toLowerCase();
  return TOKEN.test(lower) && !PROTECTED.has(lower);
}

function validHeaders(headers: readonly HttpHeader[]): boolean {
  for (const header of headers) {
    if (!editableName(header.name) || INVALID_VALUE.test(header.value)) return false;
  }
  return true;
}

function append(headers: Record<string, string | string[]>, name: string, value: string): void {
  // Only own properties are headers: "constructor" must not find Object's.
  const prior = Object.hasOwn(headers, name) ? headers[name] : undefined;
  // A copy, not a push: the array may be shared with the client request's own headers.
  headers[name] =
    prior === undefined ? value : typeof prior === "string" ? [prior, value] : [...prior, value];
}
