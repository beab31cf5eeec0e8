import { describe, expect, it } from "vitest";
import type { BalancerEndpoint, EndpointState } from "./balancer.js";
import { createLeastRequestBalancer } from "./least-request.js";

/** mulberry32: a tiny seeded generator, so every run draws the same numbers. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

function pool(weights: readonly number[]): BalancerEndpoint[] {
  return weights.map((weight, i) => ({ address: `10.0.0.${i + 1}:8080`, weight }));
}

function stateWith(active: readonly number[], down: Iterable<number> = []): EndpointState {
  const unavailable = new Set(down);
  return { isAvailable: (index) => !unavailable.has(index), activeRequests: (index) => active[index] ?? 0 };
}

function shares(weights: readonly number[], state: EndpointState, picks: number, seed = 1): number[] {
  const balancer = createLeastRequestBalancer(pool(weights), state, seeded(seed));
  const out = new Array<number>(weights.length).fill(0);
  for (let n = 0; n < picks; n++) out[balancer.pick()]!++;
  return out.map((count) => count / picks);
}

describe("least request (power of two choices)", () => {
  it("always sends to the less loaded of two endpoints, so its two candidates are distinct", () => {
    expect(shares([1, 1], stateWith([3, 0]), 1_000)).toEqual([0, 1]);
    expect(shares([9, 1], stateWith([3, 0]), 1_000)).toEqual([0, 1]);
  });

  it("favours the less loaded as P2C predicts: a candidate wins against every busier one", () => {
    // Equal weights, loads 0 < 5 < 10: endpoint 0 wins whenever drawn (2 of 3 pairs),
    // endpoint 1 only in the pair {1, 2}, endpoint 2 never.
    const [idle, busy, busiest] = shares([1, 1, 1], stateWith([0, 5, 10]), 30_000);
    expect(idle).toBeCloseTo(2 / 3, 2);
    expect(busy).toBeCloseTo(1 / 3, 2);
    expect(busiest).toBe(0);
  });

  it("picks in proportion to weight when loads are equal", () => {
    const weights = [1, 2, 3, 4];
    const out = shares(weights, stateWith([2, 2, 2, 2]), 100_000);
    for (const [i, weight] of weights.entries()) expect(out[i]).toBeCloseTo(weight / 10, 2);
  });

  it("draws candidates in proportion to weight, so a heavy endpoint is more often compared", () => {
    // The idle endpoint wins whenever drawn; with weights 1,1,8 it is drawn (as one of two
    // distinct candidates) far less often than with equal weights.
    const light = shares([1, 1, 8], stateWith([0, 5, 5]), 30_000)[0]!;
    const equal = shares([1, 1, 1], stateWith([0, 5, 5]), 30_000)[0]!;
    // P(drawn) with weights 1,1,8: 1/10 first, or second after 1 (1/10·1/9) or 8 (8/10·1/2).
    expect(light).toBeCloseTo(1 / 10 + 1 / 90 + 4 / 10, 2);
    expect(equal).toBeCloseTo(2 / 3, 2);
  });

  it("keeps weight proportions among the available endpoints while some are down", () => {
    const out = shares([1, 2, 3, 4], stateWith([0, 0, 0, 0], [3]), 60_000);
    expect(out[3]).toBe(0);
    for (const [i, share] of [1 / 6, 2 / 6, 3 / 6].entries()) expect(out[i]).toBeCloseTo(share, 2);
  });

  it("finds the one available endpoint of a mostly unavailable pool", () => {
    const down = Array.from({ length: 99 }, (_, i) => i + 1);
    expect(shares(new Array(100).fill(1), stateWith([], down), 100)).toContain(1);
  });

  it("returns the same picks for the same seed", () => {
    const run = (seed: number) => {
      const balancer = createLeastRequestBalancer(
        pool([1, 2, 3, 4, 5]),
        stateWith([1, 0, 2, 0, 1]),
        seeded(seed),
      );
      return Array.from({ length: 50 }, () => balancer.pick());
    };
    expect(run(42)).toEqual(run(42));
    expect(run(42)).not.toEqual(run(43));
  });

  it.each([
    ["0", () => 0],
    ["just below 1", () => 1 - 2 ** -53],
  ])("stays within the pool when random() returns %s every time", (_, random) => {
    for (const weights of [
      [1, 1, 1],
      [1, 5, 2],
    ]) {
      const balancer = createLeastRequestBalancer(pool(weights), stateWith([0, 0, 0]), random);
      for (let n = 0; n < 10; n++) expect([0, 1, 2]).toContain(balancer.pick());
      expect([1, 2]).toContain(balancer.pick({ exclude: new Set([0]) }));
    }
  });
});
