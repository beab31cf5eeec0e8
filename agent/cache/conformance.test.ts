/**
 * The cache's conformance table: RFC 9111 rules (and the choices the modules document where
 * the RFC leaves room), each checked through the store as the integrator drives it.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { CacheRule } from "../../services/config/index.js";
import type { ResponseHeaders } from "./cache-headers.js";
import { type CachePolicy, compileCacheRule } from "./cache-policy.js";
import { CacheRegistry } from "./cache-registry.js";
import { type CacheRequest, lookupDecision } from "./cache-request.js";
import { type CacheLookup, CacheStore, MAX_VARIANTS } from "./cache-store.js";
import { type CachedResponse, servedHeaders } from "./cached-response.js";
import type { FollowerTicket, LeaderTicket } from "./coalescer.js";
import { storeDecision } from "./store-decision.js";

const START = Date.UTC(2024, 0, 1, 12, 0, 0);
const SECOND = 1000;

function clock() {
  let t = START;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

function policy(rule: Partial<CacheRule> = {}): CachePolicy {
  return compileCacheRule({ route: "api", ...rule })!;
}

function request(headers: Record<string, string | string[]> = {}, path = "/a", method = "GET"): CacheRequest {
  return { method, host: "example.com", path, headers };
}

const httpDate = (ms: number) => new Date(ms).toUTCString();

function setup(rule: Partial<CacheRule> = {}) {
  const c = clock();
  const store = new CacheStore(policy(rule), c.now);
  return { ...c, store };
}

/** Forwards a miss and feeds the answer to a capture, as the integrator does; true when stored. */
function answer(
  store: CacheStore,
  req: CacheRequest,
  status: number,
  headers: ResponseHeaders,
  body = "hello",
): boolean {
  const lookup = store.lookup(req);
  if (lookup.result !== "miss") throw new Error(`expected a miss, got ${lookup.result}`);
  const capture = store.capture(req, lookup.key);
  capture.begin(status, headers);
  capture.chunk(Buffer.from(body));
  return capture.end();
}

function hit(lookup: CacheLookup): CachedResponse {
  if (lookup.result !== "hit") throw new Error(`expected a hit, got ${lookup.result}`);
  return lookup.entry;
}

const bodyText = (entry: CachedResponse) => Buffer.concat(entry.body).toString();

