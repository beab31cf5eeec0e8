/**
 * The closed set of config error codes. Every validation issue carries one; tests and
 * callers (admin API, authority, agents' NACKs) match on the code, never on message text.
 */
export const ConfigErrorCode = {
  /** The text is not YAML/JSON, or is too large or too deeply nested to read. */
  Syntax: "config_syntax",
  /** A value has the wrong type, is out of range or is not one of the allowed values. */
  InvalidValue: "invalid_value",
  /** A required field is absent. */
  MissingField: "missing_field",
  /** A field the schema does not know: always an error, so a typo never goes unnoticed. */
  UnknownField: "unknown_field",
  /** A reference (route → pool, stage → plugin, …) names nothing that exists. */
  UnknownReference: "unknown_reference",
  /** Two entries of a list share the id (or address, route, name) that must be unique. */
  DuplicateId: "duplicate_id",
  /** Two routes match exactly the same requests, so the later one can never be chosen. */
  DuplicateRoute: "duplicate_route",
  /** Fields that exclude each other, or one that needs another that is absent. */
  Conflict: "conflicting_fields",
  /** A regular expression that does not compile, or that risks catastrophic backtracking. */
  UnsafeRegex: "unsafe_regex",
} as const;

export type ConfigErrorCode = (typeof ConfigErrorCode)[keyof typeof ConfigErrorCode];

/** One problem in a config, located by its path (`routes[2].pool`) and, for text input, its line. */
export interface ConfigIssue {
  readonly code: ConfigErrorCode;
  readonly path: string;
  readonly message: string;
  /** 1-based position in the source text, where the input was text and the path exists in it. */
  readonly line?: number;
  readonly column?: number;
}

export type ConfigResult<T> = { ok: true; value: T } | { ok: false; errors: ConfigIssue[] };

/** "config.yaml:12:5 routes[2].pool: unknown pool "x"" — the one-line form used by logs and the CLI. */
export function formatIssue(issue: ConfigIssue, source?: string): string {
  const where = issue.line === undefined ? source : `${source ?? ""}:${issue.line}:${issue.column ?? 1}`;
  const path = issue.path === "" ? "(root)" : issue.path;
  return `${where ? `${where} ` : ""}${path}: ${issue.message}`;
}
