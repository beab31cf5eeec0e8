/**
 * The compiled router: built once per snapshot from the config's validated, canonical routes,
 * then asked on every request which route serves it. `match` returns the route's index in the
 * list given to `compileRouter`, or -1 (the caller answers 404 no_route). It never throws and
 * never awaits.
 *
 * The request is described by `RouteRequest`: host from `hostOf`, path and query from
 * `normalizePath` (./normalize-path.ts), so routes are compared with exactly the path the
 * proxy forwards upstream.
 *
 * Contract — which route wins:
 *
 * 1. Host buckets are tried in this order; when no route of a bucket matches, the next one is
 *    tried (fall-through):
 *    a. the exact host (`api.example.com`), by hash lookup;
 *    b. wildcard hosts, one bucket per suffix, longest suffix first: `*.example.com` matches
 *       `a.example.com` and `a.b.example.com`, not `example.com`;
 *    c. regex hosts, each distinct pattern one bucket, tried in the order the patterns first
 *       appear in the route list; a pattern matches the whole host (`^(?:pattern)$`),
 *       case-insensitively;
 *    d. routes without a host, or with host "*".
 *    A port written in an exact or wildcard host (`api.example.com:8443`) is ignored: the
 *    request's host has none, so such a route matches that name on any port.
 * 2. Within a bucket, path conditions are tried in this order:
 *    a. exact `path`, by hash lookup;
 *    b. `path_prefix`, longest first; a plain string prefix, as Envoy's: `/v1` matches `/v1`,
 *       `/v1/x` and `/v1x` (write `/v1/` to mean the directory);
 *    c. `path_regex`, as a JavaScript RegExp searching the path (`RegExp.test`): it is anchored
 *       only where the pattern says so (`^/v[0-9]+/.*`), exactly as written;
 *    d. routes without a path condition, which match every path.
 *    Route paths and prefixes are normalized like request paths when compiled (so
 *    `/%7euser/./x` means `/~user/x`); regexes are matched against the normalized path.
 * 3. Several candidates at the same step (the same exact path, the same prefix, several
 *    regexes, several routes without a path) are tried in declaration order. A candidate is
 *    taken only when its `methods`, `headers` and `query` conditions hold as well; otherwise
 *    the next candidate, then the next step, then the next bucket is tried.
 *
 * Header and query conditions: a string is an exact, case-sensitive value; `{prefix}` a
 * string prefix; `{regex}` a RegExp search like `path_regex`; `{present: true}` requires the
 * field, with any value, `{present: false}` its absence. When a field has several values
 * (node gives `set-cookie` as an array, a repeated query key has several), the condition holds
 * when any value matches. Node joins other repeated headers into one "a, b" value, and that
 * joined value is what is compared. Query keys and values are compared after
 * application/x-www-form-urlencoded decoding (`a%20b` and `a+b` are "a b"); the query is
 * parsed only when a candidate has query conditions.
 *
 * A route whose `path` or `path_prefix` cannot be normalized (it holds "?", "#", "%00", a
 * backslash…) can match no request and is left out. A request method that no route names
 * matches only routes without `methods`.
 *
 * Cost per request: one host lookup; one lookup per dot of the host whose suffix length some
 * wildcard has; the regex hosts only when the earlier buckets miss. Within a bucket: one path
 * lookup (skipped when no exact path has the request path's length), one walk down a crit-bit
 * tree of the bucket's prefixes, then that bucket's regexes, each behind cheap checks of the
 * plain text any match must start with, end with or contain. No route list is scanned, and
 * nothing is allocated but wildcard suffixes and, for query conditions, the parsed query.
 * With thousands of routes a lookup costs mostly cache misses, so the compiled form keeps the
 * memory it touches small and shared: a step with a single unconditional route holds just its
 * index; a bucket's exact paths are one hash table over a typed array and its prefixes one
 * array, each with its keys joined into one string, which lookups in the bucket keep cached
 * (a key string of its own per route would be fetched from memory nearly every time); each
 * regex list keeps an entry's fields side by side.
 */
import type { IncomingHttpHeaders } from "node:http";
import { hostPatternKind, type Route } from "../../services/config/index.js";
import { normalizePath } from "./normalize-path.js";

export interface RouteRequest {
  /** Lowercased, port stripped ("" when absent): `hostOf(authority)`. */
  readonly host: string;
  /** The normalized path without the query: `normalizePath(target).path`. */
  readonly path: string;
  /** Uppercase. */
  readonly method: string;
  /** Node's lowercase-keyed headers. */
  readonly headers: IncomingHttpHeaders;
  /** The raw query string without "?", "" when absent. */
  readonly query: string;
}

