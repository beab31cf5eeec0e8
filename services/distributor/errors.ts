/** The distributor's own refusals; a bundle's signature checks raise services/bundle's BundleError. */
export const DistributorErrorCode = {
  /** A Bundle's fleet, version or content_sha256 disagrees with its verified payload. */
  HintMismatch: "hint_mismatch",
  /**
   * A verified bundle could not be written to the cache (disk full, I/O error): not a refusal
   * of the bundle, which is neither cached nor served, and is asked for again.
   */
  CacheWriteFailed: "cache_write_failed",
} as const;

export type DistributorErrorCode = (typeof DistributorErrorCode)[keyof typeof DistributorErrorCode];

export class DistributorError extends Error {
  override readonly name = "DistributorError";

  constructor(
    readonly code: DistributorErrorCode,
    message: string,
  ) {
    super(message);
  }
}
