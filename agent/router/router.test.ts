import type { IncomingHttpHeaders } from "node:http";
import { describe, expect, it } from "vitest";
import {
  type DynamicConfig,
  hostPatternKind,
  parseDynamicConfig,
  type Route,
  validateDynamicConfig,
} from "../../services/config/index.js";
import { hostOf, normalizePath } from "./normalize-path.js";
import { compileRouter, type RouteRequest } from "./router.js";

const POOLS = 'pools:\n  - { id: p, endpoints: [{ address: "127.0.0.1:9000" }] }\n';

/** Routes from YAML (one flow mapping per route, each with `pool: p`), validated and canonical. */
function routesFrom(routesYaml: string): Route[] {
  const result = parseDynamicConfig(`${POOLS}routes:\n${routesYaml}`);
  if (!result.ok) throw new Error(result.errors.map((e) => `${e.path}: ${e.message}`).join("\n"));
  return result.value.routes ?? [];
}

interface RequestOptions {
  method?: string;
  headers?: IncomingHttpHeaders;
}

/** A request as the listener builds it: through hostOf and normalizePath. */
function request(authority: string | undefined, target: string, options: RequestOptions = {}): RouteRequest {
  const normalized = normalizePath(target);
  if (normalized === undefined) throw new Error(`refused target ${target}`);
  return {
    host: hostOf(authority),
    path: normalized.path,
    query: normalized.query,
    method: options.method ?? "GET",
    headers: options.headers ?? {},
  };
}

type Case = readonly [description: string, request: RouteRequest, expected: string | null];

/** Runs a table of requests against routes; each expects a route id, or null for no route. */
function checkTable(routesYaml: string, cases: readonly Case[]): void {
  const routes = routesFrom(routesYaml);
  const router = compileRouter(routes);
  it.each(cases)("%s", (_description, req, expected) => {
    const index = router.match(req);
    expect(index === -1 ? null : routes[index]?.id).toBe(expected);
  });
}

describe("host buckets: exact, then wildcard (longest suffix first), then regex, then any host", () => {
  checkTable(
    `
  - { id: any-shared, path: /shared, pool: p }
  - { id: star-host, host: "*", path: /star, pool: p }
  - { id: wild-short, host: "*.example.com", path_prefix: /, pool: p }
  - { id: wild-long, host: "*.api.example.com", path_prefix: /, pool: p }
  - { id: regex-shop, host: "(www|SHOP)\\\\.example\\\\.org", path: /regex-only, pool: p }
  - { id: exact, host: api.example.com, path: /exact, pool: p }
  - { id: exact-mixed-case, host: API.Other.com, path_prefix: /, pool: p }
  - { id: exact-with-port, host: "ports.example.net:8443", path: /p, pool: p }
`,
    [
      [
        "an exact host wins over the wildcard that also matches",
        request("api.example.com", "/exact"),
        "exact",
      ],
      [
        "an exact host without a matching route falls through to the wildcard",
        request("api.example.com", "/shared"),
        "wild-short",
      ],
      ["the longest wildcard suffix wins", request("x.api.example.com", "/any"), "wild-long"],
      ["a wildcard matches several labels", request("a.b.example.com", "/any"), "wild-short"],
      ["a wildcard does not match its bare suffix", request("example.com", "/any"), null],
      [
        "a regex host matches the whole host, case-insensitively",
        request("shop.example.org", "/regex-only"),
        "regex-shop",
      ],
      ["a regex host is anchored at both ends", request("shop.example.org.evil", "/regex-only"), null],
      ["a regex host is anchored at the start", request("myshop.example.org", "/regex-only"), null],
      ["a regex host bucket falls through to any host", request("www.example.org", "/shared"), "any-shared"],
      ["a route without host matches an unknown host", request("other.net", "/shared"), "any-shared"],
      ['host "*" is the any-host bucket', request("other.net", "/star"), "star-host"],
      ["a request without Host reaches the any-host bucket", request(undefined, "/shared"), "any-shared"],
      [
        "a Host header's case and port do not matter",
        request("API.Other.COM:8080", "/x"),
        "exact-mixed-case",
      ],
      ["a trailing dot in the Host header is dropped", request("api.other.com.", "/x"), "exact-mixed-case"],
      ["a port written in a route's host is ignored", request("ports.example.net", "/p"), "exact-with-port"],
      ["no route for an unknown host and path", request("other.net", "/nothing"), null],
    ],
  );
});

