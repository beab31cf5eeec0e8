/**
 * The contract every balancer keeps, run against each kind through the factory: what it may
 * pick when endpoints are down or already tried, and when it gives up. Distribution is each
 * kind's own business and is tested beside it.
 */
import { describe, expect, it } from "vitest";
import {
  type BalancerEndpoint,
  type BalancerKind,
  createBalancer,
  type EndpointState,
  type PickOptions,
} from "./balancer.js";

interface Case {
  readonly name: string;
  readonly kind: BalancerKind;
  /** Options of the n-th pick; consistent_hash varies its key so a run covers the ring. */
  readonly options: (n: number, exclude?: ReadonlySet<number>) => PickOptions;
}

const CASES: readonly Case[] = [
  { name: "round_robin", kind: "round_robin", options: (_, exclude) => ({ exclude }) },
  { name: "weighted_round_robin", kind: "weighted_round_robin", options: (_, exclude) => ({ exclude }) },
  { name: "least_request", kind: "least_request", options: (_, exclude) => ({ exclude }) },
  {
    name: "consistent_hash with a key",
    kind: "consistent_hash",
    options: (n, exclude) => ({ hashKey: `user-${n}`, exclude }),
  },
  { name: "consistent_hash without a key", kind: "consistent_hash", options: (_, exclude) => ({ exclude }) },
];

const PICKS = 2_000;

function pool(weights: readonly number[]): BalancerEndpoint[] {
  return weights.map((weight, i) => ({ address: `10.0.0.${i + 1}:8080`, weight }));
}

/** Health and load a test can change between picks, as the registries do. */
function liveState(down: Iterable<number> = []) {
  const unavailable = new Set(down);
  const active: number[] = [];
  const state: EndpointState = {
    isAvailable: (index) => !unavailable.has(index),
    activeRequests: (index) => active[index] ?? 0,
  };
  return { state, unavailable, active };
}

function picksOf(
  kind: Case,
  weights: readonly number[],
  state: EndpointState,
  exclude?: ReadonlySet<number>,
) {
  const balancer = createBalancer(kind.kind, pool(weights), state);
  const counts = new Map<number, number>();
  for (let n = 0; n < PICKS; n++) {
    const index = balancer.pick(kind.options(n, exclude));
    counts.set(index, (counts.get(index) ?? 0) + 1);
  }
  return counts;
}

describe.each(CASES)("$name", (kind) => {
  it("picks every endpoint of a healthy pool, and nothing else", () => {
    const counts = picksOf(kind, [1, 2, 3, 4], liveState().state);
    expect([...counts.keys()].sort()).toEqual([0, 1, 2, 3]);
  });

  it("never picks an unavailable endpoint, and picks every available one", () => {
    const counts = picksOf(kind, [1, 2, 1, 3, 1], liveState([1, 3]).state);
    expect([...counts.keys()].sort()).toEqual([0, 2, 4]);
  });

  it("avoids the endpoints this request already tried while others are available", () => {
    const counts = picksOf(kind, [2, 1, 1, 1], liveState([3]).state, new Set([0, 2]));
    expect([...counts.keys()]).toEqual([1]);
  });

  it("picks among the available endpoints when every one of them was already tried", () => {
    const counts = picksOf(kind, [1, 1, 2, 1], liveState([1, 3]).state, new Set([0, 2]));
    expect([...counts.keys()].sort()).toEqual([0, 2]);
  });

  it("ignores exclusions of endpoints that are unavailable anyway", () => {
    const counts = picksOf(kind, [1, 1, 1], liveState([0]).state, new Set([0]));
    expect([...counts.keys()].sort()).toEqual([1, 2]);
  });

  it("answers -1 when no endpoint is available, excluded or not", () => {
    const { state } = liveState([0, 1, 2]);
    const balancer = createBalancer(kind.kind, pool([1, 5, 1]), state);
    expect(balancer.pick(kind.options(0))).toBe(-1);
    expect(balancer.pick(kind.options(1, new Set([0, 1, 2])))).toBe(-1);
  });

  it("answers -1 for a pool without endpoints", () => {
    const balancer = createBalancer(kind.kind, [], liveState().state);
    expect(balancer.pick(kind.options(0))).toBe(-1);
    expect(balancer.pick()).toBe(-1);
  });

  it("always picks the one endpoint of a single-endpoint pool, even when already tried", () => {
    const { state, unavailable } = liveState();
    const balancer = createBalancer(kind.kind, pool([7]), state);
    for (let n = 0; n < 10; n++) expect(balancer.pick(kind.options(n))).toBe(0);
    expect(balancer.pick(kind.options(0, new Set([0])))).toBe(0);
    unavailable.add(0);
    expect(balancer.pick(kind.options(0))).toBe(-1);
  });

  it("picks an endpoint again once it is available again", () => {
    const { state, unavailable } = liveState([2]);
    const balancer = createBalancer(kind.kind, pool([1, 1, 1]), state);
    for (let n = 0; n < PICKS; n++) expect(balancer.pick(kind.options(n))).not.toBe(2);
    unavailable.clear();
    const picked = new Set<number>();
    for (let n = 0; n < PICKS; n++) picked.add(balancer.pick(kind.options(n)));
    expect(picked.has(2)).toBe(true);
  });

  it("works without options", () => {
    const balancer = createBalancer(kind.kind, pool([1, 1]), liveState().state);
    expect([0, 1]).toContain(balancer.pick());
  });
});

describe("createBalancer", () => {
  it.each([0, 0.5, -1, Number.NaN, Number.POSITIVE_INFINITY])(
    "refuses an endpoint weight of %s",
    (weight) => {
      expect(() => createBalancer("round_robin", pool([1, weight]), liveState().state)).toThrow(RangeError);
    },
  );

  it("accepts fractional weights of at least 1", () => {
    const balancer = createBalancer("weighted_round_robin", pool([1.5, 1]), liveState().state);
    expect([0, 1]).toContain(balancer.pick());
  });
});
