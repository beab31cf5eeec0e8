/**
 * Validation: data or text in, a canonical config or every error out, each with its path
 * (and line and column for text). Never throws on bad input.
 *
 * Each entry of each list section is checked on its own, so one broken route does not hide
 * the errors of the others, and the cross-section checks still run on the entries that passed.
 */
import type { z } from "zod";
import { canonicalize } from "./canonical.js";
import { ConfigErrorCode, type ConfigIssue, type ConfigResult } from "./errors.js";
import { describeValue, didYouMean, fromZodIssues, isRecord, type RawIssue } from "./issues.js";
import { formatPath } from "./path.js";
import {
  CacheSchema,
  CertificateSchema,
  type DynamicConfig,
  DynamicConfigSchema,
  ListenerSchema,
  MiddlewareChainSchema,
  PluginSchema,
  PolicySchema,
  PoolSchema,
  RolloutSchema,
  RouteSchema,
  TlsSchema,
  TrafficPlanSchema,
} from "./schema/dynamic.js";
import { type StaticConfig, StaticConfigSchema } from "./schema/static.js";
import { type ConfigSections, checkSemantics, KEY_FIELD, type WrittenKeys } from "./semantics.js";
import { type Locate, type ReadOptions, readConfigText } from "./source.js";

/** The list sections and the schema of one entry of each. */
const LIST_SECTIONS = {
  listeners: ListenerSchema,
  routes: RouteSchema,
  pools: PoolSchema,
  policies: PolicySchema,
  middleware: MiddlewareChainSchema,
  traffic_management: TrafficPlanSchema,
  cache: CacheSchema,
  plugins: PluginSchema,
  certificates: CertificateSchema,
} as const;

type ListSection = keyof typeof LIST_SECTIONS;

/** The sections that are one value. */
const VALUE_SECTIONS = {
  version: DynamicConfigSchema.shape.version,
  signature: DynamicConfigSchema.shape.signature,
  tls: TlsSchema,
  rollout: RolloutSchema,
} as const;

type ValueSection = keyof typeof VALUE_SECTIONS;

/**
 * Nesting deeper than any valid config needs is refused before the schema walks it, so no
 * input can exhaust the stack of the recursive steps that follow; so is a value count no
 * config reaches (a 10,000-route config has about 300,000), which YAML aliases could
 * otherwise multiply without bound ("billion laughs"); and so is any "__proto__" key.
 */
const MAX_DEPTH = 32;
const MAX_VALUES = 5_000_000;

export function validateDynamicConfig(data: unknown, locate?: Locate): ConfigResult<DynamicConfig> {
  const issues: RawIssue[] = [];
  const root = checkRoot(data, issues);
  if (!root) return failure(issues, locate);

  const valid: Record<string, unknown> = {};
  const readable: Record<string, unknown> = {};
  const invalid = new Set<ValueSection>();
  for (const [name, value] of Object.entries(root)) {
    if (Object.hasOwn(LIST_SECTIONS, name)) {
      if (value === null) continue;
      const list = validateList(name as ListSection, value, issues);
      valid[name] = list.valid;
      readable[name] = list.readable;
    } else if (Object.hasOwn(VALUE_SECTIONS, name)) {
      if (value === null) continue;
      const schema = VALUE_SECTIONS[name as ValueSection] as z.ZodType;
      const parsed = schema.safeParse(value, { reportInput: true });
      if (parsed.success) valid[name] = readable[name] = parsed.data;
      else {
        invalid.add(name as ValueSection);
        issues.push(...fromZodIssues(parsed.error.issues, schema, value, [name]));
      }
    } else {
      const known = [...Object.keys(LIST_SECTIONS), ...Object.keys(VALUE_SECTIONS)];
      issues.push({
        code: ConfigErrorCode.UnknownField,
        path: [name],
        message: `unknown section "${name}"${didYouMean(name, known)}`,
      });
    }
  }

  issues.push(
    ...checkSemantics(sectionsView(valid, invalid), sectionsView(readable, invalid), writtenKeys(root)),
  );
  if (issues.length > 0) return failure(issues, locate);
  return { ok: true, value: canonicalize(valid as DynamicConfig) };
}

export function validateStaticConfig(data: unknown, locate?: Locate): ConfigResult<StaticConfig> {
  const issues: RawIssue[] = [];
  const root = checkRoot(data, issues);
  if (!root) return failure(issues, locate);
  const parsed = StaticConfigSchema.safeParse(root, { reportInput: true });
  if (!parsed.success)
    return failure(fromZodIssues(parsed.error.issues, StaticConfigSchema, root, []), locate);
  return { ok: true, value: parsed.data };
}

/** YAML or JSON text → canonical dynamic config, or every error with line and column. */
export function parseDynamicConfig(text: string, options?: ReadOptions): ConfigResult<DynamicConfig> {
  const source = readConfigText(text, options);
  return source.ok ? validateDynamicConfig(source.value.data, source.value.locate) : source;
}

/** YAML or JSON text → static config, or every error with line and column. */
export function parseStaticConfig(text: string, options?: ReadOptions): ConfigResult<StaticConfig> {
  const source = readConfigText(text, options);
  return source.ok ? validateStaticConfig(source.value.data, source.value.locate) : source;
}