describe("request directives and methods (RFC 9111 §4, §5.2.1)", () => {
  it("§4 GET is answered from a stored fresh response", () => {
    const { store } = setup();
    expect(answer(store, request(), 200, { "cache-control": "max-age=60" }, "fresh")).toBe(true);
    expect(bodyText(hit(store.lookup(request())))).toBe("fresh");
  });

  it("§4 HEAD is answered from the entry a GET stored", () => {
    const { store } = setup();
    answer(store, request(), 200, { "cache-control": "max-age=60", "content-length": "5" });
    const entry = hit(store.lookup(request({}, "/a", "HEAD")));
    expect(entry.headers["content-length"]).toBe("5");
  });

  it("§3 a HEAD response is not stored as a GET body", () => {
    const { store } = setup();
    expect(answer(store, request({}, "/a", "HEAD"), 200, { "cache-control": "max-age=60" }, "")).toBe(false);
    expect(store.lookup(request()).result).toBe("miss");
  });

  it("§4 other safe methods (OPTIONS) bypass and invalidate nothing", () => {
    const { store } = setup();
    answer(store, request(), 200, { "cache-control": "max-age=60" });
    expect(store.lookup(request({}, "/a", "OPTIONS"))).toEqual({ result: "bypass", invalidate: false });
    expect(store.lookup(request()).result).toBe("hit");
  });

  it("§4.4 an unsafe method (POST) bypasses and invalidates the URL after a 2xx", () => {
    const { store } = setup();
    answer(store, request(), 200, { "cache-control": "max-age=60" });
    answer(store, request({}, "/b"), 200, { "cache-control": "max-age=60" });
    const post = request({}, "/a", "POST");
    expect(store.lookup(post)).toEqual({ result: "bypass", invalidate: true });
    store.invalidate(post, 201);
    expect(store.lookup(request()).result).toBe("miss");
    expect(store.lookup(request({}, "/b")).result).toBe("hit");
  });

  it("§4.4 PUT, DELETE and PATCH invalidate too; a refused (4xx) one does not", () => {
    const { store } = setup();
    for (const method of ["PUT", "DELETE", "PATCH"]) {
      answer(store, request(), 200, { "cache-control": "max-age=60" });
      store.invalidate(request({}, "/a", method), 409);
      expect(store.lookup(request()).result).toBe("hit");
      store.invalidate(request({}, "/a", method), 204);
      expect(store.lookup(request()).result).toBe("miss");
    }
  });

  it("§4.4 invalidation drops every variant of the URL, credential-keyed ones included", () => {
    const { store } = setup({ auth_aware: true });
    const headers = { "cache-control": "max-age=60", vary: "accept-language" };
    answer(store, request({ "accept-language": "en" }), 200, headers);
    answer(store, request({ "accept-language": "de" }), 200, headers);
    answer(store, request({ authorization: "Bearer a" }), 200, headers);
    expect(store.entries).toBe(3);
    // An upstream that failed to answer may still have applied the change.
    store.invalidate(request({}, "/a", "POST"), undefined);
    expect(store.entries).toBe(0);
    expect(store.bytes).toBe(0);
  });

  it("§5.2.1.5 request no-store bypasses and stores nothing", () => {
    const { store } = setup({ ttl: 60 * SECOND });
    answer(store, request(), 200, { "cache-control": "max-age=60" }, "old");
    const noStore = request({ "cache-control": "no-store" });
    expect(store.lookup(noStore).result).toBe("bypass");
    expect(storeDecision(store.policy, noStore, 200, { "cache-control": "max-age=60" }, START)).toEqual({
      store: false,
      reason: "request_no_store",
    });
  });

  it("§5.2.1.4 request no-cache goes upstream even when fresh, and its answer replaces the entry", () => {
    const { store } = setup();
    answer(store, request(), 200, { "cache-control": "max-age=60" }, "old");
    const noCache = request({ "cache-control": "no-cache" });
    expect(store.lookup(noCache).result).toBe("miss");
    expect(answer(store, noCache, 200, { "cache-control": "max-age=60" }, "new")).toBe(true);
    expect(store.entries).toBe(1);
    expect(bodyText(hit(store.lookup(request())))).toBe("new");
  });

  it("§5.2.1.1 request max-age=0 revalidates", () => {
    const { store } = setup();
    answer(store, request(), 200, { "cache-control": "max-age=60" });
    expect(lookupDecision(request({ "cache-control": "max-age=0" })).action).toBe("revalidate");
    expect(store.lookup(request({ "cache-control": "max-age=0" })).result).toBe("miss");
  });

  it("§5.2.1.1 request max-age=N is answered only by an entry no older than N", () => {
    const { store, advance } = setup();
    answer(store, request(), 200, { "cache-control": "max-age=60" });
    advance(10 * SECOND);
    expect(store.lookup(request({ "cache-control": "max-age=10" })).result).toBe("hit");
    advance(1);
    expect(store.lookup(request({ "cache-control": "max-age=10" })).result).toBe("miss");
    expect(store.lookup(request()).result).toBe("hit");
  });

  it("§5.2.1.3 request min-fresh=N is answered only by an entry fresh for N more seconds", () => {
    const { store, advance } = setup();
    answer(store, request(), 200, { "cache-control": "max-age=60" });
    advance(40 * SECOND);
    expect(store.lookup(request({ "cache-control": "min-fresh=20" })).result).toBe("hit");
    expect(store.lookup(request({ "cache-control": "min-fresh=21" })).result).toBe("miss");
  });

  it("§5.4 Pragma: no-cache without Cache-Control revalidates; with Cache-Control it is ignored", () => {
    expect(lookupDecision(request({ pragma: "no-cache" })).action).toBe("revalidate");
    expect(lookupDecision(request({ pragma: "no-cache", "cache-control": "max-age=30" })).action).toBe(
      "lookup",
    );
  });

  it("§3.3 a Range request bypasses: there is no range support", () => {
    const { store } = setup();
    answer(store, request(), 200, { "cache-control": "max-age=60" });
    expect(store.lookup(request({ range: "bytes=0-1" })).result).toBe("bypass");
  });

  it("§13 preconditions (If-Match, If-Unmodified-Since, If-Range) bypass; If-None-Match may hit", () => {
    const { store } = setup();
    answer(store, request(), 200, { "cache-control": "max-age=60", etag: '"v1"' });
    expect(store.lookup(request({ "if-match": '"v1"' })).result).toBe("bypass");
    expect(store.lookup(request({ "if-unmodified-since": httpDate(START) })).result).toBe("bypass");
    expect(store.lookup(request({ "if-range": '"v1"' })).result).toBe("bypass");
    expect(store.lookup(request({ "if-none-match": '"v1"' })).result).toBe("hit");
  });
});

