/**
 * Where an auth stage's verification keys come from, settled when its chain compiles:
 * `jwks_file` is read then (a change to the file takes a new config), `jwks_uri` — or, with
 * neither, the issuer's OpenID discovery document — is the JwksRegistry's long-lived entry.
 */
import { readFileSync } from "node:fs";
import { createLocalJWKSet, type JSONWebKeySet, type JWTVerifyGetKey } from "jose";
import type { JwtConfig } from "../../../services/config/index.js";
import { type JwksRegistry, type JwksSource, jwksKey } from "../jwks-registry.js";

export interface JwtKeys {
  readonly getKey: JWTVerifyGetKey;
  /** The registry entry the keys come from, for JwksRegistry.retain; undefined for a file. */
  readonly jwksKey: string | undefined;
}

/** Throws when `jwks_file` cannot be read or is not a key set. */
export function jwtKeys(jwt: JwtConfig, registry: JwksRegistry): JwtKeys {
  if (jwt.jwks_file !== undefined) {
    // createLocalJWKSet checks the shape; the cast only names what it expects.
    const jwks = JSON.parse(readFileSync(jwt.jwks_file, "utf8")) as JSONWebKeySet;
    return { getKey: createLocalJWKSet(jwks), jwksKey: undefined };
  }
  const source: JwksSource = jwt.jwks_uri !== undefined ? { uri: jwt.jwks_uri } : { issuer: jwt.issuer };
  return { getKey: registry.jwksFor(source).getKey, jwksKey: jwksKey(source) };
}