function checkRoot(data: unknown, issues: RawIssue[]): Record<string, unknown> | undefined {
  if (!isRecord(data)) {
    issues.push({
      code: ConfigErrorCode.InvalidValue,
      path: [],
      message: `a config is a mapping of sections, got ${describeValue(data)}`,
    });
    return undefined;
  }
  const tooLarge = checkShape(data);
  if (tooLarge) {
    issues.push({ code: ConfigErrorCode.Syntax, path: [], message: tooLarge });
    return undefined;
  }
  return data;
}

/**
 * Each entry on its own: `valid` has the entries that passed (holes for the others);
 * `readable` also has, in those holes, entries recovered without their broken fields.
 */
function validateList(name: ListSection, value: unknown, issues: RawIssue[]) {
  if (!Array.isArray(value)) {
    issues.push({
      code: ConfigErrorCode.InvalidValue,
      path: [name],
      message: `expected a list, got ${describeValue(value)}`,
    });
    return { valid: [], readable: [] };
  }
  const schema = LIST_SECTIONS[name] as z.ZodType;
  const valid: unknown[] = [];
  const readable: unknown[] = [];
  value.forEach((entry, index) => {
    const parsed = schema.safeParse(entry, { reportInput: true });
    if (parsed.success) {
      valid.push(parsed.data);
      readable.push(parsed.data);
      return;
    }
    issues.push(...fromZodIssues(parsed.error.issues, schema, entry, [name, index]));
    valid.push(undefined);
    readable.push(recover(schema, entry, parsed.error.issues));
  });
  return { valid, readable };
}

/**
 * An entry that failed the schema, parsed again without the top-level fields its issues
 * point into: enough of it to check its references. Undefined when even that fails.
 */
function recover(schema: z.ZodType, entry: unknown, issues: readonly z.core.$ZodIssue[]): unknown {
  if (!isRecord(entry)) return undefined;
  const broken = new Set<PropertyKey>();
  for (const issue of issues) {
    if (issue.code === "unrecognized_keys" && issue.path.length === 0)
      for (const key of issue.keys) broken.add(key);
    else if (issue.path[0] !== undefined) broken.add(issue.path[0]);
  }
  const parsed = schema.safeParse(
    Object.fromEntries(Object.entries(entry).filter(([field]) => !broken.has(field))),
  );
  return parsed.success ? parsed.data : undefined;
}

function sectionsView(sections: Record<string, unknown>, invalid: ReadonlySet<ValueSection>): ConfigSections {
  const list = <K extends ListSection>(name: K) => (sections[name] ?? []) as ConfigSections[K];
  return {
    listeners: list("listeners"),
    routes: list("routes"),
    pools: list("pools"),
    policies: list("policies"),
    middleware: list("middleware"),
    traffic_management: list("traffic_management"),
    cache: list("cache"),
    plugins: list("plugins"),
    certificates: list("certificates"),
    tls: sections.tls as ConfigSections["tls"],
    rollout: sections.rollout as ConfigSections["rollout"],
    invalid: invalid as ConfigSections["invalid"],
  };
}

function writtenKeys(root: Record<string, unknown>): WrittenKeys {
  const keys = {} as Record<keyof WrittenKeys, Array<string | undefined>>;
  for (const [section, field] of Object.entries(KEY_FIELD) as Array<[keyof WrittenKeys, string]>) {
    const list = root[section];
    keys[section] = Array.isArray(list)
      ? list.map((entry) => (isRecord(entry) && typeof entry[field] === "string" ? entry[field] : undefined))
      : [];
  }
  return keys;
}

function checkShape(root: unknown): string | undefined {
  const values: unknown[] = [root];
  const depths: number[] = [1];
  let count = 0;
  while (values.length > 0) {
    const value = values.pop();
    const depth = depths.pop() as number;
    if (++count > MAX_VALUES)
      return `the config holds more than ${MAX_VALUES} values (YAML aliases expand to copies)`;
    if (value === null || typeof value !== "object") continue;
    if (depth > MAX_DEPTH) return `the config nests deeper than ${MAX_DEPTH} levels`;
    for (const [key, child] of Object.entries(value)) {
      // Objects built from this key would change their prototype instead of holding a field.
      if (key === "__proto__") return 'a key named "__proto__" is not allowed anywhere in a config';
      values.push(child);
      depths.push(depth + 1);
    }
  }
  return undefined;
}

/** Issues with their printable paths and positions, in the order they appear in the text. */
function failure(issues: RawIssue[], locate: Locate | undefined): { ok: false; errors: ConfigIssue[] } {
  const errors: ConfigIssue[] = issues.map((issue) => {
    const pos = locate?.(issue.path);
    return {
      code: issue.code,
      path: formatPath(issue.path),
      message: issue.message,
      ...(pos ? { line: pos.line, column: pos.column } : {}),
    };
  });
  const place = (issue: ConfigIssue) => (issue.line ?? Number.MAX_SAFE_INTEGER) * 1e6 + (issue.column ?? 0);
  return { ok: false, errors: errors.sort((a, b) => place(a) - place(b)) };
}