describe("which responses are stored (RFC 9111 §3, §5.2.2)", () => {
  it("§3.3 a 206 is never stored, even with explicit freshness", () => {
    const { store } = setup({ ttl: 60 * SECOND });
    expect(storeDecision(store.policy, request(), 206, { "cache-control": "max-age=60" }, START)).toEqual({
      store: false,
      reason: "status",
    });
  });

  it("§4.3 a 304 answer to the client's own condition is never stored", () => {
    const { store } = setup();
    const conditional = request({ "if-none-match": '"v1"' });
    expect(answer(store, conditional, 304, { "cache-control": "max-age=60" }, "")).toBe(false);
    expect(store.entries).toBe(0);
  });

  it("§4.2.2 a heuristically cacheable status (404) without freshness is stored for the route's ttl", () => {
    const { store, advance } = setup({ ttl: 30 * SECOND });
    expect(answer(store, request(), 404, {}, "not found")).toBe(true);
    advance(30 * SECOND - 1);
    expect(hit(store.lookup(request())).status).toBe(404);
    advance(1);
    expect(store.lookup(request()).result).toBe("miss");
  });

  it("§4.2.2 every heuristically cacheable status takes the ttl; 302 and 500 without freshness do not", () => {
    const p = policy({ ttl: 30 * SECOND });
    for (const status of [200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501]) {
      expect(storeDecision(p, request(), status, {}, START).store).toBe(true);
    }
    for (const status of [302, 307, 400, 500, 503]) {
      expect(storeDecision(p, request(), status, {}, START)).toEqual({ store: false, reason: "status" });
    }
  });

  it("§3 a status that is not heuristically cacheable is stored with explicit freshness", () => {
    const { store } = setup();
    expect(answer(store, request(), 302, { "cache-control": "max-age=60", location: "/b" }, "")).toBe(true);
    expect(hit(store.lookup(request())).headers.location).toBe("/b");
  });

  it("§4.2.2 a 200 without freshness is not stored when the route has no ttl", () => {
    expect(storeDecision(policy(), request(), 200, {}, START)).toEqual({
      store: false,
      reason: "no_lifetime",
    });
  });

  it("§5.2.2.5 no-store: a response with no-store is not stored", () => {
    const { store } = setup({ ttl: 60 * SECOND });
    expect(answer(store, request(), 200, { "cache-control": "max-age=60, no-store" })).toBe(false);
    expect(store.lookup(request()).result).toBe("miss");
  });

  it("§5.2.2.7 private: a shared cache does not store it, qualified or not", () => {
    const p = policy({ ttl: 60 * SECOND });
    expect(storeDecision(p, request(), 200, { "cache-control": "private, max-age=60" }, START)).toEqual({
      store: false,
      reason: "private",
    });
    expect(storeDecision(p, request(), 200, { "cache-control": 'PRIVATE="x-user"' }, START).store).toBe(
      false,
    );
  });

  it("§5.2.2.4 no-cache: not stored, since the cache never revalidates and could not serve it", () => {
    const p = policy({ ttl: 60 * SECOND });
    expect(storeDecision(p, request(), 200, { "cache-control": "no-cache, max-age=60" }, START)).toEqual({
      store: false,
      reason: "no_cache",
    });
  });

  it("Set-Cookie: a response that sets a cookie is not stored", () => {
    const { store } = setup({ ttl: 60 * SECOND });
    const headers = { "cache-control": "public, max-age=60", "set-cookie": ["sid=1"] };
    expect(answer(store, request(), 200, headers)).toBe(false);
    expect(storeDecision(store.policy, request(), 200, headers, START)).toEqual({
      store: false,
      reason: "set_cookie",
    });
  });

  it("§3.5 without auth_aware, a response to Authorization is stored only if public, s-maxage or must-revalidate", () => {
    const p = policy();
    const auth = request({ authorization: "Bearer a" });
    expect(storeDecision(p, auth, 200, { "cache-control": "max-age=60" }, START)).toEqual({
      store: false,
      reason: "authorization",
    });
    for (const cc of ["public, max-age=60", "s-maxage=60", "must-revalidate, max-age=60"]) {
      expect(storeDecision(p, auth, 200, { "cache-control": cc }, START).store).toBe(true);
    }
  });

  it("§3.5 without auth_aware, an entry stored as public serves everyone", () => {
    const { store } = setup();
    answer(
      store,
      request({ authorization: "Bearer a" }),
      200,
      { "cache-control": "public, max-age=60" },
      "shared",
    );
    expect(bodyText(hit(store.lookup(request())))).toBe("shared");
    expect(bodyText(hit(store.lookup(request({ authorization: "Bearer b" }))))).toBe("shared");
  });

  it("§3.5 without auth_aware, a request with Authorization is not answered by an entry not declared shareable", () => {
    const { store } = setup();
    answer(store, request(), 200, { "cache-control": "max-age=60" }, "anonymous");
    expect(store.lookup(request({ authorization: "Bearer a" })).result).toBe("miss");
    expect(store.lookup(request()).result).toBe("hit");
  });

  it("auth_aware: an entry is served only to the same credential, never to another or to none", () => {
    const { store } = setup({ auth_aware: true });
    expect(
      answer(store, request({ authorization: "Bearer a" }), 200, { "cache-control": "max-age=60" }, "A"),
    ).toBe(true);
    expect(bodyText(hit(store.lookup(request({ authorization: "Bearer a" }))))).toBe("A");
    expect(store.lookup(request({ authorization: "Bearer b" })).result).toBe("miss");
    expect(store.lookup(request()).result).toBe("miss");
  });

  it("auth_aware: Cookie is a credential too", () => {
    const { store } = setup({ auth_aware: true });
    answer(store, request({ cookie: "sid=1" }), 200, { "cache-control": "max-age=60" }, "one");
    answer(store, request({ cookie: "sid=2" }), 200, { "cache-control": "max-age=60" }, "two");
    expect(bodyText(hit(store.lookup(request({ cookie: "sid=1" }))))).toBe("one");
    expect(bodyText(hit(store.lookup(request({ cookie: "sid=2" }))))).toBe("two");
    expect(store.lookup(request()).result).toBe("miss");
  });
});

