import { describe, expect, it } from "vitest";
import type { Balancer, BalancerEndpoint, EndpointState } from "./balancer.js";
import { createConsistentHashBalancer, fnv1a32, hash32 } from "./consistent-hash.js";

const KEYS = Array.from({ length: 10_000 }, (_, i) =>
  i % 2 === 0 ? `session-${i}` : `192.0.${i >> 8}.${i & 255}`,
);

function endpoints(count: number, weight = 1, from = 0): BalancerEndpoint[] {
  return Array.from({ length: count }, (_, i) => ({ address: `10.1.${from + i}.7:8080`, weight }));
}

function liveState(down: Iterable<number> = []) {
  const unavailable = new Set(down);
  const state: EndpointState = { isAvailable: (index) => !unavailable.has(index), activeRequests: () => 0 };
  return { state, unavailable };
}

function ring(pool: readonly BalancerEndpoint[], state = liveState().state): Balancer {
  return createConsistentHashBalancer(pool, state);
}

/** The address each key goes to: indexes change when a pool changes, addresses do not. */
function assignments(pool: readonly BalancerEndpoint[], balancer = ring(pool)): string[] {
  return KEYS.map((hashKey) => pool[balancer.pick({ hashKey })]!.address);
}

function countsByAddress(addresses: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const address of addresses) counts.set(address, (counts.get(address) ?? 0) + 1);
  return counts;
}

describe("hash32", () => {
  it("is FNV-1a underneath, matching its published test vectors", () => {
    expect(fnv1a32("")).toBe(0x811c9dc5);
    expect(fnv1a32("a")).toBe(0xe40c292c);
    expect(fnv1a32("foobar")).toBe(0xbf9cf968);
  });

  it("returns unsigned 32-bit integers that differ for near-identical inputs", () => {
    const hashes = ["10.1.0.7:8080#0", "10.1.0.7:8080#1", "10.1.1.7:8080#0"].map(hash32);
    for (const hash of hashes) expect(hash >>> 0).toBe(hash);
    expect(new Set(hashes).size).toBe(3);
    // Avalanche: one changed character flips about half of the 32 bits.
    const flipped = (hashes[0]! ^ hashes[1]!).toString(2).replaceAll("0", "").length;
    expect(flipped).toBeGreaterThan(8);
  });
});