describe("regex host buckets are tried in the order their patterns first appear", () => {
  checkTable(
    `
  - { id: r1-x, host: "[a-z]+\\\\.svc", path: /x, pool: p }
  - { id: r2-y, host: "api\\\\.[a-z]+", path: /y, pool: p }
  - { id: r1-y, host: "[a-z]+\\\\.svc", path: /y, pool: p }
`,
    [
      ["the first pattern's bucket is tried first", request("api.svc", "/y"), "r1-y"],
      ["a later pattern matches when the first does not", request("api.internal", "/y"), "r2-y"],
    ],
  );
});

describe("path steps within a bucket: exact, longest prefix, regex, then no path", () => {
  checkTable(
    `
  - { id: no-path, host: h.test, pool: p }
  - { id: regex, host: h.test, path_regex: "^/v[0-9]+/.*", pool: p }
  - { id: prefix-short, host: h.test, path_prefix: /v1, pool: p }
  - { id: prefix-long, host: h.test, path_prefix: /v1/users, pool: p }
  - { id: exact, host: h.test, path: /v1/users/me, pool: p }
  - { id: search, host: s.test, path_regex: admin, pool: p }
  - { id: normalized, host: n.test, path: "/%7euser/./x", pool: p }
  - { id: normalized-prefix, host: n.test, path_prefix: "/a//b", pool: p }
`,
    [
      ["an exact path wins over every prefix and regex", request("h.test", "/v1/users/me"), "exact"],
      ["the longest prefix wins", request("h.test", "/v1/users/42"), "prefix-long"],
      ["a prefix is a plain string prefix", request("h.test", "/v1/usersx"), "prefix-long"],
      ["a prefix matches itself", request("h.test", "/v1"), "prefix-short"],
      ["a shorter prefix matches a sibling", request("h.test", "/v1x"), "prefix-short"],
      ["a regex comes after the prefixes", request("h.test", "/v2/x"), "regex"],
      ["a route without path matches what nothing else does", request("h.test", "/v2"), "no-path"],
      ["paths are compared after normalization", request("h.test", "/v2/../v1/users/./me"), "exact"],
      ["a path regex without anchors searches the path", request("s.test", "/x/admin/y"), "search"],
      ["a path regex is case-sensitive", request("s.test", "/ADMIN"), null],
      ["a route's path is normalized when compiled", request("n.test", "/~user/x"), "normalized"],
      ["a route's prefix is normalized when compiled", request("n.test", "/a/b/c"), "normalized-prefix"],
    ],
  );
});

describe("regexes match exactly as JavaScript does, whatever text they require", () => {
  checkTable(
    `
  - { id: optional-char, host: r.test, path_regex: "^/ab?c$", pool: p }
  - { id: alternation, host: r.test, path_regex: "^/zz|yy", pool: p }
  - { id: class-escape, host: r.test, path_regex: "^/x\\\\d+y$", pool: p }
  - { id: group, host: r.test, path_regex: "^/(?:foo|bar)baz", pool: p }
  - { id: zero-repeat, host: r.test, path_regex: "^/q{0,2}r$", pool: p }
  - { id: hex-escape, host: r.test, path_regex: "^/k\\\\x41z$", pool: p }
  - { id: lazy, host: r.test, path_regex: "^/m+?n", pool: p }
  - { id: host-case, host: "API\\\\.Example\\\\.(com|org)", path: /h, pool: p }
  - { id: host-suffix, host: ".*\\\\.cdn\\\\.test", path: /h, pool: p }
`,
    [
      ["an optional character may be missing", request("r.test", "/ac"), "optional-char"],
      ["an optional character may be there", request("r.test", "/abc"), "optional-char"],
      ["a top-level alternation requires neither side", request("r.test", "/a/yy"), "alternation"],
      ["a class escape is not plain text", request("r.test", "/x12y"), "class-escape"],
      ["a group is not plain text", request("r.test", "/barbaz"), "group"],
      ["a character repeated zero times is not required", request("r.test", "/r"), "zero-repeat"],
      ["a hex escape matches its character", request("r.test", "/kAz"), "hex-escape"],
      ["a lazy repeat still needs one", request("r.test", "/mmn"), "lazy"],
      ["a host regex ignores case in its plain text", request("api.example.org", "/h"), "host-case"],
      ["a host regex suffix is matched at the end", request("eu.cdn.test", "/h"), "host-suffix"],
      ["a host regex suffix is not matched inside", request("eu.cdn.test.evil", "/h"), null],
    ],
  );
});

