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

/**
 * `(did you mean "timeout"?)` when a candidate is close enough to be the intended word: one
 * edit for short words, a third of the word's length for longer ones.
 */
export function didYouMean(word: string, candidates: Iterable<string>): string {
  const best = closestName(word, candidates);
  return best === undefined ? "" : ` (did you mean "${best}"?)`;
}

/** The candidate nearest to `word`, when near enough to be what was meant. */
function closestName(word: string, candidates: Iterable<string>): string | undefined {
  const list = [...candidates];
  if (list.length === 0) return undefined;
  const best = closest(word, list);
  const limit = word.length <= 4 ? 1 : Math.max(2, Math.floor(word.length / 3));
  return distance(word.toLowerCase(), best.toLowerCase()) <= limit ? best : undefined;
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
      const at = objectSchemaAt(schema, input, issue.path as Array<string | number>);
      for (const key of issue.keys) {
        out.push({
          code: ConfigErrorCode.UnknownField,
          path: [...path, key],
          message: unknownFieldMessage(key, at),
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
    case "custom":
      out.push({
        code: customCode(issue.params) ?? ConfigErrorCode.InvalidValue,
        path,
        message: issue.message,
      });
      return;
    default:
      out.push({ code: ConfigErrorCode.InvalidValue, path, message: lowerFirst(issue.message) });
  }
}

const CODES = new Set<string>(Object.values(ConfigErrorCode));

/** Custom issues (unit parsers, refinements) name their code in params.code. */
function customCode(params: Record<string, unknown> | undefined): ConfigErrorCode | undefined {
  const code = params?.code;
  return typeof code === "string" && CODES.has(code) ? (code as ConfigErrorCode) : undefined;
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

function unknownFieldMessage(key: string, object: AnySchema | undefined): string {
  if (key === "<<") return "YAML merge keys (<<) are not supported: write the fields out";
  const fields = object ? shapeOf(object) : {};
  const here = didYouMean(key, Object.keys(fields));
  if (here !== "") return `unknown field "${key}"${here}`;
  // A field written one level too high (a route's `timeout` belongs in its `policy`).
  const nested = new Map<string, string>();
  for (const [name, child] of Object.entries(fields)) {
    for (const inner of Object.keys(shapeOf(child)))
      if (!nested.has(inner)) nested.set(inner, `${name}.${inner}`);
  }
  const near = closestName(key, nested.keys());
  return `unknown field "${key}"${near === undefined ? "" : ` (did you mean "${nested.get(near)}"?)`}`;
}

/** The fields of an object schema, seen through optional, pipes and the like; {} otherwise. */
function shapeOf(schema: AnySchema): Record<string, AnySchema> {
  const object = unwrap(schema, undefined);
  const def = object?._zod.def as { type: string; shape?: Record<string, AnySchema> } | undefined;
  return def?.type === "object" && def.shape ? def.shape : {};
}

/** Skips wrappers (optional, pipe, lazy…) and picks the union branch that fits `value`. */
function unwrap(schema: AnySchema | undefined, value: unknown): AnySchema | undefined {
  let current = schema;
  for (;;) {
    const def = current?._zod.def as (Record<string, unknown> & { type: string }) | undefined;
    if (!def) return undefined;
    if (
      def.type === "optional" ||
      def.type === "nullable" ||
      def.type === "default" ||
      def.type === "readonly"
    ) {
      current = def.innerType as AnySchema;
    } else if (def.type === "pipe") current = def.in as AnySchema;
    else if (def.type === "lazy") current = (def.getter as () => AnySchema)();
    else if (def.type === "union") current = bestBranch(def.options as AnySchema[], value);
    else return current;
  }
}

/**
 * The object schema at the issue's path, found by walking the schema along it. Unions are
 * resolved against the input: the branch whose fields overlap the input's most is the one
 * the author meant.
 */
function objectSchemaAt(schema: AnySchema, input: unknown, path: RawPath): AnySchema | undefined {
  let current = unwrap(schema, input);
  let value = input;
  for (const segment of path) {
    const def = current?._zod.def as (Record<string, unknown> & { type: string }) | undefined;
    value =
      isRecord(value) || Array.isArray(value)
        ? (value as Record<string | number, unknown>)[segment]
        : undefined;
    if (def?.type === "object") current = (def.shape as Record<string, AnySchema>)[segment as string];
    else if (def?.type === "array") current = def.element as AnySchema;
    else if (def?.type === "record") current = def.valueType as AnySchema;
    else return undefined;
    current = unwrap(current, value);
  }
  return current;
}

function bestBranch(options: AnySchema[], value: unknown): AnySchema | undefined {
  const keys = isRecord(value) ? Object.keys(value) : [];
  let best: AnySchema | undefined;
  let bestScore = -1;
  for (const option of options) {
    const allowed = new Set(Object.keys(shapeOf(option)));
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
