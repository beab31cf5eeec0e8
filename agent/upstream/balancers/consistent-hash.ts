import type { Balancer, BalancerEndpoint, EndpointState, PickOptions } from "./balancer.js";
import { createRoundRobinBalancer } from "./round-robin.js";

/**
 * Points on the ring per weight unit, the unit being the pool's smallest weight, so equal
 * weights of 1 or of 100 give the same ring. 160 (ketama's figure) keeps each endpoint's
 * share of the keys within about ±8% (one standard deviation) of its fair share.
 */
const POINTS_PER_UNIT = 160;

/**
 * Above this many points the points per unit shrink, so a pool's ring stays at most ~128 KB
 * (two Uint32Arrays) and quick to build: 100 equal endpoints fit at the full 160 each.
 */
const MAX_RING_POINTS = 16_384;

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** Ranks packed below a point's 32-bit hash: 2^21, so hash × RANKS + rank stays an exact double. */
const RANKS = 2 ** 21;

/**
 * Consistent hashing on a ring with virtual nodes, so a key keeps going to the same endpoint
 * (cache locality, sticky sessions) and a change to the pool moves only the keys of the
 * endpoints that changed. Each endpoint owns points in proportion to its weight; a key goes
 * to the owner of the first point at or after the key's hash, found by binary search.
 *
 * When that owner is unavailable or excluded the pick walks on around the ring to the next
 * distinct endpoint, which is where the key would go if the owner were removed from the pool,
 * so an ejection moves only the ejected endpoint's keys, and back when it returns.
 *
 * Points hash the endpoint's address, not its index, and ties order by address, so every
 * agent with the same set of endpoints builds the same ring whatever their order.
 *
 * Without a hash key (no such header or cookie, or an empty one) there is nothing to be
 * consistent about: the pick is round robin, rather than piling every such request onto the
 * owner of one point. `start` is where that round robin begins.
 */
export function createConsistentHashBalancer(
  endpoints: readonly BalancerEndpoint[],
  state: EndpointState,
  start = 0,
): Balancer {
  return new ConsistentHashBalancer(endpoints, state, start);
}

class ConsistentHashBalancer implements Balancer {
  readonly #ring: Ring;
  readonly #state: EndpointState;
  readonly #unkeyed: Balancer;
  /** `#seen[index] === #epoch` when the current walk has already looked at endpoint `index`. */
  readonly #seen: Uint32Array;
  #epoch = 0;

  constructor(endpoints: readonly BalancerEndpoint[], state: EndpointState, start: number) {
    this.#ring = buildRing(endpoints);
    this.#state = state;
    this.#unkeyed = createRoundRobinBalancer(endpoints, state, start);
    this.#seen = new Uint32Array(endpoints.length);
  }

  pick(options?: PickOptions): number {
    const key = options?.hashKey;
    if (key === undefined || key === "") return this.#unkeyed.pick(options);
    const { points, owners } = this.#ring;
    if (points.length === 0) return -1;
    const position = firstPointAtOrAfter(points, hash32(key));
    const owner = owners[position]!;
    const exclude = options?.exclude?.size ? options.exclude : undefined;
    if (this.#state.isAvailable(owner) && (exclude === undefined || !exclude.has(owner))) return owner;
    return this.#walk(position, exclude);
  }

  /**
   * The first eligible endpoint after `position` on the ring, looking at each endpoint once;
   * failing that the first available one met (every available endpoint was already tried by
   * this request), or -1 when none is available.
   */
  #walk(position: number, exclude: ReadonlySet<number> | undefined): number {
    const { owners } = this.#ring;
    const epoch = this.#nextEpoch();
    const seen = this.#seen;
    let distinct = 0;
    let fallback = -1;
    for (let step = 0; step < owners.length && distinct < seen.length; step++) {
      const owner = owners[(position + step) % owners.length]!;
      if (seen[owner] === epoch) continue;
      seen[owner] = epoch;
      distinct++;
      if (!this.#state.isAvailable(owner)) continue;
      if (exclude === undefined || !exclude.has(owner)) return owner;
      if (fallback === -1) fallback = owner;
    }
    return fallback;
  }

  /** A fresh mark for a walk, so `#seen` needs no clearing between walks. */
  #nextEpoch(): number {
    this.#epoch = (this.#epoch + 1) >>> 0;
    if (this.#epoch === 0) {
      this.#seen.fill(0);
      this.#epoch = 1;
    }
    return this.#epoch;
  }
}