describe("methods", () => {
  checkTable(
    `
  - { id: get, host: m.test, path: /m, methods: [get, head], pool: p }
  - { id: post, host: m.test, path: /m, methods: [POST], pool: p }
  - { id: fallback, host: m.test, path_prefix: /m, pool: p }
`,
    [
      ["a listed method is taken", request("m.test", "/m", { method: "HEAD" }), "get"],
      [
        "a second route with the same path serves other methods",
        request("m.test", "/m", { method: "POST" }),
        "post",
      ],
      [
        "an unlisted method falls through to the next step",
        request("m.test", "/m", { method: "DELETE" }),
        "fallback",
      ],
      [
        "a method no route names matches only routes without methods",
        request("m.test", "/m", { method: "PROPFIND" }),
        "fallback",
      ],
    ],
  );
});

describe("header conditions", () => {
  checkTable(
    `
  - { id: exact, host: h.test, path: /h, headers: { X-API-Version: v2 }, pool: p }
  - { id: prefix, host: h.test, path: /h, headers: { x-api-version: { prefix: v3 } }, pool: p }
  - { id: regex, host: h.test, path: /h, headers: { x-api-version: { regex: "^v[4-9]$" } }, pool: p }
  - { id: present, host: h.test, path: /h, headers: { x-debug: { present: true } }, pool: p }
  - { id: both, host: h.test, path: /h2, headers: { x-a: "1", x-b: "2" }, pool: p }
  - { id: any-value, host: h.test, path: /cookie, headers: { set-cookie: { prefix: "session=" } }, pool: p }
  - { id: absent, host: h.test, path_prefix: /h, headers: { authorization: { present: false } }, pool: p }
  - { id: fallback, path_prefix: /h, pool: p }
`,
    [
      ["an exact value matches", request("h.test", "/h", { headers: { "x-api-version": "v2" } }), "exact"],
      [
        "an exact value is case-sensitive",
        request("h.test", "/h", { headers: { "x-api-version": "V2" } }),
        "absent",
      ],
      ["a prefix matches", request("h.test", "/h", { headers: { "x-api-version": "v3.1" } }), "prefix"],
      ["a regex matches", request("h.test", "/h", { headers: { "x-api-version": "v5" } }), "regex"],
      ["present accepts an empty value", request("h.test", "/h", { headers: { "x-debug": "" } }), "present"],
      ["present: false matches an absent header", request("h.test", "/h"), "absent"],
      [
        "present: false fails on a present header, falling through to the next bucket",
        request("h.test", "/h", { headers: { authorization: "Bearer x" } }),
        "fallback",
      ],
      [
        "every condition must hold",
        request("h.test", "/h2", { headers: { "x-a": "1", "x-b": "2" } }),
        "both",
      ],
      [
        "one failing condition rejects the route",
        request("h.test", "/h2", { headers: { "x-a": "1" } }),
        "absent",
      ],
      [
        "a condition holds when any of several values matches",
        request("h.test", "/cookie", { headers: { "set-cookie": ["a=1", "session=x"] } }),
        "any-value",
      ],
    ],
  );
});

describe("query conditions", () => {
  checkTable(
    `
  - { id: exact, host: q.test, path: /q, query: { debug: "1" }, pool: p }
  - { id: prefix, host: q.test, path: /q, query: { lang: { prefix: en } }, pool: p }
  - { id: regex, host: q.test, path: /q, query: { page: { regex: "^[0-9]+$" } }, pool: p }
  - { id: present, host: q.test, path: /q, query: { token: { present: true } }, pool: p }
  - { id: key-case, host: q.test, path: /q, query: { Mode: dark }, pool: p }
  - { id: absent, host: q.test, path: /q, query: { nocache: { present: false } }, pool: p }
`,
    [
      ["an exact value matches", request("q.test", "/q?debug=1"), "exact"],
      ["any of a repeated key's values matches", request("q.test", "/q?debug=0&debug=1"), "exact"],
      ["values are compared decoded", request("q.test", "/q?debug=%31"), "exact"],
      ["a prefix matches", request("q.test", "/q?debug=2&lang=en-GB"), "prefix"],
      ["a regex matches", request("q.test", "/q?page=12"), "regex"],
      ["present accepts a key without value", request("q.test", "/q?token"), "present"],
      ["keys are compared as written", request("q.test", "/q?Mode=dark"), "key-case"],
      ["keys are case-sensitive", request("q.test", "/q?mode=dark&nocache=1"), null],
      ["present: false matches a request without query", request("q.test", "/q"), "absent"],
      ["present: false fails when the key is there", request("q.test", "/q?nocache=1"), null],
    ],
  );
});