describe("consistent hash", () => {
  it("sends the same key to the same endpoint every time", () => {
    const balancer = ring(endpoints(10));
    const first = KEYS.slice(0, 500).map((hashKey) => balancer.pick({ hashKey }));
    for (let round = 0; round < 3; round++) {
      expect(KEYS.slice(0, 500).map((hashKey) => balancer.pick({ hashKey }))).toEqual(first);
    }
  });

  it("places 160 points per weight unit at hash32(address#replica), as every agent must", () => {
    // Agents of one fleet, even on different versions mid-rollout, must agree on the ring;
    // this pins it to its definition.
    const pool = [
      { address: "10.3.0.1:80", weight: 2 },
      { address: "10.3.0.2:80", weight: 1 },
      { address: "10.3.0.3:80", weight: 1 },
    ];
    const points = pool
      .flatMap((endpoint, owner) =>
        Array.from({ length: 160 * endpoint.weight }, (_, replica) => ({
          hash: hash32(`${endpoint.address}#${replica}`),
          owner,
        })),
      )
      .sort((a, b) => a.hash - b.hash);
    const reference = (key: string) => (points.find((p) => p.hash >= hash32(key)) ?? points[0]!).owner;
    const balancer = ring(pool);
    for (const hashKey of KEYS.slice(0, 2_000)) expect(balancer.pick({ hashKey })).toBe(reference(hashKey));
  });

  it("maps keys to the same addresses whatever the order of the endpoints", () => {
    const pool = endpoints(10);
    expect(assignments([...pool].reverse())).toEqual(assignments(pool));
  });

  it("spreads 10,000 keys within ±25% of the fair share over equal weights", () => {
    for (const count of [3, 10, 20]) {
      const counts = countsByAddress(assignments(endpoints(count)));
      expect(counts.size).toBe(count);
      const fair = KEYS.length / count;
      for (const keys of counts.values()) {
        expect(keys).toBeGreaterThan(fair * 0.75);
        expect(keys).toBeLessThan(fair * 1.25);
      }
    }
  });

  it("spreads keys in proportion to weight", () => {
    const pool = [1, 2, 3, 4].map((weight, i) => ({ address: `10.2.0.${i}:80`, weight: weight * 100 }));
    const counts = countsByAddress(assignments(pool));
    for (const endpoint of pool) {
      const fair = (KEYS.length * endpoint.weight) / 1_000;
      expect(counts.get(endpoint.address)).toBeGreaterThan(fair * 0.75);
      expect(counts.get(endpoint.address)).toBeLessThan(fair * 1.25);
    }
  });

  it("builds the same ring for equal weights of 1 and of 100", () => {
    expect(assignments(endpoints(5, 100))).toEqual(assignments(endpoints(5, 1)));
  });

  it("gives each endpoint of a large pool some keys, the ring being capped", () => {
    const pool = endpoints(400);
    const counts = countsByAddress(assignments(pool));
    expect(counts.size).toBeGreaterThan(390);
    const heavy = [{ address: "10.9.9.9:80", weight: 10_000 }, ...endpoints(2)];
    const heavyShare = countsByAddress(assignments(heavy)).get("10.9.9.9:80")! / KEYS.length;
    expect(heavyShare).toBeGreaterThan(0.99);
  });

  it("remaps only the removed endpoint's keys when one of N is removed (under 2/N)", () => {
    const count = 10;
    const pool = endpoints(count);
    const before = assignments(pool);
    const removed = pool[4]!.address;
    const after = assignments(pool.filter((endpoint) => endpoint.address !== removed));
    const moved = before.filter((address, k) => address !== after[k]);
    expect(moved.length / KEYS.length).toBeLessThan(2 / count);
    expect(new Set(moved)).toEqual(new Set([removed]));
  });

  it("remaps only keys that go to the new endpoint when one is added", () => {
    const count = 10;
    const pool = endpoints(count);
    const added = endpoints(1, 1, count)[0]!;
    const before = assignments(pool);
    const after = assignments([...pool, added]);
    const movedTo = after.filter((address, k) => address !== before[k]);
    expect(new Set(movedTo)).toEqual(new Set([added.address]));
    expect(movedTo.length / KEYS.length).toBeLessThan(2 / (count + 1));
  });

  it("sends an unavailable endpoint's keys where they would go without it, and back when it returns", () => {
    const pool = endpoints(8);
    const { state, unavailable } = liveState();
    const balancer = ring(pool, state);
    const healthy = assignments(pool, balancer);
    unavailable.add(3);
    const withoutIt = assignments(pool.filter((_, i) => i !== 3));
    expect(assignments(pool, balancer)).toEqual(withoutIt);
    unavailable.clear();
    expect(assignments(pool, balancer)).toEqual(healthy);
  });

  it("walks on to the next distinct endpoint when the owner was already tried", () => {
    const pool = endpoints(6);
    const { state, unavailable } = liveState();
    const balancer = ring(pool, state);
    for (const hashKey of KEYS.slice(0, 1_000)) {
      const owner = balancer.pick({ hashKey });
      const retry = balancer.pick({ hashKey, exclude: new Set([owner]) });
      expect(retry).not.toBe(owner);
      unavailable.add(owner);
      expect(balancer.pick({ hashKey })).toBe(retry);
      unavailable.clear();
    }
  });

  it("walks past several unavailable and excluded endpoints to the one left", () => {
    const balancer = ring(endpoints(30), liveState([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]).state);
    const exclude = new Set(Array.from({ length: 19 }, (_, i) => i + 10));
    for (const hashKey of KEYS.slice(0, 200)) expect(balancer.pick({ hashKey, exclude })).toBe(29);
  });

  it("falls back to round robin without a key, or with an empty one", () => {
    const balancer = createConsistentHashBalancer(endpoints(3), liveState().state, 0);
    expect(Array.from({ length: 6 }, () => balancer.pick())).toEqual([0, 1, 2, 0, 1, 2]);
    expect(Array.from({ length: 3 }, () => balancer.pick({ hashKey: "" }))).toEqual([0, 1, 2]);
  });
});