describe("freshness and age (RFC 9111 §4.2, §5.1, §5.3)", () => {
  it("§4.2.1 s-maxage takes precedence over max-age in a shared cache", () => {
    const { store, advance } = setup();
    answer(store, request(), 200, { "cache-control": "max-age=100, s-maxage=10" });
    advance(10 * SECOND - 1);
    expect(store.lookup(request()).result).toBe("hit");
    advance(1);
    expect(store.lookup(request()).result).toBe("miss");
  });

  it("§5.3 max-age takes precedence over Expires", () => {
    const { store, advance } = setup();
    answer(store, request(), 200, {
      "cache-control": "max-age=10",
      date: httpDate(START),
      expires: httpDate(START + 3600 * SECOND),
    });
    advance(10 * SECOND);
    expect(store.lookup(request()).result).toBe("miss");
  });

  it("§5.3 Expires − Date gives the freshness lifetime", () => {
    const { store, advance } = setup();
    // The upstream's clock runs an hour behind ours: only the difference counts.
    const date = START - 3600 * SECOND;
    answer(store, request(), 200, { date: httpDate(date), expires: httpDate(date + 20 * SECOND) });
    advance(20 * SECOND - 1);
    expect(store.lookup(request()).result).toBe("hit");
    advance(1);
    expect(store.lookup(request()).result).toBe("miss");
  });

  it("§5.3 Expires without a valid Date is counted from the time it was received", () => {
    const d = storeDecision(policy(), request(), 200, { expires: httpDate(START + 5 * SECOND) }, START);
    expect(d).toMatchObject({ store: true, expiresAt: START + 5 * SECOND });
  });

  it('§5.3 an invalid Expires ("0", a bare year) means already expired: not stored', () => {
    for (const expires of ["0", "2099", "tomorrow"]) {
      expect(storeDecision(policy({ ttl: 60 * SECOND }), request(), 200, { expires }, START)).toEqual({
        store: false,
        reason: "stale",
      });
    }
  });

  it("§5.2.2.1 an invalid max-age means stale: not stored, and the ttl does not rescue it", () => {
    expect(
      storeDecision(policy({ ttl: 60 * SECOND }), request(), 200, { "cache-control": "max-age=soon" }, START),
    ).toEqual({ store: false, reason: "stale" });
  });

  it("§4.2.3 the Age the upstream reported is subtracted from the lifetime", () => {
    const { store, advance } = setup();
    answer(store, request(), 200, { "cache-control": "max-age=60", age: "50" });
    advance(10 * SECOND - 1);
    expect(store.lookup(request()).result).toBe("hit");
    advance(1);
    expect(store.lookup(request()).result).toBe("miss");
    expect(
      storeDecision(policy(), request(), 200, { "cache-control": "max-age=60", age: "60" }, START),
    ).toEqual({
      store: false,
      reason: "stale",
    });
  });

  it("§5.1 a served entry carries its current Age: the upstream's plus the time it was stored here", () => {
    const { store, advance, now } = setup();
    answer(store, request(), 200, { "cache-control": "max-age=600", age: "7", connection: "close" });
    advance(12_500);
    const headers = servedHeaders(hit(store.lookup(request())), now());
    expect(headers.age).toBe("19");
    expect(headers.connection).toBeUndefined();
  });

  it("§4.2.1 an upstream lifetime overrides the route's ttl, shorter or longer", () => {
    const p = policy({ ttl: 60 * SECOND });
    expect(storeDecision(p, request(), 200, { "cache-control": "max-age=10" }, START)).toMatchObject({
      expiresAt: START + 10 * SECOND,
    });
    expect(storeDecision(p, request(), 200, { "cache-control": "max-age=600" }, START)).toMatchObject({
      expiresAt: START + 600 * SECOND,
    });
    expect(storeDecision(p, request(), 200, {}, START)).toMatchObject({ expiresAt: START + 60 * SECOND });
  });

  it("§4 an expired entry is a miss and is dropped", () => {
    const { store, advance } = setup();
    answer(store, request(), 200, { "cache-control": "max-age=1" });
    advance(SECOND);
    expect(store.lookup(request()).result).toBe("miss");
    expect(store.entries).toBe(0);
    expect(store.bytes).toBe(0);
  });
});

