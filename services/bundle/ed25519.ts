/**
 * Ed25519 public keys as JWKs whose kid is the RFC 7638 thumbprint: a kid is derived from the
 * key itself, so the authority, its store and every verifier agree on it without being told.
 */
import type { KeyObject } from "node:crypto";
import { calculateJwkThumbprint, type JWK } from "jose";
import { KeyError, KeyErrorCode } from "./errors.js";

export const SIGNING_ALG = "EdDSA";

function requireEd25519(key: KeyObject, where: string): void {
  if (key.asymmetricKeyType === "ed25519") return;
  throw new KeyError(
    KeyErrorCode.WrongType,
    `${where} holds a key of type ${key.asymmetricKeyType ?? "secret"}, not ed25519; bundles are signed with Ed25519 keys — make a pair with "coherent keys generate"`,
  );
}

/**
 * The public JWK of an Ed25519 key (public or private), with its thumbprint as kid; throws
 * `wrong_key_type` for any other kind of key. `where` names the key's origin for that message.
 */
export async function publicJwkOf(key: KeyObject, where = "the key"): Promise<JWK & { kid: string }> {
  requireEd25519(key, where);
  const { kty, crv, x } = key.export({ format: "jwk" });
  const kid = await calculateJwkThumbprint({ kty, crv, x }, "sha256");
  return { kty, crv, x, kid, alg: SIGNING_ALG, use: "sig" };
}
