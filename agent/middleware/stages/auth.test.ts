import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type JWTVerifyGetKey, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JwtConfig } from "../../../services/config/index.js";
import { JwksRegistry } from "../jwks-registry.js";
import type { MiddlewareContext, RequestHook, StageResult } from "../middleware.js";
import {
  base64url,
  context,
  type JwksServer,
  type SigningKey,
  sign,
  signingKey,
  silentLogger,
  startJwksServer,
} from "../test-support.js";
import { compileAuthStage } from "./auth.js";
import { jwtKeys } from "./jwt-keys.js";

const NOW = Date.UTC(2030, 0, 1);
const ISSUER = "https://auth.example.com";

let server: JwksServer;
let es256: SigningKey;
let rs256: SigningKey;
let stranger: SigningKey;

beforeAll(async () => {
  es256 = await signingKey("es-1");
  rs256 = await signingKey("rs-1", "RS256");
  stranger = await signingKey("es-1");
  server = await startJwksServer([es256.jwk, rs256.jwk]);
});
afterAll(() => server.close());

function clock(start = NOW) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

function jwt(overrides: Partial<JwtConfig> = {}): JwtConfig {
  return { issuer: ISSUER, audience: "api", jwks_uri: server.jwksUri, ...overrides };
}

/** An auth stage over the loopback JWKS, whose key lookups are counted. */
function stage(config: JwtConfig = jwt(), now: () => number = () => NOW) {
  const keys = jwtKeys(config, new JwksRegistry({ logger: silentLogger }));
  const lookups = { count: 0 };
  const getKey: JWTVerifyGetKey = (header, token) => {
    lookups.count++;
    return keys.getKey(header, token);
  };
  return { hook: compileAuthStage(config, { getKey, now }), lookups };
}

async function run(hook: RequestHook, headers: Record<string, string> = {}) {
  const ctx = context(headers);
  const result = await hook(ctx);
  return { result, ctx };
}

function bearer(token: string) {
  return { authorization: `Bearer ${token}` };
}

const good = { iss: ISSUER, aud: "api", sub: "alice" };

function invalidToken(result: StageResult, description: string) {
  expect(result).toEqual({
    status: 401,
    category: "unauthorized",
    headers: {
      "www-authenticate": `Bearer realm="coherent", error="invalid_token", error_description="${description}"`,
    },
  });
}

