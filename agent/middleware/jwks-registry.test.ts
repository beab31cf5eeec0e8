import { jwtVerify } from "jose";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import {
  JwksRegistry,
  type JwksSettings,
  JwksUnavailableError,
  jwksKey,
  type RemoteJwks,
} from "./jwks-registry.js";
import { type JwksServer, type SigningKey, sign, signingKey, startJwksServer } from "./test-support.js";

const START = Date.UTC(2030, 0, 1);

let first: SigningKey;
let second: SigningKey;
let third: SigningKey;

beforeAll(async () => {
  first = await signingKey("k1");
  second = await signingKey("k2");
  third = await signingKey("k3");
});

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/**
 * jose times its cooldown with Date.now, so the tests move Date (and only Date: sockets and
 * fetch keep real timers) instead of waiting.
 */
function fakeDate(): { advance(ms: number): void } {
  vi.useFakeTimers({ toFake: ["Date"] });
  vi.setSystemTime(START);
  return { advance: (ms) => vi.setSystemTime(Date.now() + ms) };
}

async function server(keys = [first.jwk]): Promise<JwksServer> {
  const started = await startJwksServer(keys);
  cleanups.push(() => started.close());
  return started;
}

function logger() {
  return { warn: vi.fn(), info: vi.fn() };
}

function registry(log = logger(), settings: Partial<JwksSettings> = {}) {
  return new JwksRegistry({ logger: log, settings });
}

async function verify(jwks: RemoteJwks, key: SigningKey, kid = key.kid): Promise<string> {
  try {
    await jwtVerify(await sign(key, {}, Date.now(), { kid }), jwks.getKey);
    return "ok";
  } catch (error) {
    return (error as { code?: string }).code ?? String(error);
  }
}

