/**
 * Load balancers of upstream pools: which endpoint a request goes to. They run on every
 * request, so they are pure, allocation-free on `pick`, and read live facts (health, load)
 * through `EndpointState` at pick time instead of holding copies that would go stale.
 *
 * A balancer is built once per pool config (off the hot path, when a snapshot is compiled)
 * and kept across swaps while the pool is unchanged, so its position survives.
 *
 * Every kind follows the same rules, checked by balancer.test.ts against all of them:
 * - an unavailable endpoint is never picked;
 * - an excluded endpoint is picked only when every available endpoint is excluded, because a
 *   retry to an endpoint already tried beats no retry at all;
 * - -1 means no endpoint is available.
 */
import { createConsistentHashBalancer } from "./consistent-hash.js";
import { createLeastRequestBalancer } from "./least-request.js";
import { createRoundRobinBalancer } from "./round-robin.js";
import { createWeightedRoundRobinBalancer } from "./weighted-round-robin.js";

export interface BalancerEndpoint {
  readonly address: string;
  readonly weight: number; // weight ≥ 1
}

/** Live facts about endpoints, owned by registries (health, load); read at pick time. */
export interface EndpointState {
  isAvailable(index: number): boolean; // false when unhealthy or ejected
  activeRequests(index: number): number; // requests in flight now
}

export interface PickOptions {
  /** For consistent_hash: the request's key (header/cookie value or client IP). */
  readonly hashKey?: string;
  /** Endpoints already tried by this request (retries, hedges): pick another when possible. */
  readonly exclude?: ReadonlySet<number>;
}

export interface Balancer {
  /** Index of the endpoint to use, or -1 when no endpoint is available. */
  pick(options?: PickOptions): number;
}

export type BalancerKind = "round_robin" | "weighted_round_robin" | "least_request" | "consistent_hash";

export function createBalancer(
  kind: BalancerKind,
  endpoints: readonly BalancerEndpoint[],
  state: EndpointState,
): Balancer {
  checkWeights(endpoints);
  switch (kind) {
    case "round_robin":
      return createRoundRobinBalancer(endpoints, state, randomStart(endpoints.length));
    case "weighted_round_robin":
      return createWeightedRoundRobinBalancer(endpoints, state);
    case "least_request":
      return createLeastRequestBalancer(endpoints, state);
    case "consistent_hash":
      return createConsistentHashBalancer(endpoints, state, randomStart(endpoints.length));
  }
}

/**
 * Round robin starts at a random endpoint: a fleet of agents that all swapped in the same
 * snapshot would otherwise send their first requests to endpoint 0 together.
 */
function randomStart(count: number): number {
  return Math.floor(Math.random() * count);
}

/**
 * Config validation already guarantees weights ≥ 1; a balancer built from anything else is a
 * bug in the caller, found here at compile time rather than as a skewed or stuck pick later.
 */
function checkWeights(endpoints: readonly BalancerEndpoint[]): void {
  for (const [index, endpoint] of endpoints.entries()) {
    if (!(Number.isFinite(endpoint.weight) && endpoint.weight >= 1)) {
      throw new RangeError(
        `endpoints[${index}].weight: ${endpoint.weight} is not a finite number ≥ 1 (default it to 1)`,
      );
    }
  }
}
