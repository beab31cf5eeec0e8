/**
 * Header edits of `header_transform` stages, for either direction: compiled once into a flat
 * list of operations, applied per request with no allocation unless a header gains a value.
 *
 * Within one stage, `remove` goes first, then `set`, then `add`, so whatever a stage sets or
 * adds is there afterwards whatever it removes; the stages of a chain apply in order. `add`
 * keeps existing values and appends; `set` replaces them. Names are lower case (the config
 * schema lowercases them), as Node keeps incoming and outgoing header names.
 */

export type HeaderOp =
  | { readonly op: "remove"; readonly name: string }
  | { readonly op: "set" | "add"; readonly name: string; readonly value: string };

/** Operations in the order they apply. */
export type HeaderEdits = readonly HeaderOp[];

export interface HeaderEditsConfig {
  readonly add?: Readonly<Record<string, string>>;
  readonly set?: Readonly<Record<string, string>>;
  readonly remove?: readonly string[];
}

/** Request headers upstream and response headers to the client alike. */
export type HeaderBag = Record<string, string | string[] | number | undefined>;

/** The operations of one stage's edits; empty when it edits nothing. */
export function compileHeaderEdits(config: HeaderEditsConfig | undefined): HeaderOp[] {
  const ops: HeaderOp[] = [];
  if (!config) return ops;
  for (const name of config.remove ?? []) ops.push({ op: "remove", name: name.toLowerCase() });
  for (const [name, value] of Object.entries(config.set ?? {}))
    ops.push({ op: "set", name: name.toLowerCase(), value });
  for (const [name, value] of Object.entries(config.add ?? {}))
    ops.push({ op: "add", name: name.toLowerCase(), value });
  return ops;
}

export function applyHeaderEdits(headers: HeaderBag, edits: HeaderEdits): void {
  for (let i = 0; i < edits.length; i++) {
    const edit = edits[i]!;
    if (edit.op === "remove") {
      delete headers[edit.name];
    } else if (edit.op === "set") {
      headers[edit.name] = edit.value;
    } else {
      const prior = headers[edit.name];
      if (prior === undefined) headers[edit.name] = edit.value;
      else if (Array.isArray(prior)) headers[edit.name] = [...prior, edit.value];
      else headers[edit.name] = [String(prior), edit.value];
    }
  }
}
