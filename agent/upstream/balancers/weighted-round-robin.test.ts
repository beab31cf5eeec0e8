import { describe, expect, it } from "vitest";
import type { BalancerEndpoint, EndpointState } from "./balancer.js";
import { createWeightedRoundRobinBalancer } from "./weighted-round-robin.js";

function pool(weights: readonly number[]): BalancerEndpoint[] {
  return weights.map((weight, i) => ({ address: `10.0.0.${i + 1}:8080`, weight }));
}

function liveState(down: Iterable<number> = []) {
  const unavailable = new Set(down);
  const state: EndpointState = { isAvailable: (index) => !unavailable.has(index), activeRequests: () => 0 };
  return { state, unavailable };
}

function counts(weights: readonly number[], picks: number, state = liveState().state): number[] {
  const balancer = createWeightedRoundRobinBalancer(pool(weights), state);
  const out = new Array<number>(weights.length).fill(0);
  for (let n = 0; n < picks; n++) out[balancer.pick()]!++;
  return out;
}

function longestRun(sequence: readonly number[], index: number): number {
  let longest = 0;
  let run = 0;
  for (const picked of sequence) {
    run = picked === index ? run + 1 : 0;
    longest = Math.max(longest, run);
  }
  return longest;
}

/** ngx_http_upstream_get_peer, transcribed: the reference the balancer must match. */
function nginxSequence(weights: readonly number[], length: number): number[] {
  const current = weights.map(() => 0);
  const total = weights.reduce((sum, w) => sum + w, 0);
  return Array.from({ length }, () => {
    let best = -1;
    for (const [i, weight] of weights.entries()) {
      current[i]! += weight;
      if (best === -1 || current[i]! > current[best]!) best = i;
    }
    current[best]! -= total;
    return best;
  });
}

describe("smooth weighted round robin", () => {
  it("interleaves weights 5,1,1 as a,a,b,a,c,a,a, cycle after cycle", () => {
    const balancer = createWeightedRoundRobinBalancer(pool([5, 1, 1]), liveState().state);
    const letters = Array.from({ length: 21 }, () => "abc"[balancer.pick()]).join("");
    expect(letters).toBe("aabacaa".repeat(3));
  });

  it.each([[[3, 2, 1]], [[1, 1, 1, 1]], [[100, 50, 1]], [[10_000, 1]], [[7, 3, 3, 2, 1]]])(
    "gives each endpoint exactly its weight's share of every whole cycle (weights %j)",
    (weights) => {
      const cycle = weights.reduce((sum, w) => sum + w, 0);
      const cycles = Math.max(1, Math.floor(50_000 / cycle));
      expect(counts(weights, cycle * cycles)).toEqual(weights.map((w) => w * cycles));
    },
  );

  it.each([
    [[3, 2, 1]], // from a precomputed cycle
    [[300, 200, 100]], // the same cycle, the weights divided by 100
    [[4.5, 3, 1.5]], // fractional: computed on every pick
    [[9_000, 6_000, 3_001]], // a cycle too long to keep: computed on every pick
    [[1, 7, 2, 7, 3]],
  ])("picks exactly nginx's sequence for weights %j", (weights) => {
    const balancer = createWeightedRoundRobinBalancer(pool(weights), liveState().state);
    const picks = Array.from({ length: 500 }, () => balancer.pick());
    expect(picks).toEqual(nginxSequence(weights, 500));
  });

  it("spreads a heavy endpoint's turns instead of bursting them", () => {
    const balancer = createWeightedRoundRobinBalancer(pool([10, 10, 1]), liveState().state);
    const sequence = Array.from({ length: 210 }, () => balancer.pick());
    expect(longestRun(sequence, 0)).toBeLessThanOrEqual(2);
    expect(longestRun(sequence, 1)).toBeLessThanOrEqual(2);
  });

  it("keeps the others' proportions while an endpoint is unavailable", () => {
    expect(counts([5, 3, 1], 4_000, liveState([0]).state)).toEqual([0, 3_000, 1_000]);
  });

  it("keeps proportions when the heavy endpoint that fills most of its cycle is down", () => {
    expect(counts([10_000, 3, 1], 4_000, liveState([0]).state)).toEqual([0, 3_000, 1_000]);
  });

  it("keeps proportions while most of a large pool is down", () => {
    const weights = Array.from({ length: 100 }, (_, i) => 1 + (i % 4));
    const down = Array.from({ length: 97 }, (_, i) => i);
    // Left: endpoints 97, 98, 99 with weights 2, 3, 4.
    const out = counts(weights, 9_000, liveState(down).state);
    expect(out.slice(97)).toEqual([2_000, 3_000, 4_000]);
  });

  it("takes a recovered endpoint back at its weight", () => {
    const { state, unavailable } = liveState([0]);
    const balancer = createWeightedRoundRobinBalancer(pool([2, 1, 1]), state);
    for (let n = 0; n < 101; n++) balancer.pick();
    unavailable.clear();
    const out = [0, 0, 0];
    for (let n = 0; n < 4_000; n++) out[balancer.pick()]!++;
    for (const [i, share] of [0.5, 0.25, 0.25].entries()) expect(out[i]! / 4_000).toBeCloseTo(share, 2);
  });

  it("picks among the endpoints not yet tried, still by weight", () => {
    const balancer = createWeightedRoundRobinBalancer(pool([5, 2, 1]), liveState().state);
    const out = [0, 0, 0];
    for (let n = 0; n < 3_000; n++) out[balancer.pick({ exclude: new Set([0]) })]!++;
    expect(out).toEqual([0, 2_000, 1_000]);
  });
});