describe("JwksRegistry", () => {
  it("fetches a key set when it is first asked for, not on the first request", async () => {
    const jwks = await server();
    registry().jwksFor({ uri: jwks.jwksUri });
    await vi.waitFor(() => expect(jwks.fetches).toBe(1));
  });

  it("keeps an entry across snapshots until it is no longer retained", async () => {
    const jwks = await server();
    const keys = registry();
    const source = { uri: jwks.jwksUri };
    const entry = keys.jwksFor(source);
    expect(keys.jwksFor(source)).toBe(entry);
    keys.retain(new Set([jwksKey(source)]));
    expect(keys.jwksFor(source)).toBe(entry);
    keys.retain(new Set());
    expect(keys.jwksFor(source)).not.toBe(entry);
  });

  it("refetches once for an unknown kid after jose's cooldown, and then knows the rotated key", async () => {
    const date = fakeDate();
    const jwks = await server();
    const entry = registry().jwksFor({ uri: jwks.jwksUri });
    expect(await verify(entry, first)).toBe("ok");
    expect(jwks.fetches).toBe(1);

    jwks.keys = [first.jwk, second.jwk];
    // Within the cooldown of the last fetch an unknown kid is refused without a fetch.
    date.advance(29_000);
    expect(await verify(entry, second)).toBe("ERR_JWKS_NO_MATCHING_KEY");
    expect(jwks.fetches).toBe(1);

    date.advance(1_000);
    expect(await verify(entry, second)).toBe("ok");
    expect(jwks.fetches).toBe(2);
    expect(await verify(entry, first)).toBe("ok");
    expect(await verify(entry, second)).toBe("ok");
    expect(jwks.fetches).toBe(2);
  });

  it("lets a burst of made-up kids cost the issuer a single fetch", async () => {
    const date = fakeDate();
    const jwks = await server();
    const entry = registry().jwksFor({ uri: jwks.jwksUri });
    expect(await verify(entry, first)).toBe("ok");
    date.advance(30_000);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => verify(entry, third, `made-up-${i}`)),
    );
    expect(new Set(results)).toEqual(new Set(["ERR_JWKS_NO_MATCHING_KEY"]));
    expect(jwks.fetches).toBe(2);
  });

  it("refreshes old keys in the background and verifies with the ones at hand meanwhile", async () => {
    const date = fakeDate();
    const jwks = await server();
    const entry = registry(logger(), { refreshInterval: 60_000 }).jwksFor({ uri: jwks.jwksUri });
    expect(await verify(entry, first)).toBe("ok");
    jwks.keys = [second.jwk];
    date.advance(60_000);
    // Verified with the held key although the server no longer lists it: nothing waited.
    expect(await verify(entry, first)).toBe("ok");
    await vi.waitFor(() => expect(jwks.fetches).toBe(2));
    await vi.waitFor(async () => expect(await verify(entry, second)).toBe("ok"));
    expect(jwks.fetches).toBe(2);
  });

  it("keeps the keys it has while the key set cannot be fetched", async () => {
    const date = fakeDate();
    const jwks = await server();
    const log = logger();
    const entry = registry(log).jwksFor({ uri: jwks.jwksUri });
    expect(await verify(entry, first)).toBe("ok");
    jwks.status = 503;
    // Past the refresh interval, and past jose's own default cache age (10 min) too.
    date.advance(11 * 60_000);
    expect(await verify(entry, first)).toBe("ok");
    await vi.waitFor(() => expect(log.warn).toHaveBeenCalledTimes(1));
    date.advance(60 * 60_000);
    expect(await verify(entry, first)).toBe("ok");
    await vi.waitFor(() => expect(jwks.fetches).toBe(3));
  });

  it("backs off after a failed fetch: requests fail at once, one warning per outage", async () => {
    const date = fakeDate();
    const jwks = await server();
    jwks.status = 500;
    const log = logger();
    const entry = registry(log).jwksFor({ uri: jwks.jwksUri });
    await vi.waitFor(() => expect(jwks.fetches).toBe(1));
    await vi.waitFor(() => expect(log.warn).toHaveBeenCalledTimes(1));

    expect(await verify(entry, first)).toBe("JWKS_UNAVAILABLE");
    expect(await verify(entry, first)).toBe("JWKS_UNAVAILABLE");
    expect(jwks.fetches).toBe(1);

    date.advance(30_000);
    expect(await verify(entry, first)).toBe("JWKS_UNAVAILABLE");
    expect(jwks.fetches).toBe(2);
    expect(log.warn).toHaveBeenCalledTimes(1);

    jwks.status = 200;
    date.advance(30_000);
    expect(await verify(entry, first)).toBe("ok");
    await vi.waitFor(() => expect(jwks.fetches).toBe(3));
    expect(log.info).toHaveBeenCalledTimes(1);
  });

  it("finds the key set of an issuer through its OpenID discovery document", async () => {
    const jwks = await server();
    const entry = registry().jwksFor({ issuer: jwks.url });
    expect(await verify(entry, first)).toBe("ok");
    expect(jwks.discoveries).toBe(1);
    expect(jwks.fetches).toBe(1);
  });

  it("refuses a discovery document that names another issuer", async () => {
    const jwks = await server();
    jwks.discovery = { issuer: "https://evil.example.com", jwks_uri: jwks.jwksUri };
    const log = logger();
    const entry = registry(log).jwksFor({ issuer: jwks.url });
    expect(await verify(entry, first)).toBe("JWKS_UNAVAILABLE");
    expect(jwks.fetches).toBe(0);
    expect(log.warn.mock.calls[0]?.[0]).toMatchObject({ event: "jwks_unavailable" });
  });

  it("reports fetch failures as JwksUnavailableError", async () => {
    const jwks = await server();
    jwks.status = 404;
    const entry = registry().jwksFor({ uri: jwks.jwksUri });
    const token = await sign(first, {}, Date.now());
    await expect(jwtVerify(token, entry.getKey)).rejects.toBeInstanceOf(JwksUnavailableError);
  });
});
