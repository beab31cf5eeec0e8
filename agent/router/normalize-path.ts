/**
 * The request-target and Host header as the router sees them. Called once per request by the
 * listener, before routing; the proxy forwards the normalized path upstream, so the route that
 * was chosen and the resource the upstream serves are always named by the same string.
 *
 * `normalizePath(target)` takes an origin-form request-target (`/a/../b?x=1`) and returns
 * `{ path, query }`, or `undefined` when the target must be refused (the caller answers 400):
 *
 * - It must start with "/". Absolute-form (`http://h/p`) is turned into origin-form by the
 *   caller; asterisk-form (`*`) and anything else is refused.
 * - The query is everything after the first "?", kept as written (raw, without the "?");
 *   a "#fragment" is dropped (clients should not send one; when they do it is not ours).
 * - Percent-escapes of unreserved characters (ALPHA, DIGIT, "-", ".", "_", "~") are decoded;
 *   every other escape is kept, with its hex uppercased. `%2F` therefore never becomes a
 *   segment separator, and `%25` is never decoded twice.
 * - Characters a path may not hold raw (space, `"`, `<`, `>`, `[`, `]`, `^`, backtick, `{`,
 *   `|`, `}`, and bytes 0x80–0xFF, which node's parser hands over one char per byte) are
 *   percent-encoded, so `/a b` and `/a%20b` are one path.
 * - Refused: `%00`, a malformed escape (`%4`, `%zz`), a raw control character (also in the
 *   query), a backslash (some upstreams read it as "/"), a character above U+00FF.
 * - Runs of "/" are merged into one, then dot segments are removed as RFC 3986 5.2.4 does
 *   (`/a/%2e%2e/b` → `/b`, `/../x` → `/x`, `/a/.` → `/a/`). Merging first means `/a//../b`
 *   is `/b`, as nginx with merge_slashes reads it.
 *
 * A path that needs none of this (the common case) is found so in one scan and kept as it is,
 * the target itself when there is no query.
 *
 * `hostOf(authority)` gives the host a route's `host` is compared with: lowercased, port
 * stripped, one trailing dot dropped (`Example.COM.:80` → `example.com`, so a fully-qualified
 * name cannot slip past a host-specific route), IPv6 kept in brackets (`[::1]:80` → `[::1]`),
 * "" when absent.
 */

// How each ASCII character is treated in a path.
/** Kept as is: unreserved, sub-delims, ":", "@", "/". */
const PLAIN_CHAR = 0;
/** A control character or a backslash: the target is refused. */
const REFUSED_CHAR = 1;
/** Not allowed raw in a path: percent-encoded. */
const ENCODED_CHAR = 2;
const PERCENT_CHAR = 3;

const PLAIN = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/";
const UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";
const HEX = "0123456789ABCDEF";

const CLASS = (() => {
  const table = new Uint8Array(128).fill(ENCODED_CHAR);
  for (let c = 0; c < 0x20; c++) table[c] = REFUSED_CHAR;
  table[0x7f] = REFUSED_CHAR;
  table[0x5c] = REFUSED_CHAR; // "\"
  table[0x25] = PERCENT_CHAR;
  for (const ch of PLAIN) table[ch.charCodeAt(0)] = PLAIN_CHAR;
  return table;
})();

const IS_UNRESERVED = (() => {
  const table = new Uint8Array(128);
  for (const ch of UNRESERVED) table[ch.charCodeAt(0)] = 1;
  return table;
})();

const SLASH = 0x2f;
const DOT = 0x2e;

export interface NormalizedTarget {
  /** Starts with "/", without dot segments or repeated slashes, escapes in canonical form. */
  readonly path: string;
  /** The raw query, without "?"; "" when absent. */
  readonly query: string;
}

export function normalizePath(target: string): NormalizedTarget | undefined {
  if (target.charCodeAt(0) !== SLASH) return undefined;
  const hash = target.indexOf("#");
  const end = hash < 0 ? target.length : hash;
  const question = target.indexOf("?");
  const pathEnd = question >= 0 && question < end ? question : end;
  const query = pathEnd < end ? target.slice(pathEnd + 1, end) : "";
  if (query !== "" && hasControl(query)) return undefined;

  const raw = pathEnd === target.length ? target : target.slice(0, pathEnd);
  if (isNormal(raw)) return { path: raw, query };
  const decoded = canonicalEscapes(raw);
  if (decoded === undefined) return undefined;
  return { path: removeDotSegments(decoded.replace(/\/{2,}/g, "/")), query };
}

