/**
 * The lists of a dynamic config whose entries have an identity: the field that names an
 * entry, and whether the list's order means something. Canonicalization sorts the unordered
 * ones; diffs address entries by the key (`routes[api-route]`) instead of their position.
 * Lists not named here are compared position by position.
 */
export interface KeyedList {
  /** Field names from the root; "*" stands for any entry of the enclosing list. */
  readonly path: readonly string[];
  readonly key: string;
  /** Route order breaks ties between equally specific routes; stage order is the plan. */
  readonly ordered: boolean;
}

export const KEYED_LISTS: readonly KeyedList[] = [
  { path: ["listeners"], key: "address", ordered: false },
  { path: ["routes"], key: "id", ordered: true },
  { path: ["pools"], key: "id", ordered: false },
  { path: ["pools", "*", "endpoints"], key: "address", ordered: false },
  { path: ["policies"], key: "id", ordered: false },
  { path: ["middleware"], key: "id", ordered: false },
  { path: ["traffic_management"], key: "route", ordered: false },
  { path: ["cache"], key: "route", ordered: false },
  { path: ["plugins"], key: "id", ordered: false },
  { path: ["tls", "certificates"], key: "cert_file", ordered: false },
  { path: ["rollout", "stages"], key: "name", ordered: true },
  { path: ["rollout", "health_gates"], key: "metric", ordered: false },
];

/**
 * The keyed list at `fields`: the field names leading to it, with list entries given as "*".
 */
export function keyedListAt(fields: readonly string[]): KeyedList | undefined {
  return KEYED_LISTS.find(
    (list) => list.path.length === fields.length && list.path.every((name, i) => name === fields[i]),
  );
}

/**
 * The same table as a tree of field names, for walks that descend a config once and want to
 * know at each step whether a keyed list is below, without building path arrays.
 */
export interface ListTrie {
  readonly children: ReadonlyMap<string, ListTrie>;
  readonly list?: KeyedList;
}

export const LIST_TRIE: ListTrie = buildTrie();

function buildTrie(): ListTrie {
  type Mutable = { children: Map<string, Mutable>; list?: KeyedList };
  const root: Mutable = { children: new Map() };
  for (const list of KEYED_LISTS) {
    let node = root;
    for (const name of list.path) {
      let child = node.children.get(name);
      if (!child) {
        child = { children: new Map() };
        node.children.set(name, child);
      }
      node = child;
    }
    node.list = list;
  }
  return root;
}