describe("declaration order breaks ties at the same step", () => {
  checkTable(
    `
  - { id: exact-1, host: t.test, path: /tie, headers: { x-a: { present: true } }, pool: p }
  - { id: exact-2, host: t.test, path: /tie, pool: p }
  - { id: exact-3, host: t.test, path: /tie, methods: [GET], pool: p }
  - { id: prefix-1, host: t.test, path_prefix: /p/, headers: { x-a: "1" }, pool: p }
  - { id: prefix-2, host: t.test, path_prefix: /p/, methods: [GET], pool: p }
  - { id: regex-1, host: t.test, path_regex: "^/r/[a-z]+$", methods: [POST], pool: p }
  - { id: regex-2, host: t.test, path_regex: "^/r/", pool: p }
  - { id: regex-3, host: t.test, path_regex: "^/r/a", pool: p }
  - { id: none-1, host: t.test, methods: [PUT], pool: p }
  - { id: none-2, host: t.test, methods: [DELETE, PUT], pool: p }
`,
    [
      [
        "the first declared candidate whose conditions hold",
        request("t.test", "/tie", { headers: { "x-a": "" } }),
        "exact-1",
      ],
      ["the next candidate when the first's conditions fail", request("t.test", "/tie"), "exact-2"],
      [
        "prefix candidates in declaration order",
        request("t.test", "/p/x", { headers: { "x-a": "1" } }),
        "prefix-1",
      ],
      ["a later prefix candidate when the first fails", request("t.test", "/p/x"), "prefix-2"],
      ["regexes in declaration order", request("t.test", "/r/abc", { method: "POST" }), "regex-1"],
      ["a later regex when the first's method fails", request("t.test", "/r/abc"), "regex-2"],
      ["routes without path in declaration order", request("t.test", "/z", { method: "PUT" }), "none-1"],
      ["a later route without path", request("t.test", "/z", { method: "DELETE" }), "none-2"],
    ],
  );
});

