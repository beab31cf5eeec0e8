/**
 * Paths into a config, as people read them: `routes[2].pool` for validation errors (by
 * index, since an invalid entry may have no usable id) and `routes[api-route].policy.timeout`
 * for diffs (by id, so a path survives reordering).
 */

/** A list entry addressed by its id (or other key field) rather than its index. */
export interface KeyedSegment {
  readonly key: string;
}

export type PathSegment = string | number | KeyedSegment;

const PLAIN_FIELD = /^[A-Za-z0-9_-]+$/;

export function formatPath(path: readonly PathSegment[]): string {
  let out = "";
  for (const segment of path) {
    if (typeof segment === "number") out += `[${segment}]`;
    else if (typeof segment === "object") out += `[${segment.key}]`;
    else if (PLAIN_FIELD.test(segment)) out += out === "" ? segment : `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}
