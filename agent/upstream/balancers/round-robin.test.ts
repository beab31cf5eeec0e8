import { describe, expect, it } from "vitest";
import type { BalancerEndpoint, EndpointState } from "./balancer.js";
import { createRoundRobinBalancer } from "./round-robin.js";

function pool(weights: readonly number[]): BalancerEndpoint[] {
  return weights.map((weight, i) => ({ address: `10.0.0.${i + 1}:8080`, weight }));
}

function stateWith(down: Iterable<number> = []): EndpointState {
  const unavailable = new Set(down);
  return { isAvailable: (index) => !unavailable.has(index), activeRequests: () => 0 };
}

function sequence(count: number, pick: () => number): number[] {
  return Array.from({ length: count }, pick);
}

describe("round robin", () => {
  it("cycles through the endpoints in order, ignoring weights", () => {
    const balancer = createRoundRobinBalancer(pool([1, 5, 1]), stateWith());
    expect(sequence(9, () => balancer.pick())).toEqual([0, 1, 2, 0, 1, 2, 0, 1, 2]);
  });

  it("gives every endpoint exactly the same number of picks over whole cycles", () => {
    const balancer = createRoundRobinBalancer(pool(new Array(7).fill(1)), stateWith());
    const counts = new Array(7).fill(0);
    for (let n = 0; n < 7 * 1_000; n++) counts[balancer.pick()]++;
    expect(counts).toEqual(new Array(7).fill(1_000));
  });

  it("starts the cycle at the given endpoint", () => {
    const balancer = createRoundRobinBalancer(pool([1, 1, 1]), stateWith(), 2);
    expect(sequence(4, () => balancer.pick())).toEqual([2, 0, 1, 2]);
  });

  it("skips an unavailable endpoint without giving the next one an extra turn", () => {
    const balancer = createRoundRobinBalancer(pool([1, 1, 1, 1]), stateWith([1]));
    expect(sequence(6, () => balancer.pick())).toEqual([0, 2, 3, 0, 2, 3]);
  });

  it("moves on from an excluded endpoint and continues the cycle after the one picked", () => {
    const balancer = createRoundRobinBalancer(pool([1, 1, 1]), stateWith());
    expect(balancer.pick()).toBe(0);
    expect(balancer.pick({ exclude: new Set([1]) })).toBe(2);
    expect(sequence(3, () => balancer.pick())).toEqual([0, 1, 2]);
  });

  it("retries the endpoint already tried when it is the only one available", () => {
    const balancer = createRoundRobinBalancer(pool([1, 1, 1]), stateWith([0, 2]));
    expect(balancer.pick({ exclude: new Set([1]) })).toBe(1);
  });
});