describe("Vary (RFC 9111 §4.1)", () => {
  const varying = { "cache-control": "max-age=60", vary: "Accept-Language" };

  it("§4.1 a request matches a stored response only with the same values of its Vary headers", () => {
    const { store } = setup();
    answer(store, request({ "accept-language": "en" }), 200, varying, "english");
    expect(bodyText(hit(store.lookup(request({ "accept-language": "en" }))))).toBe("english");
    expect(store.lookup(request({ "accept-language": "de" })).result).toBe("miss");
    expect(store.lookup(request()).result).toBe("miss");
  });

  it("§4.1 each variant is kept beside the others", () => {
    const { store } = setup();
    answer(store, request({ "accept-language": "en" }), 200, varying, "english");
    answer(store, request({ "accept-language": "de" }), 200, varying, "deutsch");
    expect(bodyText(hit(store.lookup(request({ "accept-language": "de" }))))).toBe("deutsch");
    expect(bodyText(hit(store.lookup(request({ "accept-language": "en" }))))).toBe("english");
  });

  it("§4.1 values are normalized: whitespace trimmed, repeated headers combined", () => {
    const { store } = setup();
    answer(store, request({ "accept-encoding": "gzip,  br" }), 200, { ...varying, vary: "accept-encoding" });
    expect(store.lookup(request({ "accept-encoding": " gzip, br " })).result).toBe("hit");
    expect(store.lookup(request({ "accept-encoding": ["gzip", "br"] })).result).toBe("hit");
    expect(store.lookup(request({ "accept-encoding": "br, gzip" })).result).toBe("miss");
  });

  it("§4.1 an absent header does not match an empty one", () => {
    const { store } = setup();
    answer(store, request(), 200, varying);
    expect(store.lookup(request({ "accept-language": "" })).result).toBe("miss");
    expect(store.lookup(request()).result).toBe("hit");
  });

  it("§4.1 Vary: * is never stored", () => {
    const { store } = setup({ ttl: 60 * SECOND });
    expect(answer(store, request(), 200, { "cache-control": "max-age=60", vary: "accept, *" })).toBe(false);
    expect(storeDecision(store.policy, request(), 200, { vary: "*" }, START)).toEqual({
      store: false,
      reason: "vary_star",
    });
  });

  it("the route's vary_headers are part of every entry's variant", () => {
    const { store } = setup({ vary_headers: ["X-Tenant"] });
    answer(store, request({ "x-tenant": "a" }), 200, { "cache-control": "max-age=60" }, "tenant a");
    expect(bodyText(hit(store.lookup(request({ "x-tenant": "a" }))))).toBe("tenant a");
    expect(store.lookup(request({ "x-tenant": "b" })).result).toBe("miss");
  });

  it("§4.1 a response that varies on other headers replaces the variants chosen by the old ones", () => {
    const { store } = setup();
    answer(store, request({ "accept-language": "en" }), 200, varying);
    answer(store, request({ "accept-language": "de" }), 200, varying);
    const revalidating = request({ "accept-language": "de", "user-agent": "x", "cache-control": "no-cache" });
    answer(store, revalidating, 200, { ...varying, vary: "user-agent" });
    expect(store.entries).toBe(1);
    expect(store.lookup(request({ "accept-language": "en", "user-agent": "x" })).result).toBe("hit");
  });
});

