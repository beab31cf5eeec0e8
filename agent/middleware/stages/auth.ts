/**
 * The `auth` stage: a JWT bearer token (RFC 6750), verified against the issuer's keys.
 *
 * - **Algorithms**: `algorithms`, by default every asymmetric one the config knows. `none` is
 *   never accepted, nor HS*: an HMAC needs a shared secret, which the config has no place for,
 *   and a public key must never be taken for one.
 * - **Claims**: `iss` must be `issuer`; `aud` must include one of `audience` when it is set;
 *   `exp` is required (a token without one would never expire) and, like `nbf`, is checked
 *   with `clock_skew` of tolerance, 30 s by default: enough for clocks kept by NTP, while an
 *   expired token stays usable for at most that.
 * - **Forwarded claims**: the headers named by `forward_claims` are removed from every
 *   request first, so a client cannot forge them, then set from the verified claims: strings,
 *   numbers and booleans as they are, arrays of them joined with ",", objects as JSON. A value
 *   that cannot be a header value (control characters, beyond Latin-1) is left out.
 * - **Answers**: 401 `unauthorized` with `WWW-Authenticate: Bearer realm="coherent"` when
 *   there is no bearer token, and with `error="invalid_token"` and a fixed `error_description`
 *   when it does not verify — including when the keys cannot be fetched, which the registry
 *   logs.
 *
 * A token that verified is kept in a TokenCache (see there for the trade-off), so a client
 * reusing it is answered synchronously.
 */
import { errors, type JWTPayload, type JWTVerifyGetKey, type JWTVerifyOptions, jwtVerify } from "jose";
import type { JwtConfig } from "../../../services/config/index.js";
import { ProxyError } from "../../errors.js";
import type { MiddlewareContext, Rejection, RequestHook, StageResult } from "../middleware.js";
import { rejection } from "../middleware.js";
import { TokenCache } from "../token-cache.js";

const DEFAULT_ALGORITHMS: NonNullable<JwtConfig["algorithms"]> = [
  "EdDSA",
  "ES256",
  "ES384",
  "ES512",
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
];
export const DEFAULT_CLOCK_SKEW_MS = 30_000;
const REALM = 'Bearer realm="coherent"';

/** A verified token, with the forwarded headers' values in `forward_claims` order. */
export interface VerifiedToken {
  readonly claims: Readonly<JWTPayload>;
  readonly forwarded: readonly (string | undefined)[];
}

export interface AuthStageOptions {
  readonly getKey: JWTVerifyGetKey;
  readonly now: () => number;
}

export function compileAuthStage(jwt: JwtConfig, options: AuthStageOptions): RequestHook {
  const stage = new JwtAuth(jwt, options);
  return (ctx) => stage.request(ctx);
}

class JwtAuth {
  readonly #claims: readonly string[];
  readonly #headers: readonly string[];
  readonly #skewMs: number;
  readonly #verifyOptions: JWTVerifyOptions;
  readonly #getKey: JWTVerifyGetKey;
  readonly #now: () => number;
  readonly #cache = new TokenCache<VerifiedToken>();