export interface Router {
  /** Index of the chosen route in the list given to compileRouter, or -1 when none matches. */
  match(request: RouteRequest): number;
}

export function compileRouter(routes: readonly Route[]): Router {
  const methodBits = methodBitsOf(routes);
  const hosts = new HostTableBuilder();
  for (let index = 0; index < routes.length; index++) {
    const route = routes[index] as Route;
    hosts.bucketFor(route.host).add(route, compileCandidate(route, index, methodBits));
  }
  return new CompiledRouter(hosts, methodBits);
}

// ---------------------------------------------------------------------------------------------
// Candidates: a route's index and its non-path conditions

/** A request method no route names; only routes without `methods` accept it. */
const OTHER_METHOD = 1 << 30;
/** The method mask of a route without `methods`: every bit, OTHER_METHOD included. */
const ANY_METHOD = -1;

/** One bit per method some route names, so a route's methods check is one AND. */
function methodBitsOf(routes: readonly Route[]): ReadonlyMap<string, number> {
  const bits = new Map<string, number>();
  for (const route of routes) {
    for (const method of route.methods ?? []) {
      if (!bits.has(method)) bits.set(method, 1 << bits.size);
    }
  }
  return bits;
}

const EXACT = 0;
const PREFIX = 1;
const REGEX = 2;
const PRESENT = 3;
const ABSENT = 4;

type ValueMatch = Exclude<NonNullable<Route["headers"]>[string], undefined>;

/** A header or query condition; one shape for every kind, so the checks stay monomorphic. */
class FieldCondition {
  constructor(
    readonly name: string,
    readonly kind: number,
    readonly text: string,
    readonly regex: RegExp | null,
  ) {}

  static of(name: string, match: ValueMatch): FieldCondition {
    const key = internalized(name);
    if (typeof match === "string") return new FieldCondition(key, EXACT, match, null);
    if ("prefix" in match) return new FieldCondition(key, PREFIX, match.prefix, null);
    if ("regex" in match) return new FieldCondition(key, REGEX, "", new RegExp(match.regex));
    return new FieldCondition(key, match.present ? PRESENT : ABSENT, "", null);
  }

  /** Whether a field with these values (undefined: absent) satisfies the condition. */
  holds(values: string | readonly string[] | undefined): boolean {
    if (values === undefined) return this.kind === ABSENT;
    if (typeof values === "string") return this.accepts(values);
    if (values.length === 0) return this.kind === ABSENT;
    for (const value of values) if (this.accepts(value)) return true;
    return false;
  }

  private accepts(value: string): boolean {
    switch (this.kind) {
      case EXACT:
        return value === this.text;
      case PREFIX:
        return value.startsWith(this.text);
      case REGEX:
        return (this.regex as RegExp).test(value);
      case PRESENT:
        return true;
      default:
        return false;
    }
  }
}

/**
 * The same string, as V8's interned copy: `headers[name]` with a name that is not interned
 * looks it up in the engine's string table on every access.
 */
function internalized(name: string): string {
  return Object.keys({ [name]: true })[0] as string;
}

/**
 * A route as a candidate of one path step. Candidates of the same step (the same exact path,
 * the same prefix) are chained through `next` in declaration order.
 */
class Candidate {
  next: Candidate | null = null;

  constructor(
    readonly index: number,
    readonly methods: number,
    readonly headers: readonly FieldCondition[] | null,
    readonly query: readonly FieldCondition[] | null,
  ) {}
}

function compileCandidate(route: Route, index: number, methodBits: ReadonlyMap<string, number>): Candidate {
  let methods = ANY_METHOD;
  if (route.methods !== undefined) {
    methods = 0;
    for (const method of route.methods) methods |= methodBits.get(method) as number;
  }
  return new Candidate(index, methods, conditionsOf(route.headers), conditionsOf(route.query));
}

function conditionsOf(map: Readonly<Record<string, ValueMatch>> | undefined): FieldCondition[] | null {
  if (map === undefined) return null;
  const conditions = Object.entries(map).map(([name, match]) => FieldCondition.of(name, match));
  return conditions.length === 0 ? null : conditions;
}

/**
 * What a lookup step holds for a path: the route's index itself when the first candidate has
 * no conditions (nothing to check, so nothing more to load from memory), else the chain.
 */
