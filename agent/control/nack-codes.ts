/**
 * Codes a managed agent puts in a Nack besides BundleError's and the config's own codes.
 * Distributors and the rollout controller match on them, never on the message.
 */
export const NackCode = {
  /** A BundleUpdate's unsigned fleet, version or content_sha256 disagrees with its signed payload. */
  HintMismatch: "hint_mismatch",
  /** The bundle could not be read or applied for a reason that is not the bundle's (a bug, an I/O error). */
  Internal: "internal",
} as const;

export type NackCode = (typeof NackCode)[keyof typeof NackCode];