describe("the store (size bounds, LRU, capture)", () => {
  /** An entry whose size is exactly `bytes`: the header line plus a body making up the rest. */
  function entryOf(bytes: number) {
    const headers = { "cache-control": "max-age=60" }; // 13 + 10 + 4 = 27 bytes
    return { headers, body: "x".repeat(bytes - 27) };
  }

  it("evicts the least recently used entries, by bytes, when max_size is exceeded", () => {
    const { store } = setup({ max_size: 300, max_entry_size: 300 });
    for (const path of ["/1", "/2", "/3"]) {
      const { headers, body } = entryOf(100);
      answer(store, request({}, path), 200, headers, body);
    }
    expect(store.bytes).toBe(300);
    store.lookup(request({}, "/1")); // /2 is now the least recently used
    const { headers, body } = entryOf(150);
    answer(store, request({}, "/4"), 200, headers, body);
    expect(store.bytes).toBe(250);
    expect(["/1", "/2", "/3", "/4"].map((p) => store.lookup(request({}, p)).result)).toEqual([
      "hit",
      "miss",
      "miss",
      "hit",
    ]);
  });

  it("keeps at most MAX_VARIANTS variants of a key, replacing the oldest", () => {
    const { store } = setup();
    const varying = { "cache-control": "max-age=60", vary: "x-v" };
    for (let i = 0; i <= MAX_VARIANTS; i++) answer(store, request({ "x-v": String(i) }), 200, varying);
    expect(store.entries).toBe(MAX_VARIANTS);
    expect(store.lookup(request({ "x-v": "0" })).result).toBe("miss");
    expect(store.lookup(request({ "x-v": "1" })).result).toBe("hit");
    expect(store.lookup(request({ "x-v": String(MAX_VARIANTS) })).result).toBe("hit");
  });

  it("eviction of credential-keyed entries leaves invalidation of the rest intact", () => {
    const { headers, body } = entryOf(100);
    const { store } = setup({ auth_aware: true, max_size: 200, max_entry_size: 200 });
    answer(store, request({ cookie: "a" }), 200, headers, body);
    answer(store, request({ cookie: "b" }), 200, headers, body);
    answer(store, request({ cookie: "c" }), 200, headers, body);
    expect(store.entries).toBe(2);
    store.invalidate(request({}, "/a", "DELETE"), 204);
    expect(store.entries).toBe(0);
    expect(store.bytes).toBe(0);
  });

  it("a capture that grows past max_entry_size is abandoned silently and stores nothing", () => {
    const { store } = setup({ max_entry_size: 100 });
    const lookup = store.lookup(request());
    if (lookup.result !== "miss") throw new Error("expected a miss");
    const capture = store.capture(request(), lookup.key);
    expect(capture.begin(200, { "cache-control": "max-age=60" })).toBe(true);
    capture.chunk(Buffer.alloc(60));
    capture.chunk(Buffer.alloc(60));
    capture.chunk(Buffer.alloc(60));
    expect(capture.end()).toBe(false);
    expect(store.entries).toBe(0);
  });

  it("a Content-Length above max_entry_size is refused at begin, before any buffering", () => {
    const { store } = setup({ max_entry_size: 100 });
    const capture = store.capture(request(), "k");
    expect(capture.begin(200, { "cache-control": "max-age=60", "content-length": "500" })).toBe(false);
  });

  it("a body shorter than its Content-Length (truncated upstream) is not stored", () => {
    const { store } = setup();
    expect(
      answer(store, request(), 200, { "cache-control": "max-age=60", "content-length": "10" }, "short"),
    ).toBe(false);
    expect(
      answer(store, request(), 200, { "cache-control": "max-age=60", "content-length": "5" }, "exact"),
    ).toBe(true);
  });

  it("an aborted capture stores nothing", () => {
    const { store } = setup();
    const capture = store.capture(request(), "GET example.com /a");
    capture.begin(200, { "cache-control": "max-age=60" });
    capture.chunk(Buffer.from("part"));
    capture.abort();
    expect(capture.end()).toBe(false);
    expect(store.entries).toBe(0);
  });

  it("stored chunks do not keep a larger buffer they were cut from alive", () => {
    const { store } = setup();
    const big = Buffer.alloc(64 * 1024, 97);
    const capture = store.capture(request(), "GET example.com /a");
    capture.begin(200, { "cache-control": "max-age=60" });
    capture.chunk(big.subarray(0, 3));
    capture.end();
    const entry = hit(store.lookup(request()));
    expect(entry.body[0]!.toString()).toBe("aaa");
    expect(entry.body[0]!.buffer.byteLength).toBe(3);
  });

  it("a broken request never throws: the cache answers bypass", () => {
    const { store } = setup();
    const broken = {
      method: "GET",
      host: "h",
      path: "/",
      headers: { "cache-control": 42 },
    } as unknown as CacheRequest;
    expect(store.lookup(broken)).toEqual({ result: "bypass", invalidate: false });
    expect(store.failures).toBe(1);
  });
});

