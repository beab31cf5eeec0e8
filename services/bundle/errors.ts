/**
 * The closed sets of error codes of bundles and signing keys. Agents, distributors and the
 * authority match on `code` (an agent's NACK carries it), never on message text; the message
 * says what to do about it.
 */

/** Why verifyBundle refused a bundle. Every refusal is final: nothing of the bundle is used. */
export const BundleErrorCode = {
  /** Not a compact JWS, a header or payload that is not a JSON object, or a payload of the wrong shape. */
  Malformed: "malformed",
  /** The protected header's `typ` is not `coherent-bundle+jws`: some other JWS, not a bundle. */
  WrongTyp: "wrong_typ",
  /** The `kid` names no trusted key (absent, unknown or retired). */
  UnknownKid: "unknown_kid",
  /** The signature does not verify, or the header asks for an algorithm other than EdDSA. */
  BadSignature: "bad_signature",
  /** A signed payload of a schema this build does not read. */
  UnsupportedSchema: "unsupported_schema",
  /** `content_sha256` is not the hash of the config the bundle carries. */
  HashMismatch: "hash_mismatch",
  /** A bundle signed for another fleet. */
  WrongFleet: "wrong_fleet",
  /** A version not above the floor (the version running, or the highest seen): a replay or a downgrade. */
  VersionNotAboveFloor: "version_not_above_floor",
  /** Larger than the limit, refused before any of it is decoded. */
  TooLarge: "too_large",
} as const;

export type BundleErrorCode = (typeof BundleErrorCode)[keyof typeof BundleErrorCode];

export class BundleError extends Error {
  override readonly name = "BundleError";

  constructor(
    readonly code: BundleErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Why a signing or public key could not be made, read or written. */
export const KeyErrorCode = {
  /** Neither (or both of) a key file and a PEM text were given. */
  NoSource: "key_source",
  /** The key file cannot be read. */
  Unreadable: "key_unreadable",
  /** The text is not a PEM/JWK key at all. */
  Invalid: "key_invalid",
  /** A real key, but not the kind needed (RSA or EC instead of Ed25519, public instead of private). */
  WrongType: "wrong_key_type",
  /** A key file is already there; keys are never overwritten. */
  Exists: "key_exists",
  /** A trusted key listed with a `kid` that is not its RFC 7638 thumbprint. */
  KidMismatch: "kid_mismatch",
} as const;

export type KeyErrorCode = (typeof KeyErrorCode)[keyof typeof KeyErrorCode];

export class KeyError extends Error {
  override readonly name = "KeyError";

  constructor(
    readonly code: KeyErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
