/**
 * The canonical form of a dynamic config: what it means, not how it was written. Units are
 * already normalized by the schema (ms, bytes, percent points); here unordered lists are sorted
 * by their key, the spec's top-level `certificates` joins `tls.certificates`, empty sections
 * and the legacy `signature` field are dropped, and `version` is always stated. Its canonical
 * JSON's sha256 is the content hash: equal meaning, equal hash.
 */
import { canonicalJson, sha256Hex } from "./canonical-json.js";
import { isRecord } from "./issues.js";
import { LIST_TRIE, type ListTrie } from "./lists.js";
import type { DynamicConfig } from "./schema/dynamic.js";

export function canonicalize(config: DynamicConfig): DynamicConfig {
  const { signature: _signature, certificates, tls, version: _version, ...sections } = config;
  const out: Record<string, unknown> = { version: "v1" };
  for (const [name, value] of Object.entries(sections)) {
    if (value === undefined || (Array.isArray(value) && value.length === 0)) continue;
    out[name] = value;
  }
  const allCertificates = [...(tls?.certificates ?? []), ...(certificates ?? [])];
  if (tls || allCertificates.length > 0) {
    out.tls = { ...tls, certificates: allCertificates.length > 0 ? allCertificates : undefined };
  }
  return normalize(out, LIST_TRIE) as DynamicConfig;
}

/** The sha256 of the canonical JSON: the identity of a config's content. */
export function contentHash(config: DynamicConfig): string {
  return sha256Hex(canonicalJson(config));
}

/** A copy with keys in sorted order, undefined fields dropped and unordered keyed lists sorted. */
function normalize(value: unknown, trie: ListTrie | undefined): unknown {
  if (Array.isArray(value)) {
    const items = value.map((item) => normalize(item, trie?.children.get("*")));
    const list = trie?.list;
    if (!list || list.ordered) return items;
    const keyOf = (item: unknown) => (isRecord(item) ? String(item[list.key]) : "");
    return items.sort((a, b) => (keyOf(a) < keyOf(b) ? -1 : keyOf(a) > keyOf(b) ? 1 : 0));
  }
  if (!isRecord(value)) return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) {
    if (value[key] !== undefined) out[key] = normalize(value[key], trie?.children.get(key));
  }
  return out;
}
