/** Fixtures shared by this folder's tests: a canonical config, payloads, and raw JWS signing. */
import { KeyObject, sign } from "node:crypto";
import { CompactSign } from "jose";
import { canonicalize, type DynamicConfig, parseDynamicConfig } from "../config/index.js";
import type { SigningKey } from "./keys.js";
import { BUNDLE_SCHEMA, BUNDLE_TYP, type BundlePayload, contentSha256 } from "./payload.js";

export const CONFIG_YAML = `
routes:
  - id: api
    path_prefix: /api/
    pool: api-pool
    policy:
      timeout: 5s
    require_tls: true
pools:
  - id: api-pool
    endpoints:
      - address: 10.0.0.1:8000
      - address: 10.0.0.2:8000
`;

export function canonicalConfig(yaml: string = CONFIG_YAML): DynamicConfig {
  const result = parseDynamicConfig(yaml);
  if (!result.ok) throw new Error(`fixture config is invalid: ${JSON.stringify(result.errors)}`);
  return canonicalize(result.value);
}

export function payloadFor(config: DynamicConfig, fields: Partial<BundlePayload> = {}): BundlePayload {
  return {
    schema: BUNDLE_SCHEMA,
    fleet: "edge",
    version: 3,
    parent: 2,
    created_at: "2025-01-02T03:04:05.000Z",
    created_by: "alice",
    content_sha256: contentSha256(config),
    config,
    ...fields,
  };
}

/**
 * A JWS over any payload and header, signed by `key` by hand: for what signBundle (and jose)
 * would never write, so that verifyBundle's checks after the signature can be reached.
 */
export function signRaw(
  payload: string | Uint8Array,
  key: SigningKey,
  header: Record<string, unknown> = { alg: "EdDSA", kid: key.kid, typ: BUNDLE_TYP },
): string {
  const input = `${base64url(JSON.stringify(header))}.${base64url(payload)}`;
  const privateKey = key.privateKey instanceof KeyObject ? key.privateKey : KeyObject.from(key.privateKey);
  return `${input}.${sign(null, Buffer.from(input), privateKey).toString("base64url")}`;
}

/** What jose's own signer writes for a payload text: for interoperability checks. */
export async function signWithJose(text: string, key: SigningKey): Promise<string> {
  return new CompactSign(new TextEncoder().encode(text))
    .setProtectedHeader({ alg: "EdDSA", kid: key.kid, typ: BUNDLE_TYP })
    .sign(key.privateKey);
}

export function base64url(data: string | Uint8Array): string {
  return Buffer.from(data).toString("base64url");
}