describe("compileRouter", () => {
  it("matches nothing when there are no routes", () => {
    expect(compileRouter([]).match(request("a.test", "/"))).toBe(-1);
  });

  it("does not read the query when no candidate has query conditions", () => {
    const router = compileRouter(
      routesFrom("  - { id: a, path_prefix: /, headers: { x: { present: false } }, pool: p }"),
    );
    const req = request("a.test", "/x");
    const guarded = Object.defineProperty({ ...req }, "query", {
      get: () => {
        throw new Error("query read");
      },
    });
    expect(router.match(guarded)).toBe(0);
  });

  it("finds each of 2,000 exact paths of one length in one bucket, and no path one character off", () => {
    const paths = Array.from({ length: 2_000 }, (_, i) => `/p${String(i).padStart(5, "0")}`);
    const router = compileRouter(
      routesFrom(
        paths.map((path, i) => `  - { id: r${i}, host: a.test, path: ${path}, pool: p }`).join("\n"),
      ),
    );
    expect(paths.map((path) => router.match(request("a.test", path)))).toEqual(paths.map((_, i) => i));
    for (const near of ["/p02000", "/p0000", "/p000000", "/q00000", "/p0000x"])
      expect(router.match(request("a.test", near)), near).toBe(-1);
  });

  it("tells apart exact paths of the same length whose hashes are equal", () => {
    // Both hash to -154572414 under the table's FNV-1a.
    const router = compileRouter(
      routesFrom(`
  - { id: first, path: /v1/item-0229599, pool: p }
  - { id: second, path: /v1/item-0432382, pool: p }
`),
    );
    expect(router.match(request("a.test", "/v1/item-0229599"))).toBe(0);
    expect(router.match(request("a.test", "/v1/item-0432382"))).toBe(1);
    expect(router.match(request("a.test", "/v1/item-0229598"))).toBe(-1);
  });

  it("answers the same for the same request after other requests (no state leaks between lookups)", () => {
    const routes = routesFrom(`
  - { id: q, path: /q, query: { a: "1" }, pool: p }
  - { id: r, path: /q, pool: p }
`);
    const router = compileRouter(routes);
    expect(router.match(request("x", "/q?a=1"))).toBe(0);
    expect(router.match(request("x", "/q?a=2"))).toBe(1);
    expect(router.match(request("x", "/q?a=1"))).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------
// 10,000 routes against a brute-force reading of the contract

describe("a router of 10,000 generated routes", () => {
  const random = seededRandom(20_240_601);
  const routes = generateRoutes(random, 10_000);
  const router = compileRouter(routes);
  const requests = Array.from({ length: 3_000 }, () => generateRequest(random, routes));
  const reference = referenceRouter(routes);

  it("chooses, for each of 3,000 sampled requests, the route the contract names", () => {
    const mismatches = requests
      .map((req) => ({ req, got: router.match(req), want: reference(req) }))
      .filter(({ got, want }) => got !== want);
    expect(mismatches.slice(0, 5)).toEqual([]);
  });

  it("is exercised on every host bucket and path step by the sample", () => {
    const kinds = new Set<string>();
    for (const req of requests) {
      const index = router.match(req);
      if (index >= 0) kinds.add(kindOf(routes[index] as Route));
    }
    expect([...kinds].sort()).toEqual(
      [
        "any:exact",
        "any:none",
        "any:prefix",
        "any:regex",
        "exact:exact",
        "exact:none",
        "exact:prefix",
        "exact:regex",
        "regex:exact",
        "regex:none",
        "regex:prefix",
        "regex:regex",
        "wildcard:exact",
        "wildcard:none",
        "wildcard:prefix",
        "wildcard:regex",
      ].sort(),
    );
    expect(requests.filter((req) => router.match(req) === -1).length).toBeGreaterThan(0);
  });
});

function kindOf(route: Route): string {
  const host = route.host === undefined ? "any" : hostPatternKind(route.host);
  const path =
    route.path !== undefined
      ? "exact"
      : route.path_prefix !== undefined
        ? "prefix"
        : route.path_regex !== undefined
          ? "regex"
          : "none";
  return `${host}:${path}`;
}

/** mulberry32: deterministic, so a failure replays. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pick<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)] as T;
}

const EXACT_HOSTS = Array.from({ length: 400 }, (_, i) => `h${i}.example.com`);
const WILDCARD_HOSTS = Array.from({ length: 30 }, (_, i) => [
  `*.w${i}.example.com`,
  `*.a.w${i}.example.com`,
]).flat();
/** Regex host patterns, each with hosts it matches. */
const REGEX_HOSTS: Record<string, readonly string[]> = {
  "r[0-9]+\\.example\\.net": ["r1.example.net", "r42.example.net"],
  "(a|b)\\.example\\.net": ["a.example.net", "b.example.net"],
  ".*\\.net": ["other.net", "r7.example.net"],
  "api-[a-z]+\\.internal": ["api-x.internal"],
  "(?:eu|us)-[0-9]\\.cdn\\.test": ["eu-1.cdn.test", "us-2.cdn.test"],
  "shop\\.[a-z]{2}": ["shop.de"],
};
/** Path regexes, each with paths it matches. */
const PATH_REGEXES: Record<string, readonly string[]> = {
  "^/v[0-9]+/": ["/v1/a", "/v2/users/42"],
  users$: ["/a/users", "/users"],
  "^/a/b": ["/a/b/c", "/a/bx"],
  "/42": ["/users/42"],
  "^/(a|b)/v1$": ["/b/v1"],
};
const SEGMENTS = ["a", "b", "c", "v1", "v2", "users", "items", "42", "me", "x"];
const METHODS = ["GET", "POST", "PUT", "DELETE"];

function randomPath(random: () => number): string {
  const depth = 1 + Math.floor(random() * 3);
  return `/${Array.from({ length: depth }, () => pick(random, SEGMENTS)).join("/")}`;
}

function randomHost(random: () => number): string | undefined {
  const kind = random();
  if (kind < 0.75) return pick(random, EXACT_HOSTS);
  if (kind < 0.87) return pick(random, WILDCARD_HOSTS);
  if (kind < 0.993) return pick(random, Object.keys(REGEX_HOSTS));
  return kind < 0.998 ? undefined : "*";
}

function randomValueMatch(random: () => number): unknown {
  switch (Math.floor(random() * 5)) {
    case 0:
      return pick(random, ["1", "2"]);
    case 1:
      return { prefix: "1" };
    case 2:
      return { regex: "^[12]$" };
    case 3:
      return { present: true };
    default:
      return { present: false };
  }
}

function randomRoute(random: () => number, id: string): Record<string, unknown> {
  const route: Record<string, unknown> = { id, pool: "p" };
  const host = randomHost(random);
  if (host !== undefined) route.host = host;
  const step = random();
  if (step < 0.35) route.path = randomPath(random);
  else if (step < 0.7) route.path_prefix = randomPath(random).slice(0, 3 + Math.floor(random() * 8));
  else if (step < 0.9) route.path_regex = pick(random, Object.keys(PATH_REGEXES));
  if (random() < 0.3) route.methods = [...new Set([pick(random, METHODS), pick(random, METHODS)])].sort();
  // A catch-all would leave no request unrouted; the sample is to have misses too.
  if ((host === undefined || host === "*") && step >= 0.9) route.methods = ["PUT"];
  if (random() < 0.3) route.headers = { [pick(random, ["x-a", "x-b"])]: randomValueMatch(random) };
  if (random() < 0.15) route.query = { [pick(random, ["q", "r"])]: randomValueMatch(random) };
  return route;
}

function generateRoutes(random: () => number, count: number): Route[] {
  const seen = new Set<string>();
  const raw: Record<string, unknown>[] = [];
  while (raw.length < count) {
    const { id, ...signature } = randomRoute(random, `r${raw.length}`);
    const key = JSON.stringify(signature);
    if (seen.has(key)) continue;
    seen.add(key);
    raw.push({ id, ...signature });
  }
  const result = validateDynamicConfig({
    pools: [{ id: "p", endpoints: [{ address: "127.0.0.1:9000" }] }],
    routes: raw,
  });
  if (!result.ok) throw new Error(JSON.stringify(result.errors.slice(0, 3)));
  return (result.value as DynamicConfig).routes ?? [];
}

/** A host the pattern matches; any host for a route without one. */
function hostFor(random: () => number, pattern: string | undefined): string {
  if (pattern === undefined || pattern === "*") return pick(random, ["h1.example.com", "nowhere.org", ""]);
  switch (hostPatternKind(pattern)) {
    case "wildcard":
      return `${pick(random, ["x", "y.z"])}${pattern.slice(1)}`;
    case "regex":
      return pick(random, REGEX_HOSTS[pattern] ?? []);
    default:
      return pattern;
  }
}

/** A path the route's path condition matches. */
function pathFor(random: () => number, route: Route): string {
  if (route.path !== undefined) return route.path;
  if (route.path_prefix !== undefined) return `${route.path_prefix}${pick(random, ["", "/me", "x"])}`;
  if (route.path_regex !== undefined) return pick(random, PATH_REGEXES[route.path_regex] ?? []);
  return randomPath(random);
}

/** Half aimed at a random route (its host and path, random conditions), half at random. */
function generateRequest(random: () => number, routes: readonly Route[]): RouteRequest {
  const headers: IncomingHttpHeaders = {};
  if (random() < 0.5) headers["x-a"] = pick(random, ["1", "2", "12", ""]);
  if (random() < 0.5) headers["x-b"] = pick(random, ["1", "2"]);
  const query = random() < 0.5 ? pick(random, ["q=1", "q=2&r=1", "r=12", "q", "q=3&q=1"]) : "";
  const method = pick(random, [...METHODS, "PATCH"]);
  if (random() < 0.5) {
    const route = pick(random, routes);
    return { host: hostFor(random, route.host), path: pathFor(random, route), method, headers, query };
  }
  const host = random() < 0.8 ? (hostFor(random, randomHost(random)) as string) : "unknown.org";
  return { host, path: randomPath(random), method, headers, query };
}

/**
 * The contract read literally: of every route whose host, path and conditions hold, the one
 * with the lowest (host bucket, path step, declaration index), where a longer wildcard suffix
 * and a longer prefix rank first and regex host buckets rank by their pattern's first route.
 * Ranks are numbers (lower first), so each route costs no allocation.
 */
function referenceRouter(routes: readonly Route[]): (req: RouteRequest) => number {
  const firstUse = new Map<string, number>();
  routes.forEach((route, i) => {
    if (route.host !== undefined && !firstUse.has(route.host)) firstUse.set(route.host, i);
  });
  const hostRanks = routes.map((route) => hostRanker(route.host, firstUse));
  const pathRanks = routes.map(pathRanker);
  const conditions = routes.map(conditionChecker);

  return (req) => {
    const params = new URLSearchParams(req.query);
    let best = -1;
    let bestHost = 0;
    let bestPath = 0;
    for (let i = 0; i < routes.length; i++) {
      const host = (hostRanks[i] as HostRanker)(req.host);
      if (host < 0 || (best >= 0 && host > bestHost)) continue;
      const path = (pathRanks[i] as PathRanker)(req.path);
      if (path < 0 || (best >= 0 && host === bestHost && path >= bestPath)) continue;
      if (!(conditions[i] as ConditionChecker)(req, params)) continue;
      best = i;
      bestHost = host;
      bestPath = path;
    }
    return best;
  };
}

type HostRanker = (host: string) => number;
type PathRanker = (path: string) => number;
type ConditionChecker = (req: RouteRequest, params: URLSearchParams) => boolean;

/** -1 when the host does not match; else lower ranks first. */
function hostRanker(pattern: string | undefined, firstUse: ReadonlyMap<string, number>): HostRanker {
  if (pattern === undefined) return () => 3_000_000;
  const name = pattern.replace(/:\d+$/, "");
  switch (hostPatternKind(pattern)) {
    case "any":
      return () => 3_000_000;
    case "exact":
      return (host) => (name === host ? 0 : -1);
    case "wildcard": {
      const suffix = name.slice(1);
      return (host) =>
        host.endsWith(suffix) && host.length > suffix.length ? 1_001_000 - suffix.length : -1;
    }
    case "regex": {
      const regex = new RegExp(`^(?:${pattern})$`, "i");
      const rank = 2_000_000 + (firstUse.get(pattern) as number);
      return (host) => (regex.test(host) ? rank : -1);
    }
  }
}

function pathRanker(route: Route): PathRanker {
  if (route.path !== undefined) {
    const exact = normalizePath(route.path)?.path;
    return (path) => (path === exact ? 0 : -1);
  }
  const prefix = route.path_prefix;
  if (prefix !== undefined) return (path) => (path.startsWith(prefix) ? 10_000 - prefix.length : -1);
  if (route.path_regex !== undefined) {
    const regex = new RegExp(route.path_regex);
    return (path) => (regex.test(path) ? 20_000 : -1);
  }
  return () => 30_000;
}

type ValueMatch = NonNullable<Route["headers"]>[string];

function valueHolds(match: ValueMatch, values: readonly string[]): boolean {
  if (typeof match === "object" && "present" in match) return match.present === values.length > 0;
  return values.some((value) => {
    if (typeof match === "string") return value === match;
    if ("prefix" in match) return value.startsWith(match.prefix);
    return "regex" in match && new RegExp(match.regex).test(value);
  });
}

function conditionChecker(route: Route): ConditionChecker {
  const headers = Object.entries(route.headers ?? {});
  const query = Object.entries(route.query ?? {});
  return (req, params) => {
    if (route.methods !== undefined && !(route.methods as readonly string[]).includes(req.method))
      return false;
    for (const [name, match] of headers) {
      const value = req.headers[name];
      const values = value === undefined ? [] : Array.isArray(value) ? value : [value];
      if (!valueHolds(match, values)) return false;
    }
    return query.every(([name, match]) => valueHolds(match, params.getAll(name)));
  };
}

describe("IPv6 route hosts", () => {
  it("match a bracketed IPv6 host exactly rather than as a character class", () => {
    const result = parseDynamicConfig(
      'routes:\n  - id: v6\n    host: "[::1]"\n    pool: p\npools:\n  - id: p\n    endpoints: [{address: "127.0.0.1:9000"}]\n',
    );
    if (!result.ok) throw new Error(JSON.stringify(result.errors));
    const router = compileRouter(result.value.routes ?? []);
    const ask = (host: string) => router.match({ host, path: "/", method: "GET", headers: {}, query: "" });
    expect(ask("[::1]")).toBe(0);
    expect(ask(":")).toBe(-1);
  });
});
