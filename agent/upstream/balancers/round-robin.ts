import type { Balancer, BalancerEndpoint, EndpointState, PickOptions } from "./balancer.js";

/**
 * Round robin over the available endpoints, ignoring weights. An unavailable endpoint is
 * skipped and the cursor moves past the endpoint picked, so the one after a skipped endpoint
 * does not get its turn too.
 */
export function createRoundRobinBalancer(
  endpoints: readonly BalancerEndpoint[],
  state: EndpointState,
  start = 0,
): Balancer {
  return new RoundRobinBalancer(endpoints.length, state, start);
}

class RoundRobinBalancer implements Balancer {
  readonly #count: number;
  readonly #state: EndpointState;
  #next: number;

  constructor(count: number, state: EndpointState, start: number) {
    this.#count = count;
    this.#state = state;
    this.#next = count > 0 ? Math.abs(Math.trunc(start)) % count : 0;
  }

  pick(options?: PickOptions): number {
    const exclude = options?.exclude?.size ? options.exclude : undefined;
    const count = this.#count;
    let index = this.#next;
    // The first available endpoint that this request already tried: used only when every
    // available endpoint has been tried.
    let fallback = -1;
    for (let seen = 0; seen < count; seen++) {
      if (this.#state.isAvailable(index)) {
        if (exclude === undefined || !exclude.has(index)) return this.#advancePast(index);
        if (fallback === -1) fallback = index;
      }
      index = index + 1 === count ? 0 : index + 1;
    }
    return fallback === -1 ? -1 : this.#advancePast(fallback);
  }

  #advancePast(index: number): number {
    this.#next = index + 1 === this.#count ? 0 : index + 1;
    return index;
  }
}
