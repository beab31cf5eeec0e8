/**
 * Weighted rendezvous (highest random weight) hashing: every option scores a key with a
 * hash of (key, option), scaled by the option's weight, and the highest score wins. A key
 * therefore stays with its option while the options stay the same, and changing one option's
 * weight moves only keys to it (when it grows) or from it (when it shrinks): no other
 * option's score changes. Dropping an option sends its keys to where each would have gone
 * without it, and nowhere else.
 *
 * One key's scores under different seeds go through murmur3's finalizer, so they behave as
 * independent draws. The score is weight / -ln(u), u being the hash mapped into (0, 1): an option wins a share
 * of the keys equal to its share of the total weight (Schindelhauer and Schomaker, "Weighted
 * distributed hash tables", 2005).
 */
import { fmix32, hash32 } from "../upstream/balancers/consistent-hash.js";

export interface RendezvousEntry {
  readonly id: string;
  readonly weight: number;
}

export interface RendezvousTable {
  /** The entries' ids in table order: sorted, so every agent builds the same table. */
  readonly ids: readonly string[];
  readonly seeds: Uint32Array;
  readonly weights: Float64Array;
}

const TWO_TO_32 = 4_294_967_296;

/** Built once per config, off the request path. */
export function createRendezvousTable(entries: readonly RendezvousEntry[]): RendezvousTable {
  const sorted = [...entries].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const seeds = new Uint32Array(sorted.length);
  const weights = new Float64Array(sorted.length);
  sorted.forEach((entry, index) => {
    seeds[index] = hash32(entry.id);
    weights[index] = entry.weight;
  });
  return { ids: sorted.map((entry) => entry.id), seeds, weights };
}

/**
 * The index of the winning entry for a key, given the key's 32-bit hash (hash it once, e.g.
 * with consistent-hash's `hash32`), or -1 when there is none. `skip` is an index left out of
 * the contest (-1 for none), so the key goes where it would go without that entry. Ties,
 * vanishingly rare, go to the entry first in table order.
 */
export function pickRendezvous(table: RendezvousTable, keyHash: number, skip: number): number {
  const { seeds, weights } = table;
  let best = -1;
  let bestScore = Number.NEGATIVE_INFINITY;
  for (let index = 0; index < seeds.length; index++) {
    if (index === skip) continue;
    const unit = (fmix32((keyHash ^ seeds[index]!) >>> 0) + 0.5) / TWO_TO_32;
    const score = weights[index]! / -Math.log(unit);
    if (score > bestScore) {
      bestScore = score;
      best = index;
    }
  }
  return best;
}