describe("auth stage: tokens verified against a JWKS served over HTTP", () => {
  it("accepts a well-signed token and exposes its claims", async () => {
    const { hook } = stage();
    const { result, ctx } = await run(hook, bearer(await sign(es256, good, NOW)));
    expect(result).toBeUndefined();
    expect(ctx.claims).toMatchObject({ sub: "alice", iss: ISSUER });
  });

  it("accepts every asymmetric algorithm by default (RS256 here)", async () => {
    const { result } = await run(stage().hook, bearer(await sign(rs256, good, NOW)));
    expect(result).toBeUndefined();
  });

  it("answers a request without a token with a realm and no error code (RFC 6750 3.1)", async () => {
    const expected = {
      status: 401,
      category: "unauthorized",
      headers: { "www-authenticate": 'Bearer realm="coherent"' },
    };
    expect(await run(stage().hook)).toMatchObject({ result: expected });
    expect(await run(stage().hook, { authorization: "Basic YWxpY2U6c2VjcmV0" })).toMatchObject({
      result: expected,
    });
  });

  it("refuses malformed Authorization headers as invalid tokens", async () => {
    const { hook } = stage();
    for (const value of ["Bearer", "Bearer   ", "Bearer a b", "Bearer not/a:token", "Bearer abc.def.ghi"]) {
      invalidToken((await run(hook, { authorization: value })).result, "the token is malformed");
    }
  });

  it("refuses an expired token, but not one expired within the clock skew", async () => {
    const { hook } = stage();
    const seconds = NOW / 1000;
    const expired = await sign(es256, { ...good, exp: seconds - 31 }, NOW);
    invalidToken((await run(hook, bearer(expired))).result, "the token has expired");
    const barely = await sign(es256, { ...good, exp: seconds - 29 }, NOW);
    expect((await run(hook, bearer(barely))).result).toBeUndefined();
  });

  it("honours a configured clock skew", async () => {
    const { hook } = stage(jwt({ clock_skew: 0 }));
    const expired = await sign(es256, { ...good, exp: NOW / 1000 - 1 }, NOW);
    invalidToken((await run(hook, bearer(expired))).result, "the token has expired");
  });

  it("refuses a token that is not valid yet", async () => {
    const token = await sign(es256, { ...good, nbf: NOW / 1000 + 60 }, NOW);
    invalidToken((await run(stage().hook, bearer(token))).result, "the token is not valid yet");
  });

  it("refuses a token without an expiry", async () => {
    const token = await new SignJWT(good)
      .setProtectedHeader({ alg: "ES256", kid: es256.kid })
      .sign(es256.privateKey);
    invalidToken((await run(stage().hook, bearer(token))).result, "the token has no expiry");
  });

  it("refuses a wrong audience, and accepts any one of a list", async () => {
    const token = await sign(es256, { ...good, aud: "billing" }, NOW);
    invalidToken((await run(stage().hook, bearer(token))).result, "the token's audience is not accepted");
    const { result } = await run(stage(jwt({ audience: ["api", "billing"] })).hook, bearer(token));
    expect(result).toBeUndefined();
  });

  it("refuses a wrong issuer", async () => {
    const token = await sign(es256, { ...good, iss: "https://evil.example.com" }, NOW);
    invalidToken((await run(stage().hook, bearer(token))).result, "the token's issuer is not accepted");
  });

  it("refuses a token whose kid is in no key set", async () => {
    const token = await sign(es256, good, NOW, { kid: "nobody" });
    invalidToken((await run(stage().hook, bearer(token))).result, "no signing key matches the token");
  });

  it("refuses a token signed by another key under a known kid", async () => {
    const token = await sign(stranger, good, NOW);
    invalidToken((await run(stage().hook, bearer(token))).result, "the token's signature is invalid");
  });

  it("refuses a tampered payload", async () => {
    const [header, , signature] = (await sign(es256, good, NOW)).split(".");
    const forged = `${header}.${base64url({ ...good, sub: "admin", exp: NOW / 1000 + 60 })}.${signature}`;
    invalidToken((await run(stage().hook, bearer(forged))).result, "the token's signature is invalid");
  });

  it('refuses alg "none" without looking up a key', async () => {
    const { hook, lookups } = stage();
    const token = `${base64url({ alg: "none", typ: "JWT" })}.${base64url({ ...good, exp: NOW / 1000 + 60 })}.`;
    invalidToken((await run(hook, bearer(token))).result, "the token's algorithm is not accepted");
    expect(lookups.count).toBe(0);
  });

  it("refuses HS256, even signed with the public key's bytes as the secret", async () => {
    const secret = new TextEncoder().encode(JSON.stringify(es256.jwk));
    const token = await new SignJWT({ ...good, exp: NOW / 1000 + 60 })
      .setProtectedHeader({ alg: "HS256", kid: es256.kid })
      .sign(secret);
    const { hook, lookups } = stage();
    invalidToken((await run(hook, bearer(token))).result, "the token's algorithm is not accepted");
    expect(lookups.count).toBe(0);
  });

  it("refuses an algorithm left out of `algorithms`", async () => {
    const { hook } = stage(jwt({ algorithms: ["ES256"] }));
    const token = await sign(rs256, good, NOW);
    invalidToken((await run(hook, bearer(token))).result, "the token's algorithm is not accepted");
  });
});

describe("auth stage: keys from jwks_file", () => {
  function fileWith(keys: unknown): string {
    const path = join(mkdtempSync(join(tmpdir(), "jwks-")), "jwks.json");
    writeFileSync(path, JSON.stringify({ keys }));
    return path;
  }

  it("verifies with the file's keys and refuses others", async () => {
    const config = jwt({ jwks_uri: undefined, jwks_file: fileWith([es256.jwk]) });
    const keys = jwtKeys(config, new JwksRegistry({ logger: silentLogger }));
    expect(keys.jwksKey).toBeUndefined();
    const hook = compileAuthStage(config, { getKey: keys.getKey, now: () => NOW });
    expect((await run(hook, bearer(await sign(es256, good, NOW)))).result).toBeUndefined();
    invalidToken(
      (await run(hook, bearer(await sign(rs256, good, NOW)))).result,
      "no signing key matches the token",
    );
  });

  it("throws at compile time when the file is missing or not a key set", () => {
    const registry = new JwksRegistry({ logger: silentLogger });
    expect(() => jwtKeys(jwt({ jwks_file: "/nonexistent/jwks.json" }), registry)).toThrow(/ENOENT/);
    const path = join(mkdtempSync(join(tmpdir(), "jwks-")), "jwks.json");
    writeFileSync(path, '{"not":"keys"}');
    expect(() => jwtKeys(jwt({ jwks_file: path }), registry)).toThrow(/JSON Web Key Set/);
  });
});

