import type { Balancer, BalancerEndpoint, EndpointState, PickOptions } from "./balancer.js";

/**
 * Longest precomputed cycle (entries, 4 bytes each). Pools whose weights, divided by their
 * greatest common divisor, add up to more run the O(endpoints) round on every pick.
 */
const MAX_SCHEDULE = 8_192;

/**
 * Schedule entries a pick may skip (their endpoint unavailable or already tried) before it
 * runs the full round instead. Smooth weights keep an endpoint's runs short (5,1,1 has at most
 * four a's in a row, across the cycle's end), so with one endpoint down the schedule serves.
 */
const MAX_SKIPS = 8;

/**
 * Smooth weighted round robin, as nginx does it: on each pick every candidate's current
 * weight grows by its weight, the largest wins and gives back the total. Weights 5,1,1 give
 * a,a,b,a,c,a,a — the heavy endpoint's turns interleaved with the others, not in a burst of
 * five that would hit it with back-to-back requests.
 *
 * That round costs O(endpoints) per pick, and over a fixed set of candidates it repeats
 * with a period of the sum of the weights. So the cycle over all endpoints is computed once,
 * and a pick takes its next entry, skipping those whose endpoint is unavailable or already
 * tried: with everything healthy the picks are exactly nginx's, in O(1); with some endpoints
 * down each remaining endpoint still gets exactly its weight's turns per cycle, in the same
 * interleaved order. When the cycle would be too long, or too many entries in a row are
 * skipped (much of the pool down), the pick runs nginx's round among the eligible endpoints.
 */
export function createWeightedRoundRobinBalancer(
  endpoints: readonly BalancerEndpoint[],
  state: EndpointState,
): Balancer {
  return new WeightedRoundRobinBalancer(endpoints, state);
}

class WeightedRoundRobinBalancer implements Balancer {
  readonly #weights: Float64Array;
  /** nginx's current weights, for the picks the schedule cannot serve. */
  readonly #current: Float64Array;
  readonly #state: EndpointState;
  /** One cycle of picks with every endpoint healthy; undefined when too long to keep. */
  readonly #schedule: Uint32Array | undefined;
  #cursor = 0;

  constructor(endpoints: readonly BalancerEndpoint[], state: EndpointState) {
    this.#weights = Float64Array.from(endpoints, (endpoint) => endpoint.weight);
    this.#current = new Float64Array(endpoints.length);
    this.#state = state;
    this.#schedule = buildSchedule(this.#weights);
  }

  pick(options?: PickOptions): number {
    const exclude = options?.exclude?.size ? options.exclude : undefined;
    if (this.#schedule !== undefined) {
      const index = this.#next(this.#schedule, exclude);
      if (index !== -1) return index;
    }
    const index = this.#round(exclude);
    // Every available endpoint was already tried by this request: run the round among them.
    return index === -1 && exclude !== undefined ? this.#round(undefined) : index;
  }

  /** The schedule's next eligible entry within MAX_SKIPS, or -1. */
  #next(schedule: Uint32Array, exclude: ReadonlySet<number> | undefined): number {
    for (let skipped = 0; skipped < MAX_SKIPS; skipped++) {
      const index = schedule[this.#cursor]!;
      this.#cursor = this.#cursor + 1 === schedule.length ? 0 : this.#cursor + 1;
      if (this.#state.isAvailable(index) && (exclude === undefined || !exclude.has(index))) return index;
    }
    return -1;
  }

  /** One smooth round among the available endpoints outside `exclude`; -1 when there are none. */
  #round(exclude: ReadonlySet<number> | undefined): number {
    const weights = this.#weights;
    const current = this.#current;
    let total = 0;
    let best = -1;
    for (let index = 0; index < weights.length; index++) {
      if (!this.#state.isAvailable(index) || exclude?.has(index)) continue;
      const weight = weights[index]!;
      const grown = current[index]! + weight;
      current[index] = grown;
      total += weight;
      if (best === -1 || grown > current[best]!) best = index;
    }
    if (best !== -1) current[best] = current[best]! - total;
    return best;
  }
}

/**
 * nginx's round run over all endpoints for one period: the weights divided by their greatest
 * common divisor (100,100,50 cycles like 2,2,1) summed. Undefined for fractional weights,
 * whose period is not a whole number of picks, and for periods over MAX_SCHEDULE.
 */
function buildSchedule(weights: Float64Array): Uint32Array | undefined {
  if (weights.length === 0 || !weights.every(Number.isInteger)) return undefined;
  const divisor = weights.reduce(gcd);
  const reduced = weights.map((weight) => weight / divisor);
  const period = reduced.reduce((sum, weight) => sum + weight, 0);
  if (period > MAX_SCHEDULE) return undefined;
  const current = new Float64Array(reduced.length);
  const schedule = new Uint32Array(period);
  for (let pick = 0; pick < period; pick++) {
    let best = 0;
    for (let index = 0; index < reduced.length; index++) {
      current[index]! += reduced[index]!;
      if (current[index]! > current[best]!) best = index;
    }
    current[best]! -= period;
    schedule[pick] = best;
  }
  return schedule;
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}