type Choice = number | Candidate;

/** Chains candidates in declaration order, up to the first without conditions (it always wins). */
function chain(candidates: readonly Candidate[]): Choice {
  const first = candidates[0] as Candidate;
  if (isUnconditional(first)) return first.index;
  let last = first;
  for (let i = 1; i < candidates.length && !isUnconditional(last); i++) {
    last.next = candidates[i] as Candidate;
    last = last.next;
  }
  return first;
}

function isUnconditional(candidate: Candidate): boolean {
  return candidate.methods === ANY_METHOD && candidate.headers === null && candidate.query === null;
}

const NO_REQUEST: RouteRequest = { host: "", path: "/", method: "", headers: {}, query: "" };

/**
 * What the candidates of one lookup share: the request, and its method bit and parsed query,
 * each worked out the first time a candidate needs it (most routes have no conditions). One
 * per router, reset by each `match`: a lookup runs to completion before the next starts, so
 * it is never shared by two.
 */
class Lookup {
  request: RouteRequest = NO_REQUEST;
  #methodBit = 0;
  #queryText = "";
  #query: URLSearchParams | null = null;

  constructor(readonly methodBits: ReadonlyMap<string, number>) {}

  start(request: RouteRequest): void {
    this.request = request;
    this.#methodBit = 0;
  }

  methodBit(): number {
    if (this.#methodBit === 0) this.#methodBit = this.methodBits.get(this.request.method) ?? OTHER_METHOD;
    return this.#methodBit;
  }

  query(): URLSearchParams {
    // Keyed by the string, so a request with the same query as the last one reuses the parse.
    if (this.#query === null || this.#queryText !== this.request.query) {
      this.#queryText = this.request.query;
      this.#query = new URLSearchParams(this.#queryText);
    }
    return this.#query;
  }
}

function accepts(candidate: Candidate, lookup: Lookup): boolean {
  if (candidate.methods !== ANY_METHOD && (candidate.methods & lookup.methodBit()) === 0) return false;
  const headers = candidate.headers;
  if (headers !== null) {
    const requestHeaders = lookup.request.headers;
    for (let i = 0; i < headers.length; i++) {
      const condition = headers[i] as FieldCondition;
      if (!condition.holds(requestHeaders[condition.name])) return false;
    }
  }
  const query = candidate.query;
  if (query !== null) {
    const params = lookup.query();
    for (let i = 0; i < query.length; i++) {
      const condition = query[i] as FieldCondition;
      if (!condition.holds(params.getAll(condition.name))) return false;
    }
  }
  return true;
}

/** The first candidate of the chain, in declaration order, whose conditions hold; -1 when none. */
function firstAccepted(choice: Choice | null, lookup: Lookup): number {
  if (typeof choice === "number") return choice;
  for (let candidate = choice; candidate !== null; candidate = candidate.next) {
    if (accepts(candidate, lookup)) return candidate.index;
  }
  return -1;
}

// ---------------------------------------------------------------------------------------------
// Regular expressions with a literal prefilter

/**
 * Regexes tried in order, each behind the plain text every match must start with, end with
 * and contain. Checking those first keeps the regexes that cannot match from running at all:
 * with thousands of routes their compiled code would not stay in the CPU's caches, and
 * fetching it costs more than the match itself.
 */
class PatternList<T> {
  /**
   * Per entry, side by side (one cache line per entry tried): the text a match must start
   * with, end with and contain (each "" when unknown), the regex and the value.
   */
  readonly #entries: (string | RegExp | T)[] = [];

  get length(): number {
    return this.#entries.length / PATTERN_FIELDS;
  }

  /** `anchored`: the regex matches whole texts, whatever its source says (hosts). */
  add(regex: RegExp, source: string, anchored: boolean, value: T): void {
    const { starts, ends, within } = requiredText(source, anchored);
    // Hosts are lowercased, and a case-insensitive regex matches their lowercase letters too.
    const fold = (text: string) => (regex.ignoreCase ? text.toLowerCase() : text);
    this.#entries.push(fold(starts), fold(ends), fold(within), regex, value);
  }