  constructor(jwt: JwtConfig, options: AuthStageOptions) {
    const forward = Object.entries(jwt.forward_claims ?? {});
    this.#claims = forward.map(([claim]) => claim);
    this.#headers = forward.map(([, header]) => header.toLowerCase());
    this.#skewMs = jwt.clock_skew ?? DEFAULT_CLOCK_SKEW_MS;
    this.#verifyOptions = {
      issuer: jwt.issuer,
      ...(jwt.audience !== undefined && { audience: jwt.audience }),
      algorithms: jwt.algorithms ?? DEFAULT_ALGORITHMS,
      clockTolerance: this.#skewMs / 1000,
      requiredClaims: ["exp"],
    };
    this.#getKey = options.getKey;
    this.#now = options.now;
  }

  request(ctx: MiddlewareContext): StageResult | Promise<StageResult> {
    const headers = ctx.upstreamHeaders;
    for (let i = 0; i < this.#headers.length; i++) delete headers[this.#headers[i]!];
    const token = bearerToken(ctx.req.headers.authorization);
    if (token === undefined) return NO_TOKEN;
    // Only well-formed tokens are ever cached, so the format is checked on a miss only.
    const known = token === "" ? undefined : this.#cache.get(token, this.#now());
    if (known === undefined) return B64TOKEN.test(token) ? this.#verify(token, ctx) : INVALID.malformed;
    this.#accept(ctx, known);
    return undefined;
  }

  async #verify(token: string, ctx: MiddlewareContext): Promise<StageResult> {
    const now = this.#now();
    let claims: JWTPayload;
    try {
      ({ payload: claims } = await jwtVerify(token, this.#getKey, {
        ...this.#verifyOptions,
        currentDate: new Date(now),
      }));
    } catch (error) {
      return invalidToken(error);
    }
    const verified: VerifiedToken = { claims, forwarded: this.#claims.map((c) => headerValue(claims[c])) };
    this.#cache.set(token, verified, (claims.exp as number) * 1000 + this.#skewMs, now);
    this.#accept(ctx, verified);
    return undefined;
  }

  #accept(ctx: MiddlewareContext, verified: VerifiedToken): void {
    ctx.claims = verified.claims;
    const headers = ctx.upstreamHeaders;
    for (let i = 0; i < this.#headers.length; i++) {
      const value = verified.forwarded[i];
      if (value !== undefined) headers[this.#headers[i]!] = value;
    }
  }
}

const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;
const BEARER = /^bearer(?: |$)/i;

/** The credentials of an `Authorization: Bearer` header; undefined without one (no header, another scheme). */
function bearerToken(value: string | undefined): string | undefined {
  if (value === undefined || !BEARER.test(value)) return undefined;
  return value.slice(7).trim();
}

const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

function headerValue(claim: unknown): string | undefined {
  if (claim === undefined || claim === null) return undefined;
  let text: string;
  if (typeof claim === "string") text = claim;
  else if (typeof claim === "number" || typeof claim === "boolean") text = String(claim);
  else if (Array.isArray(claim) && claim.every((v) => typeof v !== "object" || v === null))
    text = claim.join(",");
  else text = JSON.stringify(claim);
  return HEADER_VALUE.test(text) ? text : undefined;
}

const NO_TOKEN = rejection(ProxyError.Unauthorized, { "www-authenticate": REALM });

function invalid(description: string): Rejection {
  return rejection(ProxyError.Unauthorized, {
    "www-authenticate": `${REALM}, error="invalid_token", error_description="${description}"`,
  });
}

const INVALID = {
  malformed: invalid("the token is malformed"),
  expired: invalid("the token has expired"),
  notYetValid: invalid("the token is not valid yet"),
  noExpiry: invalid("the token has no expiry"),
  issuer: invalid("the token's issuer is not accepted"),
  audience: invalid("the token's audience is not accepted"),
  claims: invalid("the token's claims are not accepted"),
  algorithm: invalid("the token's algorithm is not accepted"),
  key: invalid("no signing key matches the token"),
  signature: invalid("the token's signature is invalid"),
  keysUnavailable: invalid("the signing keys are unavailable"),
};

function invalidToken(error: unknown): Rejection {
  if (error instanceof errors.JWTExpired) return INVALID.expired;
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === "nbf") return INVALID.notYetValid;
    if (error.claim === "iss") return INVALID.issuer;
    if (error.claim === "aud") return INVALID.audience;
    if (error.claim === "exp" && error.reason === "missing") return INVALID.noExpiry;
    return INVALID.claims;
  }
  if (error instanceof errors.JOSEAlgNotAllowed || error instanceof errors.JOSENotSupported)
    return INVALID.algorithm;
  if (error instanceof errors.JWKSNoMatchingKey) return INVALID.key;
  if (error instanceof errors.JWSSignatureVerificationFailed) return INVALID.signature;
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid) return INVALID.malformed;
  return INVALID.keysUnavailable;
}
