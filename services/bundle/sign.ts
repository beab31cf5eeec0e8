import { CompactSign } from "jose";
import { canonicalJson } from "../config/index.js";
import { SIGNING_ALG } from "./ed25519.js";
import type { SigningKey } from "./keys.js";
import { BUNDLE_TYP, type BundlePayload } from "./payload.js";

const encoder = new TextEncoder();

/**
 * The compact JWS of a bundle, header `{alg: "EdDSA", kid, typ: "coherent-bundle+jws"}`. The
 * payload is canonical JSON — `config` first, as canonicalJson(config) — which verifyBundle's
 * hash check counts on. Called by the authority after the payload's hash was computed; it
 * checks nothing itself.
 */
export async function signBundle(payload: BundlePayload, key: SigningKey): Promise<string> {
  return new CompactSign(encoder.encode(canonicalJson(payload)))
    .setProtectedHeader({ alg: SIGNING_ALG, kid: key.kid, typ: BUNDLE_TYP })
    .sign(key.privateKey);
}