describe("coalescing", () => {
  beforeEach(() => vi.useFakeTimers({ now: START }));
  afterEach(() => vi.useRealTimers());

  function coalescing(timeout = 5 * SECOND) {
    return new CacheStore(policy({ coalesce: true, coalesce_timeout: timeout }), Date.now);
  }

  function miss(store: CacheStore, req: CacheRequest): string {
    const lookup = store.lookup(req);
    if (lookup.result !== "miss") throw new Error("expected a miss");
    return lookup.key;
  }

  it("one leader goes upstream; followers are served from what it stored", async () => {
    const store = coalescing();
    const key = miss(store, request());
    const leader = store.coalescer.join(key) as LeaderTicket;
    const followers = [store.coalescer.join(key), store.coalescer.join(key)] as FollowerTicket[];
    expect([leader.leader, ...followers.map((f) => f.leader)]).toEqual([true, false, false]);
    expect(store.coalescer.waiters).toBe(2);
    const capture = store.capture(request(), key, leader);
    capture.begin(200, { "cache-control": "max-age=60" });
    capture.chunk(Buffer.from("once"));
    capture.end();
    expect(await Promise.all(followers.map((f) => f.wait))).toEqual(["stored", "stored"]);
    expect(store.coalescer.waiters).toBe(0);
    expect(bodyText(hit(store.lookup(request())))).toBe("once");
  });

  it("a follower waiting longer than coalesce_timeout goes upstream itself", async () => {
    const store = coalescing(2 * SECOND);
    const key = miss(store, request());
    store.coalescer.join(key);
    const follower = store.coalescer.join(key) as FollowerTicket;
    vi.advanceTimersByTime(2 * SECOND);
    expect(await follower.wait).toBe("go_upstream");
    expect(store.coalescer.waiters).toBe(0);
  });

  it("followers go upstream at once when the leader's answer is not storable", async () => {
    const store = coalescing();
    const key = miss(store, request());
    const leader = store.coalescer.join(key) as LeaderTicket;
    const follower = store.coalescer.join(key) as FollowerTicket;
    const capture = store.capture(request(), key, leader);
    expect(capture.begin(200, { "cache-control": "private" })).toBe(false);
    expect(await follower.wait).toBe("go_upstream");
    expect(vi.getTimerCount()).toBe(0);
  });

  it("followers go upstream when the leader's request fails", async () => {
    const store = coalescing();
    const key = miss(store, request());
    const leader = store.coalescer.join(key) as LeaderTicket;
    const follower = store.coalescer.join(key) as FollowerTicket;
    const capture = store.capture(request(), key, leader);
    capture.begin(200, { "cache-control": "max-age=60" });
    capture.abort();
    expect(await follower.wait).toBe("go_upstream");
    expect(store.coalescer.join(key).leader).toBe(true);
  });

  it("a leader that never reports holds its key no longer than coalesce_timeout", () => {
    const store = coalescing(SECOND);
    const stale = store.coalescer.join("k") as LeaderTicket;
    vi.advanceTimersByTime(SECOND);
    const next = store.coalescer.join("k") as LeaderTicket;
    expect(next.leader).toBe(true);
    const follower = store.coalescer.join("k");
    stale.done(true); // late: must not end the newer flight
    expect(follower.leader).toBe(false);
    expect(store.coalescer.waiters).toBe(1);
  });
});

