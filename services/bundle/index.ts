/**
 * The bundle envelope (DESIGN.md, Bundle): a compact JWS, EdDSA/Ed25519 with the key's
 * thumbprint as kid and typ coherent-bundle+jws, over a versioned, fleet-bound payload that
 * carries a canonical config and its hash. The authority signs; agents and distributors
 * verify with the public keys they trust.
 */
export { publicJwkOf } from "./ed25519.js";
export { BundleError, BundleErrorCode, KeyError, KeyErrorCode } from "./errors.js";
export { Keyring, type TrustedKeySource, type TrustedKeyStatus } from "./keyring.js";
export {
  type GeneratedKey,
  generateSigningKey,
  loadSigningKey,
  type SigningKey,
  type SigningKeySource,
  type WrittenKeyPair,
  writeKeyPair,
} from "./keys.js";
export {
  BUNDLE_SCHEMA,
  BUNDLE_TYP,
  type BundleEnvelope,
  type BundlePayload,
  contentSha256,
  MAX_PAYLOAD_DEPTH,
} from "./payload.js";
export { signBundle } from "./sign.js";
export {
  DEFAULT_MAX_BUNDLE_BYTES,
  MAX_BUNDLE_MESSAGE_BYTES,
  type VerifyOptions,
  verifyBundle,
  verifyBundleEnvelope,
} from "./verify.js";
