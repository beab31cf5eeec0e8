/**
 * Walks a zod config schema into one row per field a user can write, with the type as the
 * user writes it (the input side of each transform), whether it is required, its default and
 * its description. Value notations such as durations come from the `notation` metadata the
 * schema primitives carry (services/config/schema/primitives.ts); a field without a
 * description, or a notation without an explanation here, is reported as a gap.
 */
import { z } from "zod";

export interface FieldRow {
  /** e.g. `routes[].policy.retries.max_attempts`; map keys appear as `<name>`. */
  readonly path: string;
  /** Set when the field exists only in one variant of a union, e.g. `type: auth`. */
  readonly variant?: string;
  readonly type: string;
  readonly required: boolean;
  readonly defaultValue?: string;
  readonly description: string;
}

export interface FieldWalk {
  readonly rows: FieldRow[];
  /** Paths of fields with no description: each one is a gap in the reference. */
  readonly undescribed: string[];
  /** Notations the schema uses, so the reference can explain each once. */
  readonly notations: Set<string>;
}

/** A description ending in "(default X)" states the default; zod carries none here on purpose. */
const DEFAULT_IN_TEXT = /\s*\(default:? ([^)]+)\)/;

const HOUR_MS = 3_600_000;
const DURATION_UNITS: readonly [string, number][] = [
  ["h", HOUR_MS],
  ["m", 60_000],
  ["s", 1_000],
  ["ms", 1],
];
const SIZE_UNITS: readonly [string, number][] = [
  ["GB", 1024 ** 3],
  ["MB", 1024 ** 2],
  ["KB", 1024],
  ["B", 1],
];

export interface WalkOptions {
  /** Written before every path, e.g. "rollout" for the plan block. */
  readonly prefix?: string;
  /** Schemas documented in a section of their own: their field gets a row, their fields none. */
  readonly elsewhere?: readonly z.ZodType[];
}

export function walkConfig(schema: z.ZodType, options: WalkOptions = {}): FieldWalk {
  const walk: Walk = {
    rows: [],
    undescribed: [],
    notations: new Set(),
    elsewhere: new Set(options.elsewhere ?? []),
  };
  nested(walk, schema, options.prefix ?? "", undefined);
  return walk;
}

interface Walk extends FieldWalk {
  readonly elsewhere: ReadonlySet<z.ZodType>;
}

/** Descends into the structure under one field, adding a row for each field found there. */
function nested(walk: Walk, schema: z.ZodType, path: string, variant: string | undefined): void {
  const inner = unwrap(schema).schema;
  if (notationOf(inner) !== undefined || walk.elsewhere.has(inner)) return;
  if (inner instanceof z.ZodObject) objectFields(walk, inner, path, variant, undefined);
  else if (inner instanceof z.ZodArray) nested(walk, inner.element as z.ZodType, `${path}[]`, variant);
  else if (inner instanceof z.ZodRecord) {
    nested(walk, inner.valueType as z.ZodType, join(path, "<name>"), variant);
  } else if (inner instanceof z.ZodDiscriminatedUnion) variants(walk, inner, path, variant);
  else if (inner instanceof z.ZodUnion) {
    for (const option of inner.options as z.ZodType[]) nested(walk, option, path, variant);
  } else if (inner instanceof z.ZodPipe) nested(walk, inner.in as z.ZodType, path, variant);
}

/**
 * One row for the discriminator with every value it takes, then each variant's other fields
 * marked with the discriminator value they belong to.
 */
function variants(walk: Walk, union: z.ZodDiscriminatedUnion, path: string, outer: string | undefined): void {
  const key = union.def.discriminator;
  const options = union.options as z.ZodObject[];
  const values = options.flatMap((option) => literalValues(option.shape[key] as z.ZodType));
  const described = options.map((option) => describe(option.shape[key] as z.ZodType)).find(Boolean);
  addRow(walk, {
    path: join(path, key),
    ...(outer === undefined ? {} : { variant: outer }),
    type: values.map((value) => JSON.stringify(value)).join(" | "),
    required: true,
    description: described ?? "",
  });
  for (const option of options) {
    const variant = literalValues(option.shape[key] as z.ZodType)
      .map((value) => `${key}: ${String(value)}`)
      .join(", ");
    objectFields(walk, option, path, outer === undefined ? variant : `${outer}; ${variant}`, key);
  }
}

function objectFields(
  walk: Walk,
  object: z.ZodObject,
  prefix: string,
  variant: string | undefined,
  skip: string | undefined,
): void {
  for (const [key, field] of Object.entries(object.shape as Record<string, z.ZodType>)) {
    if (key === skip) continue;
    const path = join(prefix, key);
    const { schema, optional } = unwrap(field);
    addRow(walk, {
      path,
      ...(variant === undefined ? {} : { variant }),
      type: typeName(walk, schema),
      required: !optional,
      description: describe(field) ?? "",
    });
    nested(walk, schema, path, variant);
  }
}

function addRow(walk: Walk, row: FieldRow): void {
  const where = row.variant === undefined ? row.path : `${row.path} (${row.variant})`;
  if (row.description === "") walk.undescribed.push(where);
  const stated = DEFAULT_IN_TEXT.exec(row.description);
  walk.rows.push(
    stated
      ? {
          ...row,
          defaultValue: stated[1] as string,
          description: row.description.replace(DEFAULT_IN_TEXT, ""),
        }
      : row,
  );
}