describe("the registry", () => {
  it("keeps a route's entries across snapshots and drops the routes no longer cached", async () => {
    const registry = new CacheRegistry(() => START);
    const rule = policy({ coalesce: true });
    const store = registry.storeFor("api", rule);
    answer(store, request(), 200, { "cache-control": "max-age=60" });
    store.coalescer.join("k");
    const follower = store.coalescer.join("k") as FollowerTicket;
    expect(registry.storeFor("api", policy({ coalesce: true }))).toBe(store);
    expect(store.lookup(request()).result).toBe("hit");
    registry.storeFor("other", rule);
    registry.retain(new Set(["other"]));
    expect(await follower.wait).toBe("go_upstream");
    expect(registry.list().map((s) => s.route)).toEqual(["other"]);
    expect(store.entries).toBe(0);
  });

  it("drops a route's entries when its key shape (vary_headers, auth_aware) changes", () => {
    const registry = new CacheRegistry(() => START);
    const store = registry.storeFor("api", policy());
    answer(store, request(), 200, { "cache-control": "max-age=60" });
    registry.storeFor("api", policy({ ttl: 5 * SECOND }));
    expect(store.entries).toBe(1);
    registry.storeFor("api", policy({ vary_headers: ["x-tenant"] }));
    expect(store.entries).toBe(0);
  });
});