describe("auth stage: forwarded claims", () => {
  const forwarding = () =>
    jwt({
      forward_claims: { sub: "x-user", roles: "x-roles", tenant: "x-tenant", meta: "x-meta", note: "x-note" },
    });

  it("sets headers from verified claims, in the shapes a header can carry", async () => {
    const token = await sign(
      es256,
      { ...good, roles: ["admin", "ops"], tenant: 42, meta: { tier: "gold" }, note: "line\nbreak" },
      NOW,
    );
    const { result, ctx } = await run(stage(forwarding()).hook, bearer(token));
    expect(result).toBeUndefined();
    expect(ctx.upstreamHeaders).toMatchObject({
      "x-user": "alice",
      "x-roles": "admin,ops",
      "x-tenant": "42",
      "x-meta": '{"tier":"gold"}',
    });
    expect(ctx.upstreamHeaders).not.toHaveProperty("x-note");
  });

  it("removes client-sent copies, whether or not the token carries the claim", async () => {
    const token = await sign(es256, good, NOW);
    const { ctx } = await run(stage(forwarding()).hook, {
      ...bearer(token),
      "x-user": "mallory",
      "x-roles": "admin",
    });
    expect(ctx.upstreamHeaders["x-user"]).toBe("alice");
    expect(ctx.upstreamHeaders).not.toHaveProperty("x-roles");
  });

  it("removes client-sent copies from refused requests too", async () => {
    const { result, ctx } = await run(stage(forwarding()).hook, { "x-user": "mallory" });
    expect(result).toMatchObject({ status: 401 });
    expect(ctx.upstreamHeaders).not.toHaveProperty("x-user");
  });
});

describe("auth stage: verified-token cache", () => {
  it("answers a reused token synchronously, without verifying it again", async () => {
    const { hook, lookups } = stage(jwt({ forward_claims: { sub: "x-user" } }));
    const token = await sign(es256, good, NOW);
    expect(await hook(context(bearer(token)))).toBeUndefined();
    expect(lookups.count).toBe(1);

    const ctx: MiddlewareContext = context({ ...bearer(token), "x-user": "mallory" });
    const result = hook(ctx);
    expect(result).toBeUndefined();
    expect(lookups.count).toBe(1);
    expect(ctx.claims).toMatchObject({ sub: "alice" });
    expect(ctx.upstreamHeaders["x-user"]).toBe("alice");
  });

  it("does not cache refusals", async () => {
    const { hook, lookups } = stage();
    const token = await sign(es256, { ...good, aud: "billing" }, NOW);
    await hook(context(bearer(token)));
    const again = hook(context(bearer(token)));
    expect(again).toBeInstanceOf(Promise);
    expect(await again).toMatchObject({ status: 401 });
    expect(lookups.count).toBe(2);
  });

  it("stops trusting a cached token once it expires", async () => {
    const c = clock();
    const { hook } = stage(jwt(), c.now);
    const token = await sign(es256, { ...good, exp: NOW / 1000 + 60 }, NOW);
    expect(await hook(context(bearer(token)))).toBeUndefined();
    c.advance(60_000 + 29_000);
    expect(hook(context(bearer(token)))).toBeUndefined();
    c.advance(1_000);
    invalidToken(await hook(context(bearer(token))), "the token has expired");
  });

  it("verifies a long-lived token again after the cache's maximum age", async () => {
    const c = clock();
    const { hook, lookups } = stage(jwt(), c.now);
    const token = await sign(es256, good, NOW);
    await hook(context(bearer(token)));
    c.advance(5 * 60_000 - 1);
    expect(hook(context(bearer(token)))).toBeUndefined();
    c.advance(1);
    expect(await hook(context(bearer(token)))).toBeUndefined();
    expect(lookups.count).toBe(2);
  });

  it("keys the cache by the whole token: a cached token's tampered twin is verified", async () => {
    const { hook, lookups } = stage();
    const token = await sign(es256, good, NOW);
    await hook(context(bearer(token)));
    const tampered = `${token.slice(0, -2)}${token.endsWith("AA") ? "BB" : "AA"}`;
    invalidToken(await hook(context(bearer(tampered))), "the token's signature is invalid");
    expect(lookups.count).toBe(2);
  });
});
