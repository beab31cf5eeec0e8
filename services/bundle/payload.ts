/**
 * The signed content of a bundle (DESIGN.md, Bundle) and the checks of its shape. The payload
 * is serialized as canonical JSON, whose first key is `config`: verifyBundle relies on that to
 * hash the config's signed text as it is, without serializing it again.
 */
import { contentHash, type DynamicConfig } from "../config/index.js";
import { BundleError, BundleErrorCode } from "./errors.js";

export const BUNDLE_SCHEMA = "coherent.bundle/v1";
export const BUNDLE_TYP = "coherent-bundle+jws";

export interface BundlePayload {
  schema: typeof BUNDLE_SCHEMA;
  fleet: string;
  /** 1, 2, 3… per fleet: an agent runs a bundle only when its version is above the one it runs. */
  version: number;
  /** The fleet's previous version, null for the first. */
  parent: number | null;
  /** ISO 8601. */
  created_at: string;
  created_by: string;
  /** contentHash of `config`: equal meaning, equal hash. */
  content_sha256: string;
  /** The canonical config (services/config canonicalize). */
  config: DynamicConfig;
  /** Set on a rollback: the version whose content this bundle carries again. */
  rollback_of?: number;
  message?: string;
}

/** The content hash of a config, as a bundle states it: services/config's contentHash. */
export function contentSha256(config: DynamicConfig): string {
  return contentHash(config);
}

/**
 * Deeper than any config the schema allows (about 8 levels); the limit keeps a hostile
 * payload from overflowing the stack of whoever walks it recursively later.
 */
export const MAX_PAYLOAD_DEPTH = 64;

const FIELDS = new Set<string>([
  "schema",
  "fleet",
  "version",
  "parent",
  "created_at",
  "created_by",
  "content_sha256",
  "config",
  "rollback_of",
  "message",
]);
const SHA256_HEX = /^[0-9a-f]{64}$/;

/**
 * Narrows a parsed payload to a BundlePayload, or throws `unsupported_schema` / `malformed`
 * naming the first field that is wrong. Called only on a payload whose signature verified.
 */
/** Every field of a bundle's payload but its config: what a distributor reads. */
export type BundleEnvelope = Omit<BundlePayload, "config">;

/**
 * `configUndecoded`: the config was left as signed text (verifyBundleEnvelope), so only the
 * other fields are checked here.
 */
export function checkPayload(value: unknown, configUndecoded = false): BundleEnvelope & { config?: unknown } {
  if (!isPlainObject(value)) throw malformed("the payload is not a JSON object");
  if (value.schema !== BUNDLE_SCHEMA) {
    throw new BundleError(
      BundleErrorCode.UnsupportedSchema,
      `payload schema ${JSON.stringify(value.schema)} is not ${BUNDLE_SCHEMA}; upgrade this component to read it`,
    );
  }
  for (const key of Object.keys(value)) {
    if (!FIELDS.has(key)) throw malformed(`unknown payload field "${key}"`);
  }
  const { fleet, version, parent, created_at, created_by, content_sha256, config, rollback_of, message } =
    value;
  if (typeof fleet !== "string" || fleet === "") throw malformed("fleet must be a non-empty string");
  if (!isPositiveInteger(version)) throw malformed("version must be a positive integer");
  if (parent !== null && !(isPositiveInteger(parent) && parent < version)) {
    throw malformed("parent must be null or a version below version");
  }
  if (typeof created_at !== "string" || Number.isNaN(Date.parse(created_at))) {
    throw malformed("created_at must be an ISO 8601 time");
  }
  if (typeof created_by !== "string") throw malformed("created_by must be a string");
  if (typeof content_sha256 !== "string" || !SHA256_HEX.test(content_sha256)) {
    throw malformed("content_sha256 must be 64 lowercase hex digits");
  }
  if (configUndecoded) {
    if (config !== undefined) throw malformed('the payload repeats "config"');
  } else if (!isPlainObject(config)) throw malformed("config must be a JSON object");
  if (rollback_of !== undefined && !(isPositiveInteger(rollback_of) && rollback_of < version)) {
    throw malformed("rollback_of must be a version below version");
  }
  if (message !== undefined && typeof message !== "string") throw malformed("message must be a string");
  if (!configUndecoded && exceedsDepth(config as object, 1)) {
    throw malformed(`config is nested deeper than ${MAX_PAYLOAD_DEPTH} levels`);
  }
  return value as unknown as BundleEnvelope & { config?: unknown };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isPositiveInteger(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) > 0;
}

/** Stops at the limit, so its own recursion is bounded whatever the input. */
function exceedsDepth(value: object, depth: number): boolean {
  if (depth > MAX_PAYLOAD_DEPTH) return true;
  if (Array.isArray(value)) {
    for (const item of value) {
      if (typeof item === "object" && item !== null && exceedsDepth(item, depth + 1)) return true;
    }
    return false;
  }
  for (const key in value) {
    const item = (value as Record<string, unknown>)[key];
    if (typeof item === "object" && item !== null && exceedsDepth(item, depth + 1)) return true;
  }
  return false;
}

function malformed(message: string): BundleError {
  return new BundleError(BundleErrorCode.Malformed, message);
}