interface Ring {
  /** Hashes of the points, ascending. */
  readonly points: Uint32Array;
  /** Index of the endpoint that owns each point. */
  readonly owners: Uint32Array;
}

/**
 * Built once per pool config, off the hot path. Each point is packed into one number, hash
 * above the owner's rank in address order, so the typed array's native numeric sort orders
 * the ring by hash and breaks ties by address: no JavaScript comparator, which a ring of
 * 16,000 points would call some 200,000 times.
 */
function buildRing(endpoints: readonly BalancerEndpoint[]): Ring {
  if (endpoints.length > RANKS) {
    throw new RangeError(`consistent_hash supports up to ${RANKS} endpoints, got ${endpoints.length}`);
  }
  const counts = pointCounts(endpoints);
  const byAddress = endpoints
    .map((_, index) => index)
    .sort((a, b) => compareText(endpoints[a]!.address, endpoints[b]!.address) || a - b);
  const packed = new Float64Array(counts.reduce((sum, count) => sum + count, 0));
  let next = 0;
  for (const [rank, index] of byAddress.entries()) {
    // Point `replica` hashes "address#replica"; FNV-1a runs over the shared prefix once.
    const prefix = fnv1a32(`${endpoints[index]!.address}#`);
    for (let replica = 0; replica < counts[index]!; replica++) {
      packed[next++] = fmix32(appendDecimal(prefix, replica)) * RANKS + rank;
    }
  }
  packed.sort();
  const points = new Uint32Array(packed.length);
  const owners = new Uint32Array(packed.length);
  for (let point = 0; point < packed.length; point++) {
    points[point] = Math.floor(packed[point]! / RANKS);
    owners[point] = byAddress[packed[point]! % RANKS]!;
  }
  return { points, owners };
}

/**
 * Points per endpoint: POINTS_PER_UNIT per multiple of the smallest weight, scaled down
 * together when the ring would exceed MAX_RING_POINTS, and never below one. An endpoint's
 * points are replicas 0..count-1 of its address, so adding, removing or reweighting one
 * endpoint moves only keys to or from it — as long as the smallest weight stays the same and
 * the ring stays under the cap; otherwise every endpoint's count is rescaled and more keys
 * move (Envoy's ring hash behaves the same way).
 */
function pointCounts(endpoints: readonly BalancerEndpoint[]): number[] {
  if (endpoints.length === 0) return [];
  const unit = endpoints.reduce(
    (least, endpoint) => Math.min(least, endpoint.weight),
    Number.POSITIVE_INFINITY,
  );
  const units = endpoints.map((endpoint) => endpoint.weight / unit);
  const totalUnits = units.reduce((sum, u) => sum + u, 0);
  const perUnit = Math.min(POINTS_PER_UNIT, MAX_RING_POINTS / totalUnits);
  return units.map((u) => Math.max(1, Math.round(u * perUnit)));
}

/** Index of the first point ≥ `hash`, wrapping to 0 past the last: the ring's lookup. */
function firstPointAtOrAfter(points: Uint32Array, hash: number): number {
  let low = 0;
  let high = points.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (points[middle]! < hash) low = middle + 1;
    else high = middle;
  }
  return low === points.length ? 0 : low;
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * A fast non-cryptographic 32-bit hash: FNV-1a over the UTF-16 code units (the bytes, for
 * ASCII), then murmur3's finalizer. FNV-1a alone spreads similar short strings — addresses
 * that differ in a digit, replica suffixes — poorly across the high bits that the ring's
 * order depends on; the finalizer mixes every input bit into every output bit. Keys need no
 * protection against crafted collisions: the worst a client can do is choose its endpoint.
 */
export function hash32(text: string): number {
  return fmix32(fnv1a32(text));
}

/** FNV-1a, 32 bits, one step per UTF-16 code unit. */
export function fnv1a32(text: string): number {
  let hash = FNV_OFFSET;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), FNV_PRIME);
  return hash >>> 0;
}

/** FNV-1a continued from `hash` over the decimal digits of `value`, without making the string. */
function appendDecimal(hash: number, value: number): number {
  let divisor = 1;
  while (divisor * 10 <= value) divisor *= 10;
  let out = hash;
  for (; divisor >= 1; divisor /= 10) {
    out = Math.imul(out ^ (48 + (Math.floor(value / divisor) % 10)), FNV_PRIME);
  }
  return out >>> 0;
}

/** murmur3's 32-bit finalizer (avalanche): every input bit flips about half the output bits. */
export function fmix32(input: number): number {
  let hash = input;
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  return hash >>> 0;
}