/** The fast path: only plain characters, no "//" and no "." or ".." segment. */
function isNormal(path: string): boolean {
  const length = path.length;
  for (let i = 0; i < length; i++) {
    const c = path.charCodeAt(i);
    if (c >= 128 || CLASS[c] !== PLAIN_CHAR) return false;
    if (c === SLASH && i + 1 < length) {
      const next = path.charCodeAt(i + 1);
      if (next === SLASH || (next === DOT && isDotSegmentAt(path, i + 1))) return false;
    }
  }
  return true;
}

/** Whether the segment starting at `start` is "." or "..". */
function isDotSegmentAt(path: string, start: number): boolean {
  let end = start;
  while (end < path.length && path.charCodeAt(end) === DOT) end++;
  const dots = end - start;
  return (dots === 1 || dots === 2) && (end === path.length || path.charCodeAt(end) === SLASH);
}

function hasControl(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

/**
 * Decodes the escapes of unreserved characters, uppercases the others, encodes what may not
 * appear raw; undefined when the path is refused.
 */
function canonicalEscapes(path: string): string | undefined {
  let out = "";
  let copied = 0; // path[copied, i) is still to be appended as is
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    const kind = c < 128 ? CLASS[c] : c <= 0xff ? ENCODED_CHAR : REFUSED_CHAR;
    if (kind === PLAIN_CHAR) continue;
    if (kind === REFUSED_CHAR) return undefined;
    out += path.slice(copied, i);
    if (kind === ENCODED_CHAR) {
      out += percentEncoded(c);
      copied = i + 1;
      continue;
    }
    const byte = hexByte(path, i + 1);
    if (byte === undefined || byte === 0) return undefined;
    out += IS_UNRESERVED[byte] === 1 ? String.fromCharCode(byte) : percentEncoded(byte);
    i += 2;
    copied = i + 1;
  }
  return out + path.slice(copied);
}

function percentEncoded(byte: number): string {
  return `%${HEX[byte >> 4]}${HEX[byte & 15]}`;
}

function hexByte(text: string, at: number): number | undefined {
  const high = hexDigit(text.charCodeAt(at));
  const low = hexDigit(text.charCodeAt(at + 1));
  return high < 0 || low < 0 ? undefined : high * 16 + low;
}

/** -1 for anything but a hex digit (NaN past the end included). */
function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}

/** RFC 3986 5.2.4 for an absolute path: "." and ".." segments resolved, never above "/". */
function removeDotSegments(path: string): string {
  const segments = path.split("/");
  const out: string[] = [];
  // segments[0] is the empty string before the leading "/".
  for (let i = 1; i < segments.length; i++) {
    const segment = segments[i] as string;
    const last = i === segments.length - 1;
    if (segment === "." || segment === "..") {
      if (segment === "..") out.pop();
      // A trailing dot segment still names a directory: "/a/." is "/a/".
      if (last) out.push("");
    } else out.push(segment);
  }
  return `/${out.join("/")}`;
}

export function hostOf(authority: string | undefined): string {
  if (authority === undefined || authority === "") return "";
  let host: string;
  if (authority.charCodeAt(0) === 0x5b /* "[" */) {
    const close = authority.indexOf("]");
    host = close < 0 ? authority : authority.slice(0, close + 1);
  } else {
    const colon = authority.indexOf(":");
    host = colon < 0 ? authority : authority.slice(0, colon);
    if (host.charCodeAt(host.length - 1) === DOT) host = host.slice(0, -1);
  }
  return host.toLowerCase();
}

/**
 * Whether the request carries more than one Host field line. RFC 9112 §3.2 has the server
 * refuse it (400): node keeps the first, and a proxy or upstream that kept another would route
 * the same bytes elsewhere.
 */
export function hasDuplicateHost(rawHeaders: readonly string[]): boolean {
  let seen = false;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string;
    if (name.length !== 4 || name.toLowerCase() !== "host") continue;
    if (seen) return true;
    seen = true;
  }
  return false;
}
