/**
 * A structural diff of two canonical configs, addressed by ids: a change to a route's timeout
 * reads `routes[api-route].policy.timeout: 5000 → 3000` whatever the route's position. Keyed
 * lists (./lists.ts) are matched by key; other lists position by position; lists of plain
 * values and values of different shapes change as a whole.
 *
 * `applyChanges(before, diffConfigs(before, after))` rebuilds `after`: the diff accounts for
 * every difference, which is what lets the admin API, the CLI and the audit log show it as
 * the whole story.
 */
import { canonicalJson } from "./canonical-json.js";
import { isRecord } from "./issues.js";
import { type KeyedList, keyedListAt } from "./lists.js";
import { formatPath, type PathSegment } from "./path.js";

export type ConfigChange =
  | { readonly kind: "added"; readonly path: readonly PathSegment[]; readonly after: unknown }
  | { readonly kind: "removed"; readonly path: readonly PathSegment[]; readonly before: unknown }
  | {
      readonly kind: "changed";
      readonly path: readonly PathSegment[];
      readonly before: unknown;
      readonly after: unknown;
    }
  /** The entries of an ordered keyed list are the same but their order is not. */
  | {
      readonly kind: "reordered";
      readonly path: readonly PathSegment[];
      readonly before: readonly string[];
      readonly after: readonly string[];
    };

export function diffConfigs(before: unknown, after: unknown): ConfigChange[] {
  const changes: ConfigChange[] = [];
  diffValue(before, after, [], [], changes);
  return changes;
}

/** `routes[api-route].policy.timeout: 5000 → 3000`, `pools[new-pool]: added`. */
export function formatChange(change: ConfigChange): string {
  const path = formatPath(change.path);
  switch (change.kind) {
    case "added":
      return `${path}: added ${preview(change.after)}`;
    case "removed":
      return `${path}: removed`;
    case "changed":
      return `${path}: ${preview(change.before)} → ${preview(change.after)}`;
    case "reordered":
      return `${path}: order ${change.before.join(", ")} → ${change.after.join(", ")}`;
  }
}

/** Applies changes made by diffConfigs to a copy of `config`; the input is not modified. */
export function applyChanges<T>(config: T, changes: readonly ConfigChange[]): T {
  const root = { value: structuredClone(config) as unknown };
  for (const change of changes) {
    const parentPath = change.path.slice(0, -1);
    const last = change.path[change.path.length - 1];
    if (last === undefined) {
      if (change.kind === "changed" || change.kind === "added") root.value = structuredClone(change.after);
      else if (change.kind === "removed") root.value = undefined;
      else root.value = reorder(root.value, keyedListAt(fieldNames(change.path)), change.after);
      continue;
    }
    const parent = resolve(root.value, parentPath);
    if (change.kind === "reordered") {
      const list = keyedListAt(fieldNames(change.path));
      setChild(parent, last, reorder(getChild(parent, last, list), list, change.after), list);
    } else if (change.kind === "removed") {
      removeChild(parent, last, keyedListAt(fieldNames(parentPath)));
    } else {
      setChild(parent, last, structuredClone(change.after), keyedListAt(fieldNames(parentPath)));
    }
  }
  return root.value as T;
}

function diffValue(
  before: unknown,
  after: unknown,
  path: PathSegment[],
  fields: string[],
  out: ConfigChange[],
): void {
  if (isRecord(before) && isRecord(after)) {
    for (const key of Object.keys(before)) {
      if (before[key] === undefined) continue;
      if (after[key] === undefined) out.push({ kind: "removed", path: [...path, key], before: before[key] });
      else diffValue(before[key], after[key], [...path, key], [...fields, key], out);
    }
    for (const key of Object.keys(after)) {
      if (after[key] !== undefined && before[key] === undefined) {
        out.push({ kind: "added", path: [...path, key], after: after[key] });
      }
    }
    return;
  }
  if (Array.isArray(before) && Array.isArray(after)) {
    const list = keyedListAt(fields);
    if (list && hasUniqueKeys(before, list) && hasUniqueKeys(after, list)) {
      diffKeyedList(before, after, list, path, fields, out);
      return;
    }
    if (before.every(isContainer) && after.every(isContainer) && (before.length > 0 || after.length > 0)) {
      diffPositionalList(before, after, path, fields, out);
      return;
    }
  }
  if (canonicalJson(before) !== canonicalJson(after)) out.push({ kind: "changed", path, before, after });
}