/** The schema under optional and default wrappers, and whether the field may be left out. */
function unwrap(schema: z.ZodType): { schema: z.ZodType; optional: boolean } {
  let current = schema;
  let optional = false;
  for (;;) {
    if (current instanceof z.ZodOptional || current instanceof z.ZodDefault) {
      optional = true;
      current = current.unwrap() as z.ZodType;
    } else if (current instanceof z.ZodNullable) current = current.unwrap() as z.ZodType;
    else return { schema: current, optional };
  }
}

/** The first description found from the field's outermost wrapper inwards. */
function describe(schema: z.ZodType): string | undefined {
  let current: z.ZodType | undefined = schema;
  while (current !== undefined) {
    const text = z.globalRegistry.get(current)?.description;
    if (text) return text;
    current =
      current instanceof z.ZodOptional || current instanceof z.ZodDefault || current instanceof z.ZodNullable
        ? (current.unwrap() as z.ZodType)
        : undefined;
  }
  return undefined;
}

function notationOf(schema: z.ZodType): string | undefined {
  const notation = z.globalRegistry.get(schema)?.notation;
  return typeof notation === "string" ? notation : undefined;
}

function literalValues(schema: z.ZodType): unknown[] {
  const inner = unwrap(schema).schema;
  return inner instanceof z.ZodLiteral ? [...inner.values] : [];
}

/** The type as a user writes it, in the words the notation table explains. */
function typeName(walk: Walk, schema: z.ZodType): string {
  const inner = unwrap(schema).schema;
  const notation = notationOf(inner);
  if (notation !== undefined) {
    walk.notations.add(notation);
    return `${notation}${bounds(notation, z.globalRegistry.get(inner) ?? {})}`;
  }
  if (inner instanceof z.ZodURL) {
    walk.notations.add("URL");
    return "URL";
  }
  if (inner instanceof z.ZodString) return "string";
  if (inner instanceof z.ZodBoolean) return "boolean";
  if (inner instanceof z.ZodNumber) return numberType(inner);
  if (inner instanceof z.ZodLiteral) return [...inner.values].map((v) => JSON.stringify(v)).join(" | ");
  if (inner instanceof z.ZodEnum) return inner.options.map((v) => JSON.stringify(v)).join(" | ");
  if (inner instanceof z.ZodObject || inner instanceof z.ZodDiscriminatedUnion) return "object";
  if (inner instanceof z.ZodArray) {
    const element = typeName(walk, inner.element as z.ZodType);
    return element.includes(" | ") ? `list of (${element})` : `list of ${element}`;
  }
  if (inner instanceof z.ZodRecord) {
    return `map of ${typeName(walk, inner.keyType as z.ZodType)} → ${typeName(walk, inner.valueType as z.ZodType)}`;
  }
  if (inner instanceof z.ZodUnion) {
    return (inner.options as z.ZodType[]).map((option) => unionArm(walk, option)).join(" | ");
  }
  if (inner instanceof z.ZodPipe) return typeName(walk, inner.in as z.ZodType);
  throw new Error(`the docs generator cannot name the zod type "${inner.def.type}"; teach typeName about it`);
}

/** Object arms of a union read best by their fields: `{prefix}`, `{regex}`. */
function unionArm(walk: Walk, schema: z.ZodType): string {
  const inner = unwrap(schema).schema;
  return inner instanceof z.ZodObject && notationOf(inner) === undefined
    ? `{${Object.keys(inner.shape).join(", ")}}`
    : typeName(walk, inner);
}

function numberType(schema: z.ZodNumber): string {
  const json = z.toJSONSchema(schema) as {
    type: string;
    minimum?: number;
    maximum?: number;
    exclusiveMinimum?: number;
  };
  const parts: string[] = [];
  if (json.exclusiveMinimum !== undefined) parts.push(`> ${json.exclusiveMinimum}`);
  if (json.minimum !== undefined && json.minimum > Number.MIN_SAFE_INTEGER) parts.push(`≥ ${json.minimum}`);
  if (json.maximum !== undefined && json.maximum < Number.MAX_SAFE_INTEGER) parts.push(`≤ ${json.maximum}`);
  return [json.type, ...parts].join(", ");
}

/** Bounds are kept in canonical units (ms, bytes); they read best back in the notation. */
function bounds(notation: string, meta: Record<string, unknown>): string {
  const units = notation === "duration" ? DURATION_UNITS : notation === "size" ? SIZE_UNITS : undefined;
  if (units === undefined) return "";
  const parts: string[] = [];
  if (typeof meta.min === "number" && meta.min > 0) parts.push(`≥ ${inUnits(meta.min, units)}`);
  if (typeof meta.max === "number") parts.push(`≤ ${inUnits(meta.max, units)}`);
  return parts.length === 0 ? "" : `, ${parts.join(", ")}`;
}

function inUnits(value: number, units: readonly [string, number][]): string {
  const [unit, size] = units.find(([, each]) => value % each === 0) ?? (units.at(-1) as [string, number]);
  return `${value / size}${unit}`;
}

function join(prefix: string, key: string): string {
  return prefix === "" ? key : `${prefix}.${key}`;
}
