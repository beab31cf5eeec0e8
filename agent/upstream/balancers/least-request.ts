import type { Balancer, BalancerEndpoint, EndpointState, PickOptions } from "./balancer.js";

/**
 * Draws of the first cheap sampler before a pick falls back to the exact one. The cheap one
 * draws from every endpoint and rejects the ineligible; with a healthy pool it succeeds on the
 * first draw, so the fallback only runs when much of the pool is down, excluded or, for the
 * second candidate, when the first holds most of the weight.
 */
const CHEAP_DRAWS = 4;

const ALMOST_ONE = 1 - 2 ** -53;

/**
 * Least request by the power of two choices: draw two distinct available endpoints at random,
 * in proportion to their weights, and send to the one with fewer requests in flight (the
 * first drawn on a tie). Two random candidates avoid both the herd that a strict "least
 * loaded" causes when many agents see the same counts, and the O(endpoints) scan it needs.
 *
 * `random` returns a number in [0, 1), like Math.random; tests pass a seeded one.
 */
export function createLeastRequestBalancer(
  endpoints: readonly BalancerEndpoint[],
  state: EndpointState,
  random: () => number = Math.random,
): Balancer {
  return new LeastRequestBalancer(endpoints, state, random);
}

class LeastRequestBalancer implements Balancer {
  readonly #weights: Float64Array;
  /** Running sums of the weights, for a weighted draw by binary search. */
  readonly #cumulative: Float64Array;
  /** With equal weights a draw is one multiplication, no search. */
  readonly #equalWeights: boolean;
  readonly #state: EndpointState;
  readonly #random: () => number;
  /**
   * Where the last draw landed within its endpoint's share, rescaled to [0, 1): uniform and
   * independent of which endpoint was drawn, so it serves as the second candidate's random
   * number. One random() per pick instead of two; random() is as costly as the rest of a pick.
   */
  #spare = 0;

  constructor(endpoints: readonly BalancerEndpoint[], state: EndpointState, random: () => number) {
    this.#weights = Float64Array.from(endpoints, (endpoint) => endpoint.weight);
    this.#cumulative = new Float64Array(endpoints.length);
    let sum = 0;
    for (let index = 0; index < endpoints.length; index++) {
      sum += this.#weights[index]!;
      this.#cumulative[index] = sum;
    }
    this.#equalWeights = endpoints.every((endpoint) => endpoint.weight === endpoints[0]?.weight);
    this.#state = state;
    this.#random = random;
  }

  pick(options?: PickOptions): number {
    const count = this.#weights.length;
    if (count <= 1) return count === 1 && this.#state.isAvailable(0) ? 0 : -1;
    let exclude = options?.exclude?.size ? options.exclude : undefined;
    let first = this.#draw(exclude, -1, this.#random());
    if (first === -1 && exclude !== undefined) {
      // Every available endpoint was already tried by this request: choose among them all.
      exclude = undefined;
      first = this.#draw(undefined, -1, this.#random());
    }
    if (first === -1) return -1;
    const second = this.#draw(exclude, first, this.#spare);
    if (second === -1) return first;
    return this.#state.activeRequests(second) < this.#state.activeRequests(first) ? second : first;
  }

  /**
   * A weighted draw, from `uniform` first, among the eligible endpoints other than `other`;
   * -1 when there are none.
   */
  #draw(exclude: ReadonlySet<number> | undefined, other: number, uniform: number): number {
    let r = uniform;
    for (let attempt = 0; attempt < CHEAP_DRAWS; attempt++) {
      const index = this.#drawAny(r);
      if (index !== other && this.#eligible(index, exclude)) return index;
      r = this.#random();
    }
    return this.#drawExactly(exclude, other, r);
  }

  /** A weighted draw from the whole pool, eligible or not. */
  #drawAny(uniform: number): number {
    const count = this.#weights.length;
    if (this.#equalWeights) {
      const target = uniform * count;
      const index = Math.min(Math.floor(target), count - 1);
      this.#spare = unit(target - index);
      return index;
    }
    const cumulative = this.#cumulative;
    const target = uniform * cumulative[count - 1]!;
    let low = 0;
    let high = count - 1;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (cumulative[middle]! > target) high = middle;
      else low = middle + 1;
    }
    const weight = this.#weights[low]!;
    this.#spare = unit((target - (cumulative[low]! - weight)) / weight);
    return low;
  }

  /**
   * The same distribution as rejecting until success, in two passes over the pool: the
   * total weight of the eligible endpoints, then the one the draw lands on.
   */
  #drawExactly(exclude: ReadonlySet<number> | undefined, other: number, uniform: number): number {
    const weights = this.#weights;
    let total = 0;
    for (let index = 0; index < weights.length; index++) {
      if (index !== other && this.#eligible(index, exclude)) total += weights[index]!;
    }
    if (total === 0) return -1;
    let target = uniform * total;
    let last = -1;
    for (let index = 0; index < weights.length; index++) {
      if (index === other || !this.#eligible(index, exclude)) continue;
      const weight = weights[index]!;
      last = index;
      if (target < weight) break;
      target -= weight;
    }
    // When rounding left the target a hair above the total, `last` is the last eligible one.
    this.#spare = unit(target / weights[last]!);
    return last;
  }

  #eligible(index: number, exclude: ReadonlySet<number> | undefined): boolean {
    return this.#state.isAvailable(index) && (exclude === undefined || !exclude.has(index));
  }
}

/** `value` kept inside [0, 1), where rounding at the top end of a draw could leave it at 1. */
function unit(value: number): number {
  return value < 1 ? value : ALMOST_ONE;
}
