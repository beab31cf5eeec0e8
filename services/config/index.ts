/**
 * The config model shared by every component: schemas and types, parsing from YAML/JSON with
 * positions, validation with every error and its path, the canonical form and its content
 * hash, and the structural diff.
 */
export { canonicalize, contentHash } from "./canonical.js";
export { canonicalJson, sha256Hex } from "./canonical-json.js";
export { applyChanges, type ConfigChange, diffConfigs, formatChange } from "./diff.js";
export { ConfigErrorCode, type ConfigIssue, type ConfigResult, formatIssue } from "./errors.js";
export { formatPath, type PathSegment } from "./path.js";
export * from "./schema/dynamic.js";
export { hostPatternKind } from "./schema/primitives.js";
export * from "./schema/static.js";
export { type ParsedSource, readConfigText, type SourcePosition } from "./source.js";
export type { StatusRange } from "./units.js";
export {
  parseDynamicConfig,
  parseStaticConfig,
  validateDynamicConfig,
  validateStaticConfig,
} from "./validate.js";