function diffKeyedList(
  before: unknown[],
  after: unknown[],
  list: KeyedList,
  path: PathSegment[],
  fields: string[],
  out: ConfigChange[],
): void {
  const keyOf = (item: unknown) => String((item as Record<string, unknown>)[list.key]);
  const beforeByKey = new Map(before.map((item) => [keyOf(item), item]));
  const afterKeys = new Set(after.map(keyOf));
  for (const [key, item] of beforeByKey) {
    if (!afterKeys.has(key)) out.push({ kind: "removed", path: [...path, { key }], before: item });
  }
  for (const item of after) {
    const key = keyOf(item);
    const previous = beforeByKey.get(key);
    if (previous === undefined) out.push({ kind: "added", path: [...path, { key }], after: item });
    else diffValue(previous, item, [...path, { key }], [...fields, "*"], out);
  }
  // Unordered lists are kept sorted, so their order follows from their keys. For ordered ones:
  // removals drop entries and additions append them; if that does not already give the new
  // order, the order itself changed.
  if (!list.ordered) return;
  const kept = before.map(keyOf).filter((key) => afterKeys.has(key));
  const appended = after.map(keyOf).filter((key) => !beforeByKey.has(key));
  const result = [...kept, ...appended];
  const wanted = after.map(keyOf);
  if (result.some((key, i) => key !== wanted[i])) {
    out.push({ kind: "reordered", path, before: before.map(keyOf), after: wanted });
  }
}

function diffPositionalList(
  before: unknown[],
  after: unknown[],
  path: PathSegment[],
  fields: string[],
  out: ConfigChange[],
): void {
  const common = Math.min(before.length, after.length);
  for (let i = 0; i < common; i++) diffValue(before[i], after[i], [...path, i], [...fields, "*"], out);
  // From the end, so each removal leaves the indices of the next ones valid.
  for (let i = before.length - 1; i >= common; i--)
    out.push({ kind: "removed", path: [...path, i], before: before[i] });
  for (let i = common; i < after.length; i++)
    out.push({ kind: "added", path: [...path, i], after: after[i] });
}

function hasUniqueKeys(items: unknown[], list: KeyedList): boolean {
  const keys = new Set<string>();
  for (const item of items) {
    if (!isRecord(item) || typeof item[list.key] !== "string") return false;
    keys.add(item[list.key] as string);
  }
  return keys.size === items.length;
}

function isContainer(value: unknown): boolean {
  return typeof value === "object" && value !== null;
}

/** Field names of a diff path, list entries as "*", for looking up keyed lists. */
function fieldNames(path: readonly PathSegment[]): string[] {
  return path.map((segment) => (typeof segment === "string" ? segment : "*"));
}

function resolve(root: unknown, path: readonly PathSegment[]): unknown {
  let node = root;
  for (let i = 0; i < path.length; i++) {
    node = getChild(node, path[i] as PathSegment, keyedListAt(fieldNames(path.slice(0, i))));
  }
  return node;
}

function getChild(node: unknown, segment: PathSegment, list: KeyedList | undefined): unknown {
  if (typeof segment === "object") {
    return (node as unknown[]).find((item) => isRecord(item) && item[list?.key ?? ""] === segment.key);
  }
  return (node as Record<string | number, unknown>)[segment];
}

function setChild(node: unknown, segment: PathSegment, value: unknown, list: KeyedList | undefined): void {
  if (typeof segment === "object") {
    const items = node as unknown[];
    const key = list?.key ?? "";
    const index = items.findIndex((item) => isRecord(item) && item[key] === segment.key);
    if (index >= 0) items[index] = value;
    else if (list?.ordered) items.push(value);
    else {
      // An unordered list stays sorted by key, as canonicalization left it.
      const at = items.findIndex((item) => isRecord(item) && String(item[key]) > segment.key);
      items.splice(at < 0 ? items.length : at, 0, value);
    }
    return;
  }
  (node as Record<string | number, unknown>)[segment] = value;
}

function removeChild(node: unknown, segment: PathSegment, list: KeyedList | undefined): void {
  if (typeof segment === "object") {
    const items = node as unknown[];
    const index = items.findIndex((item) => isRecord(item) && item[list?.key ?? ""] === segment.key);
    if (index >= 0) items.splice(index, 1);
  } else if (Array.isArray(node) && typeof segment === "number") node.splice(segment, 1);
  else delete (node as Record<string, unknown>)[segment as string];
}

function reorder(value: unknown, list: KeyedList | undefined, order: readonly string[]): unknown {
  const items = value as Array<Record<string, unknown>>;
  const key = list?.key ?? "";
  const byKey = new Map(items.map((item) => [String(item[key]), item]));
  return order.map((k) => byKey.get(k));
}

function preview(value: unknown): string {
  const text = typeof value === "string" ? JSON.stringify(value) : canonicalJson(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
