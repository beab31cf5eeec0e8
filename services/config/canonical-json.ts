import { createHash } from "node:crypto";

/**
 * JSON with object keys sorted and no whitespace: one text for one value, however it was
 * written. `undefined` fields are left out, as JSON.stringify does.
 *
 * Objects whose keys are already in order are serialized as they are, so for a canonical
 * config (built key-sorted by canonicalize) this costs about one native JSON.stringify.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, sortedKeys) ?? "null";
}

function sortedKeys(_key: string, value: unknown): unknown {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return value;
  const keys = Object.keys(value);
  for (let i = 1; i < keys.length; i++) {
    if ((keys[i - 1] as string) > (keys[i] as string))
      return withSortedKeys(value as Record<string, unknown>);
  }
  return value;
}

/** A shallow copy of `record` whose keys are inserted in sorted order. */
function withSortedKeys(record: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(record).sort()) out[key] = record[key];
  return out;
}

export function sha256Hex(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}