  /** The first entry at or after `from` whose regex matches `text`; -1 when none. */
  next(text: string, from: number): number {
    const entries = this.#entries;
    for (let i = from * PATTERN_FIELDS; i < entries.length; i += PATTERN_FIELDS) {
      const starts = entries[i] as string;
      const ends = entries[i + 1] as string;
      const within = entries[i + 2] as string;
      if (
        (starts === "" || text.startsWith(starts)) &&
        (ends === "" || text.endsWith(ends)) &&
        (within === "" || text.includes(within)) &&
        (entries[i + 3] as RegExp).test(text)
      ) {
        return i / PATTERN_FIELDS;
      }
    }
    return -1;
  }

  value(i: number): T {
    return this.#entries[i * PATTERN_FIELDS + 4] as T;
  }
}

const PATTERN_FIELDS = 5;

/** One piece of the top level of a pattern. */
interface Atom {
  /** The plain character it matches, if that is all it does. */
  readonly char: string | undefined;
  /** "^" or "$" for an anchor, "" otherwise. */
  readonly anchor: string;
  /** How many times it must occur at least, and whether a quantifier follows it. */
  readonly min: number;
  readonly quantified: boolean;
}

/**
 * Plain ASCII text every match of a regex must hold: the text it starts with (after "^", or
 * from the start when `anchored`), the text it ends with (before "$", or at the end when
 * `anchored`), and the longest run anywhere ("/items-42/" in `^/v[0-9]+/items-42/[a-z]+$`).
 * Each is "" when there is none, and all are "" when the pattern has a top-level "|" (then no
 * piece is required). Only the top level is read: groups and classes count as "something",
 * a character made optional by "?", "*" or "{0," is left out.
 */
function requiredText(pattern: string, anchored: boolean): { starts: string; ends: string; within: string } {
  const none = { starts: "", ends: "", within: "" };
  if (hasTopLevelAlternation(pattern)) return none;
  const { atoms, complete } = topLevelAtoms(pattern);
  let from = 0;
  let to = atoms.length;
  const startAnchored = atoms[0]?.anchor === "^";
  const endAnchored = complete && atoms.at(-1)?.anchor === "$";
  if (startAnchored) from++;
  if (endAnchored) to--;
  const starts = startAnchored || anchored ? leadingText(atoms, from, to) : "";
  const ends = endAnchored || (anchored && complete) ? trailingText(atoms, from, to) : "";
  const within = longestText(atoms);
  return { starts, ends, within: within === starts || within === ends ? "" : within };
}

function leadingText(atoms: readonly Atom[], from: number, to: number): string {
  let text = "";
  for (let i = from; i < to; i++) {
    const atom = atoms[i] as Atom;
    if (atom.char === undefined || atom.min === 0) break;
    text += atom.char;
    if (atom.quantified) break;
  }
  return text;
}

function trailingText(atoms: readonly Atom[], from: number, to: number): string {
  let text = "";
  for (let i = to - 1; i >= from; i--) {
    const atom = atoms[i] as Atom;
    if (atom.char === undefined || atom.quantified) break;
    text = atom.char + text;
  }
  return text;
}

function longestText(atoms: readonly Atom[]): string {
  let best = "";
  let run = "";
  for (const atom of atoms) {
    if (atom.char !== undefined && atom.min > 0) run += atom.char;
    if (atom.char === undefined || atom.quantified) {
      if (run.length > best.length) best = run;
      run = "";
    }
  }
  return run.length > best.length ? run : best;
}

/** Characters that end a run of plain text at the top level of a pattern. */
const SYNTAX = new Set(["\\", "^", "$", ".", "|", "?", "*", "+", "(", ")", "[", "{"]);
const QUANTIFIER_BRACES = /^\{(\d+)(?:,\d*)?\}/;

/**
 * The top level of a pattern, atom by atom. Reading stops at an escape whose extent it does
 * not need to know (\x41, \cX, \1, \k<name>…): what was read before stays valid, and
 * `complete` says whether the atoms reach the end.
 */
function topLevelAtoms(pattern: string): { atoms: Atom[]; complete: boolean } {
  const atoms: Atom[] = [];
  let i = 0;
  while (i < pattern.length) {
    const ch = pattern[i] as string;
    let char: string | undefined;
    let anchor = "";
    let next = i + 1;
    if (ch === "\\") {
      const escaped = pattern[i + 1] ?? "";
      next = i + 2;
      if (/^[!-/:-@[-`{-~]$/.test(escaped)) char = escaped;
      else if (!/^[dDwWsSbB]$/.test(escaped)) return { atoms, complete: false };
    } else if (ch === "(" || ch === "[") {
      next = skipGroup(pattern, i);
    } else if (ch === "^" || ch === "$") {
      anchor = ch;
    } else if (ch === "{" && !QUANTIFIER_BRACES.test(pattern.slice(i))) {
      char = ch;
    } else if (!SYNTAX.has(ch) && ch.charCodeAt(0) < 128) {
      char = ch;
    }
    const quantifier = quantifierAt(pattern, next);
    atoms.push({ char, anchor, min: quantifier.min, quantified: quantifier.length > 0 });
    i = next + quantifier.length;
  }
  return { atoms, complete: true };
}

/** The quantifier at `at` ("", "?", "*", "+", "{2,3}", each maybe lazy) and its minimum count. */
function quantifierAt(pattern: string, at: number): { length: number; min: number } {
  const ch = pattern[at];
  let length = 0;
  let min = 1;
  if (ch === "?" || ch === "*") [length, min] = [1, 0];
  else if (ch === "+") length = 1;
  else if (ch === "{") {
    const braces = QUANTIFIER_BRACES.exec(pattern.slice(at));
    if (braces !== null) [length, min] = [(braces[0] as string).length, Number(braces[1])];
  }
  if (length > 0 && pattern[at + length] === "?") length++;
  return { length, min };
}

/** The index after the group or class that starts at `start`. */
function skipGroup(pattern: string, start: number): number {
  let depth = 0;
  let inClass = false;
  for (let i = start; i < pattern.length; i++) {
    const ch = pattern[i];
    if (ch === "\\") i++;
    else if (inClass) inClass = ch !== "]";
    else if (ch === "[") inClass = true;
    else if (ch === "(") depth++;
    else if (ch === ")") depth--;
    if (!inClass && depth === 0) return i + 1;
  }
  return pattern.length;
}

function hasTopLevelAlternation(pattern: string): boolean {
  let depth = 0;
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i];
    if (ch === "\\") i++;
    else if (inClass) inClass = ch !== "]";
    else if (ch === "[") inClass = true;
    else if (ch === "(") depth++;
    else if (ch === ")") depth--;
    else if (ch === "|" && depth === 0) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Path lookup within a host bucket

/**
 * Path prefixes in a crit-bit tree (a binary PATRICIA trie). Each inner node names the first
 * bit (of the UTF-16 code units, a unit past the end reading as 0) at which the keys below it
 * differ, so a lookup reads only that bit of the path at each node and touches no key but the
 * one at the leaf.
 *
 * The leaf reached shares with the path a common prefix at least as long as any key does
 * (PATRICIA's search property). The keys that are prefixes of the path are therefore the
 * leaf's key, when the common prefix covers it, and its ancestors in the table: its parent
 * (the longest other key that is a prefix of it), the parent's parent, and so on. The lookup
 * walks that chain, longest first. Keys never hold a NUL (normalized paths cannot), so the
 * padding is never mistaken for a character.
 *
 * With thousands of routes a lookup's cost is mostly cache misses, so the tree is one array:
 * [0] holds every key joined into one string (see ExactTable for why), and the nodes follow in
 * preorder. An inner node is [bit, offset of its right subtree], its left subtree follows at
 * once; a leaf is [-1 - offset of its key in the joined keys, choice, key length, offset of the
 * parent's leaf or -1]. A node starts with a number from 0 up, a leaf with a negative one.
 */
type PrefixTable = readonly (string | Choice)[];

function prefixTable(byPrefix: ReadonlyMap<string, Candidate[]>): PrefixTable {
  const keys = [...byPrefix.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const parents = parentsOf(keys);
  const keyAt = offsetsIn(keys);
  const leafAt: number[] = [];
  const table: (string | Choice)[] = [keys.join("")];
  // Each task: the key range [low, high] and the slot that receives the offset it starts at.
  const tasks: [low: number, high: number, slot: number][] = [[0, keys.length - 1, -1]];
  for (let task = tasks.pop(); task !== undefined; task = tasks.pop()) {
    const [low, high, slot] = task;
    if (slot >= 0) table[slot] = table.length;
    if (low === high) {
      // Preorder meets the leaves in key order, so a parent's leaf is already placed.
      const key = keys[low] as string;
      const parent = parents[low] as number;
      leafAt[low] = table.length;
      table.push(
        -1 - (keyAt[low] as number),
        chain(byPrefix.get(key) as Candidate[]),
        key.length,
        parent < 0 ? -1 : (leafAt[parent] as number),
      );
      continue;
    }
    // In a sorted range all keys share the bits before the first bit at which its first and
    // last keys differ, and those with a 0 there come first.
    const bit = firstDifferentBit(keys[low] as string, keys[high] as string);
    const split = firstWithBit(keys, bit, low + 1, high);
    table.push(bit, 0);
    tasks.push([split, high, table.length - 1], [low, split - 1, -1]);
  }
  return table;
}

/** For each sorted key, the index of the longest other key that is a prefix of it, or -1. */
function parentsOf(keys: readonly string[]): number[] {
  const ancestors: number[] = [];
  return keys.map((key, i) => {
    while (ancestors.length > 0 && !key.startsWith(keys[ancestors.at(-1) as number] as string))
      ancestors.pop();
    const parent = ancestors.at(-1) ?? -1;
    ancestors.push(i);
    return parent;
  });
}

/** The first accepted choice of the longest key that prefixes `path`; -1 when none. */
function longestPrefix(table: PrefixTable, path: string, lookup: Lookup): number {
  let at = 1;
  let entry = table[1] as number;
  while (entry >= 0) {
    const unit = entry >>> 4 < path.length ? path.charCodeAt(entry >>> 4) : 0;
    at = ((unit >>> (15 - (entry & 15))) & 1) === 0 ? at + 2 : (table[at + 1] as number);
    entry = table[at] as number;
  }
  const common = matchedLength(table[0] as string, -1 - entry, table[at + 2] as number, path);
  while (at >= 0 && (table[at + 2] as number) > common) at = table[at + 3] as number;
  for (; at >= 0; at = table[at + 3] as number) {
    const found = firstAccepted(table[at + 1] as Choice, lookup);
    if (found >= 0) return found;
  }
  return -1;
}

/** How many leading characters of `path` equal those of text[from, from + length). */
function matchedLength(text: string, from: number, length: number, path: string): number {
  const limit = Math.min(length, path.length);
  let i = 0;
  while (i < limit && text.charCodeAt(from + i) === path.charCodeAt(i)) i++;
  return i;
}

/** Where each of `keys` starts in their concatenation. */
function offsetsIn(keys: readonly string[]): number[] {
  let next = 0;
  return keys.map((key) => {
    const at = next;
    next += key.length;
    return at;
  });
}

/** The first of the sorted keys[from..to] with `bit` set (keys[to] has it), by binary search. */
function firstWithBit(keys: readonly string[], bit: number, from: number, to: number): number {
  let low = from;
  let high = to;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (bitAt(keys[middle] as string, bit) === 0) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** Bit `bit` of `text`, counting from the most significant bit of each UTF-16 unit. */
function bitAt(text: string, bit: number): number {
  const at = bit >>> 4;
  const unit = at < text.length ? text.charCodeAt(at) : 0;
  return (unit >>> (15 - (bit & 15))) & 1;
}

/** The first bit at which two different strings differ. */
function firstDifferentBit(a: string, b: string): number {
  const at = matchedLength(a, 0, a.length, b);
  const x = (a.charCodeAt(at) || 0) ^ (b.charCodeAt(at) || 0);
  return at * 16 + Math.clz32(x) - 16;
}

/** The routes of one host bucket by path condition, gathered at compile time. */
class BucketBuilder {
  readonly exact = new Map<string, Candidate[]>();
  readonly prefixes = new Map<string, Candidate[]>();
  readonly regexes = new PatternList<Choice>();
  readonly any: Candidate[] = [];

  add(route: Route, candidate: Candidate): void {
    const path = route.path ?? route.path_prefix;
    const normalized = path === undefined ? undefined : routePath(path);
    if (path !== undefined && normalized === undefined) return; // it can match no request
    if (route.path !== undefined) listIn(this.exact, normalized as string).push(candidate);
    else if (route.path_prefix !== undefined) listIn(this.prefixes, normalized as string).push(candidate);
    else if (route.path_regex !== undefined)
      this.regexes.add(new RegExp(route.path_regex), route.path_regex, false, chain([candidate]));
    else this.any.push(candidate);
  }

  build(): Bucket {
    return new Bucket(
      this.exact.size === 0 ? null : new ExactTable(this.exact),
      this.prefixes.size === 0 ? null : prefixTable(this.prefixes),
      this.regexes.length === 0 ? null : this.regexes,
      this.any.length === 0 ? null : chain(this.any),
    );
  }
}

function listIn<T>(map: Map<string, T[]>, key: string): T[] {
  let list = map.get(key);
  if (list === undefined) {
    list = [];
    map.set(key, list);
  }
  return list;
}

/** The routes of one host bucket, by path step. */
class Bucket {
  constructor(
    readonly exact: ExactTable | null,
    readonly prefixes: PrefixTable | null,
    readonly regexes: PatternList<Choice> | null,
    readonly any: Choice | null,
  ) {}

  find(lookup: Lookup): number {
    const path = lookup.request.path;
    if (this.exact !== null) {
      const first = this.exact.get(path);
      if (first !== undefined) {
        const found = firstAccepted(first, lookup);
        if (found >= 0) return found;
      }
    }
    if (this.prefixes !== null) {
      const found = longestPrefix(this.prefixes, path, lookup);
      if (found >= 0) return found;
    }
    const regexes = this.regexes;
    if (regexes !== null) {
      for (let i = regexes.next(path, 0); i >= 0; i = regexes.next(path, i + 1)) {
        const found = firstAccepted(regexes.value(i), lookup);
        if (found >= 0) return found;
      }
    }
    return firstAccepted(this.any, lookup);
  }
}

/**
 * A bucket's exact paths: an open-addressing hash table in one Int32Array, the keys joined into
 * one string. A Map would compare the request path with a key string of its own, somewhere in
 * the heap: with thousands of routes that string is seldom in the CPU's caches, and fetching it
 * from memory cost more than the rest of the lookup. The slots and the joined keys are read by
 * every exact lookup in the bucket, so they stay cached. The table is built from the config
 * alone, so no request can lengthen its probes.
 */
class ExactTable {
  /** Per slot: the key's hash, its offset in #keys (-1: empty), its length and its choice (see get). */
  readonly #slots: Int32Array;
  readonly #keys: string;
  readonly #chains: readonly Candidate[];
  readonly #mask: number;
  /** `lengthBit` of every key: a path of another length needs no hashing. */
  readonly #lengths: number;

  constructor(byPath: ReadonlyMap<string, Candidate[]>) {
    const keys = [...byPath.keys()];
    const keyAt = offsetsIn(keys);
    // At most half full, so a probe always ends at an empty slot, and soon.
    const capacity = 2 ** Math.ceil(Math.log2(keys.length * 2));
    const slots = new Int32Array(capacity * EXACT_FIELDS);
    for (let slot = 0; slot < capacity; slot++) slots[slot * EXACT_FIELDS + 1] = -1;
    const chains: Candidate[] = [];
    let lengths = 0;
    keys.forEach((key, i) => {
      const hash = hashOf(key);
      let slot = hash & (capacity - 1);
      while ((slots[slot * EXACT_FIELDS + 1] as number) >= 0) slot = (slot + 1) & (capacity - 1);
      const choice = chain(byPath.get(key) as Candidate[]);
      if (typeof choice !== "number") chains.push(choice);
      slots.set(
        [hash, keyAt[i] as number, key.length, typeof choice === "number" ? choice : -chains.length],
        slot * EXACT_FIELDS,
      );
      lengths |= lengthBit(key.length);
    });
    this.#slots = slots;
    this.#keys = keys.join("");
    this.#chains = chains;
    this.#mask = capacity - 1;
    this.#lengths = lengths;
  }

  /** The choice of the key equal to `path`. */
  get(path: string): Choice | undefined {
    const length = path.length;
    if ((this.#lengths & lengthBit(length)) === 0) return undefined;
    const hash = hashOf(path);
    const slots = this.#slots;
    for (let slot = hash & this.#mask; ; slot = (slot + 1) & this.#mask) {
      const at = slot * EXACT_FIELDS;
      const offset = slots[at + 1] as number;
      if (offset < 0) return undefined;
      if (slots[at] === hash && slots[at + 2] === length && this.#keys.startsWith(path, offset)) {
        // A route index as it is, a chain of candidates as -1 - its place in #chains.
        const choice = slots[at + 3] as number;
        return choice >= 0 ? choice : (this.#chains[-1 - choice] as Candidate);
      }
    }
  }
}

const EXACT_FIELDS = 4;

/** FNV-1a over the UTF-16 code units. */
function hashOf(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return hash;
}

/** One of 31 bits for a length: its own up to 30, one shared by all longer. */
function lengthBit(length: number): number {
  return 1 << Math.min(length, 30);
}

/**
 * A route's path or prefix in the form request paths are compared in; undefined for one that
 * cannot be normalized (it holds "?", "#", "%00", a backslash…), which no request path can
 * equal or start with, so the route is left out.
 */
function routePath(path: string): string | undefined {
  const normalized = normalizePath(path);
  return normalized === undefined || normalized.query !== "" || path.includes("#")
    ? undefined
    : normalized.path;
}

// ---------------------------------------------------------------------------------------------
// Host buckets

/** Groups routes into host buckets at compile time. */
class HostTableBuilder {
  readonly exact = new Map<string, BucketBuilder>();
  /** Keyed by the suffix with its leading dot: ".example.com" for `*.example.com`. */
  readonly wildcard = new Map<string, BucketBuilder>();
  /** By pattern, in the order patterns first appear. */
  readonly regex = new Map<string, BucketBuilder>();
  readonly any = new BucketBuilder();

  bucketFor(host: string | undefined): BucketBuilder {
    if (host === undefined) return this.any;
    switch (hostPatternKind(host)) {
      case "any":
        return this.any;
      case "exact":
        return builderIn(this.exact, withoutPort(host));
      case "wildcard":
        return builderIn(this.wildcard, withoutPort(host).slice(1));
      case "regex":
        return builderIn(this.regex, host);
    }
  }
}

function builderIn(map: Map<string, BucketBuilder>, key: string): BucketBuilder {
  let builder = map.get(key);
  if (builder === undefined) {
    builder = new BucketBuilder();
    map.set(key, builder);
  }
  return builder;
}

/** Request hosts come without a port (see the header comment), so patterns are compared without. */
function withoutPort(host: string): string {
  return host.replace(/:\d{1,5}$/, "");
}

function buildAll(builders: ReadonlyMap<string, BucketBuilder>): Map<string, Bucket> {
  const buckets = new Map<string, Bucket>();
  for (const [key, builder] of builders) buckets.set(key, builder.build());
  return buckets;
}

class CompiledRouter implements Router {
  readonly #exact: ReadonlyMap<string, Bucket>;
  readonly #wildcard: ReadonlyMap<string, Bucket> | null;
  /** `lengthBit` of every wildcard suffix: suffixes of other lengths need no lookup. */
  readonly #suffixLengths: number;
  readonly #regex: PatternList<Bucket>;
  readonly #any: Bucket;
  readonly #lookup: Lookup;

  constructor(hosts: HostTableBuilder, methodBits: ReadonlyMap<string, number>) {
    this.#exact = buildAll(hosts.exact);
    this.#wildcard = hosts.wildcard.size === 0 ? null : buildAll(hosts.wildcard);
    let lengths = 0;
    for (const suffix of hosts.wildcard.keys()) lengths |= lengthBit(suffix.length);
    this.#suffixLengths = lengths;
    this.#regex = new PatternList<Bucket>();
    for (const [pattern, builder] of hosts.regex) {
      this.#regex.add(new RegExp(`^(?:${pattern})$`, "i"), pattern, true, builder.build());
    }
    this.#any = hosts.any.build();
    this.#lookup = new Lookup(methodBits);
  }

  match(request: RouteRequest): number {
    const lookup = this.#lookup;
    lookup.start(request);
    const found = this.#route(request.host, lookup);
    lookup.request = NO_REQUEST; // do not keep the request alive until the next one
    return found;
  }

  #route(host: string, lookup: Lookup): number {
    const exact = this.#exact.get(host);
    if (exact !== undefined) {
      const found = exact.find(lookup);
      if (found >= 0) return found;
    }
    if (this.#wildcard !== null) {
      const found = matchSuffixes(this.#wildcard, host, lookup, this.#suffixLengths);
      if (found >= 0) return found;
    }
    const regex = this.#regex;
    for (let i = regex.next(host, 0); i >= 0; i = regex.next(host, i + 1)) {
      const found = regex.value(i).find(lookup);
      if (found >= 0) return found;
    }
    return this.#any.find(lookup);
  }
}

/** Suffixes from the first dot on (at least one character before it), longest first. */
function matchSuffixes(
  wildcard: ReadonlyMap<string, Bucket>,
  host: string,
  lookup: Lookup,
  lengths: number,
): number {
  for (let dot = host.indexOf(".", 1); dot > 0; dot = host.indexOf(".", dot + 1)) {
    if ((lengths & lengthBit(host.length - dot)) === 0) continue;
    const bucket = wildcard.get(host.slice(dot));
    if (bucket !== undefined) {
      const found = bucket.find(lookup);
      if (found >= 0) return found;
    }
  }
  return -1;
}
