/**
 * Turns zod's issues into config issues: one per problem, with the path of the field itself
 * (an unknown field's path ends in its own name) and a hint where a near name exists.
 */
import { closest, distance } from "fastest-levenshtein";
import type { z } from "zod";
import { ConfigErrorCode } from "./errors.js";

export type RawPath = ReadonlyArray<string | number>;

/** An issue before it is given a printable path and a source position. */
export interface RawIssue {
  readonly code: ConfigErrorCode;
  readonly path: RawPath;
  readonly message: string;
}

/** `(did you mean "timeout"?)` when a candidate is close enough to be the intended word. */
export function didYouMean(word: string, candidates: Iterable<string>): string {
  const list = [...candidates];
  if (list.length === 0) return "";
  const best = closest(word, list);
  const limit = Math.max(2, Math.floor(word.length / 3));
  return distance(word.toLowerCase(), best.toLowerCase()) <= limit ? ` (did you mean "${best}"?)` : "";
}

type ZodIssue = z.core.$ZodIssue;
type AnySchema = z.core.$ZodType;

export function fromZodIssues(
  issues: readonly ZodIssue[],
  schema: AnySchema,
  input: unknown,
  prefix: RawPath,
): RawIssue[] {
  const out: RawIssue[] = [];
  for (const issue of issues) convert(issue, schema, input, prefix, out);
  return out;
}

function convert(issue: ZodIssue, schema: AnySchema, input: unknown, prefix: RawPath, out: RawIssue[]): void {
  const path = [...prefix, ...(issue.path as Array<string | number>)];
  switch (issue.code) {
    case "unrecognized_keys": {
      const allowed = allowedKeysAt(schema, input, issue.path as Array<string | number>);
      for (const key of issue.keys) {
        out.push({
          code: ConfigErrorCode.UnknownField,
          path: [...path, key],
          message: `unknown field "${key}"${didYouMean(key, allowed)}`,
        });
      }
      return;
    }
    case "invalid_type":
      if (issue.input === undefined) {
        out.push({ code: ConfigErrorCode.MissingField, path, message: "required field is missing" });
      } else {
        out.push({
          code: ConfigErrorCode.InvalidValue,
          path,
          message: `expected ${describeExpected(issue.expected)}, got ${describeValue(issue.input)}`,
        });
      }
      return;
    case "invalid_value": {
      const options = issue.values.map((v) => String(v));
      const hint = typeof issue.input === "string" ? didYouMean(issue.input, options) : "";
      const message =
        issue.values.length === 1
          ? `must be ${JSON.stringify(issue.values[0])}`
          : `must be one of ${options.join(", ")}, got ${describeValue(issue.input)}${hint}`;
      out.push({ code: ConfigErrorCode.InvalidValue, path, message });
      return;
    }
    case "invalid_union":
      convertUnion(issue, schema, input, prefix, path, out);
      return;
    default:
      out.push({ code: ConfigErrorCode.InvalidValue, path, message: lowerFirst(issue.message) });
  }
}

function convertUnion(
  issue: z.core.$ZodIssueInvalidUnion,
  schema: AnySchema,
  input: unknown,
  prefix: RawPath,
  path: RawPath,
  out: RawIssue[],
): void {
  if (issue.discriminator !== undefined) {
    const given = valueAt(input, issue.path as Array<string | number>);
    const options = ("options" in issue ? (issue.options ?? []) : []).map(String);
    out.push(
      given === undefined
        ? {
            code: ConfigErrorCode.MissingField,
            path,
            message: `required field is missing (one of ${options.join(", ")})`,
          }
        : {
            code: ConfigErrorCode.InvalidValue,
            path,
            message: `unknown ${issue.discriminator} ${describeValue(given)}, expected one of ${options.join(", ")}${
              typeof given === "string" ? didYouMean(given, options) : ""
            }`,
          },
    );
    return;
  }
  // Of the branches, report the one that got furthest: a branch that failed only on the type
  // of the value itself says less than one that accepted the type and failed inside it.
  const branches = issue.errors.filter((errors) =>
    errors.some((e) => e.code !== "invalid_type" || e.path.length > 0),
  );
  if (branches.length === 1) {
    const nested = branches[0] as ZodIssue[];
    for (const inner of nested) {
      convert({ ...inner, path: [...issue.path, ...inner.path] } as ZodIssue, schema, input, prefix, out);
    }
    return;
  }
  const expected = [
    ...new Set(
      issue.errors.flatMap((errors) =>
        errors.filter((e) => e.code === "invalid_type").map((e) => e.expected),
      ),
    ),
  ];
  const given = valueAt(input, issue.path as Array<string | number>);
  out.push({
    code: ConfigErrorCode.InvalidValue,
    path,
    message:
      expected.length > 0
        ? `expected ${expected.map(describeExpected).join(" or ")}, got ${describeValue(given)}`
        : "does not match any of the accepted forms",
  });
}

/**
 * The field names an object in the schema accepts, found by walking the schema along the
 * issue's path. Unions are resolved against the input: the branch whose fields overlap the
 * input's most is the one the author meant.
 */
export function allowedKeysAt(schema: AnySchema, input: unknown, path: RawPath): string[] {
  let current: AnySchema | undefined = schema;
  let value = input;
  for (let i = 0; i <= path.length && current; ) {
    const def = current._zod.def as unknown as Record<string, unknown> & { type: string };
    switch (def.type) {
      case "optional":
      case "nullable":
      case "default":
      case "readonly":
        current = def.innerType as AnySchema;
        continue;
      case "pipe":
        current = def.in as AnySchema;
        continue;
      case "lazy":
        current = (def.getter as () => AnySchema)();
        continue;
      case "union":
        current = bestBranch(def.options as AnySchema[], value);
        continue;
    }
    if (i === path.length) break;
    const segment = path[i] as string | number;
    i++;
    value =
      isRecord(value) || Array.isArray(value)
        ? (value as Record<string | number, unknown>)[segment]
        : undefined;
    if (def.type === "object") current = (def.shape as Record<string, AnySchema>)[segment as string];
    else if (def.type === "array") current = def.element as AnySchema;
    else if (def.type === "record") current = def.valueType as AnySchema;
    else current = undefined;
  }
  const def = current?._zod.def as { type: string; shape?: Record<string, unknown> } | undefined;
  return def?.type === "object" && def.shape ? Object.keys(def.shape) : [];
}

function bestBranch(options: AnySchema[], value: unknown): AnySchema | undefined {
  const keys = isRecord(value) ? Object.keys(value) : [];
  let best: AnySchema | undefined;
  let bestScore = -1;
  for (const option of options) {
    const allowed = new Set(allowedKeysAt(option, undefined, []));
    if (allowed.size === 0) continue;
    const score = keys.filter((k) => allowed.has(k)).length;
    if (score > bestScore) {
      best = option;
      bestScore = score;
    }
  }
  return best ?? options[0];
}

function valueAt(input: unknown, path: RawPath): unknown {
  let value = input;
  for (const segment of path) {
    if (!(isRecord(value) || Array.isArray(value))) return undefined;
    value = (value as Record<string | number, unknown>)[segment];
  }
  return value;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function describeExpected(expected: string): string {
  if (expected === "object") return "a mapping";
  if (expected === "array") return "a list";
  if (expected === "int") return "a whole number";
  return `a ${expected}`;
}

export function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  if (typeof value === "string")
    return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  return String(value);
}

function lowerFirst(text: string): string {
  return text.charAt(0).toLowerCase() + text.slice(1);
}
