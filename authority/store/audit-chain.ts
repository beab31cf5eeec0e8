/**
 * The audit log's hash chain, pure. Each entry's hash covers its own fields and the previous
 * entry's hash, so changing, removing or reordering any entry breaks every link after it; the
 * first entry links to GENESIS_HASH.
 */
import { canonicalJson, sha256Hex } from "../../services/config/index.js";

export const GENESIS_HASH = "0".repeat(64);

export interface ChainedEntry {
  readonly seq: number;
  readonly at: Date;
  readonly actor: string;
  readonly action: string;
  readonly target: string;
  readonly details: Record<string, unknown>;
  readonly prevHash: string;
}

export function auditEntryHash(entry: ChainedEntry): string {
  return sha256Hex(
    canonicalJson({
      seq: entry.seq,
      at: entry.at.toISOString(),
      actor: entry.actor,
      action: entry.action,
      target: entry.target,
      details: entry.details,
      prev_hash: entry.prevHash,
    }),
  );
}

/** Details as the database will hand them back (JSON values only), so the hash survives the trip. */
export function jsonDetails(details: Record<string, unknown> | undefined): Record<string, unknown> {
  return details === undefined ? {} : (JSON.parse(JSON.stringify(details)) as Record<string, unknown>);
}

/**
 * Checks one entry against the one before it (undefined for the first); the reason it breaks
 * the chain, or undefined when it holds.
 */
export function chainBreak(
  entry: ChainedEntry & { readonly hash: string },
  previous: { readonly seq: number; readonly hash: string } | undefined,
): string | undefined {
  const expectedSeq = (previous?.seq ?? 0) + 1;
  if (entry.seq !== expectedSeq) {
    return `expected entry ${expectedSeq} next, found ${entry.seq}: entries are missing`;
  }
  if (entry.prevHash !== (previous?.hash ?? GENESIS_HASH)) {
    return "prev_hash does not match the previous entry's hash";
  }
  if (auditEntryHash(entry) !== entry.hash) return "hash does not match the entry's content";
  return undefined;
}
