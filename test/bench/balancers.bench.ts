/**
 * Cost of one pick for each balancer, with 3 and with 100 endpoints, all healthy. Balancers
 * run on every request; there is no goal here, only figures to compare.
 *
 * The baseline, measured in the same run through the same call site, is a bare `i++ % n`
 * balancer: the loop, the call and the modulo that no balancer can skip. Ratios against it
 * stay comparable across noisy machines. One call site serves every balancer, as in the
 * proxy, so the figures include its polymorphic dispatch.
 *
 *   npm run bench -- balancers
 */
import { performance } from "node:perf_hooks";
import {
  type Balancer,
  type BalancerEndpoint,
  type BalancerKind,
  createBalancer,
  type EndpointState,
  type PickOptions,
} from "../../agent/upstream/balancers/balancer.js";

const SIZES = [3, 100] as const;
const KINDS: readonly BalancerKind[] = [
  "round_robin",
  "weighted_round_robin",
  "least_request",
  "consistent_hash",
];
const PICKS = 1_000_000;
const ROUNDS = 9;
/** Distinct hash keys cycled through, so consistent_hash hashes real strings and lookups vary. */
const KEY_COUNT = 1_024;

interface Case {
  readonly name: string;
  readonly size: number;
  readonly balancer: Balancer;
  readonly options: readonly PickOptions[];
  readonly samples: number[];
}

class ModuloBalancer implements Balancer {
  readonly #count: number;
  #next = 0;

  constructor(count: number) {
    this.#count = count;
  }

  pick(): number {
    return this.#next++ % this.#count;
  }
}

/** Health and load as registries keep them: typed arrays indexed by endpoint. */
function stateOf(size: number): EndpointState {
  const up = new Uint8Array(size).fill(1);
  const active = Int32Array.from({ length: size }, (_, i) => (i * 7) % 5);
  return { isAvailable: (index) => up[index] === 1, activeRequests: (index) => active[index]! };
}

/** Weights 1..4 rather than all equal, so weighted paths do their real work. */
function endpointsOf(size: number): BalancerEndpoint[] {
  return Array.from({ length: size }, (_, i) => ({
    address: `10.0.${i >> 8}.${i & 255}:8080`,
    weight: 1 + (i % 4),
  }));
}

function optionsOf(kind: BalancerKind | "baseline"): PickOptions[] {
  return Array.from({ length: KEY_COUNT }, (_, i) =>
    kind === "consistent_hash" ? { hashKey: `203.0.${i >> 8}.${i & 255}` } : {},
  );
}

function makeCases(): Case[] {
  const cases: Case[] = [];
  for (const size of SIZES) {
    const baseline = new ModuloBalancer(size);
    cases.push({
      name: "baseline i++ % n",
      size,
      balancer: baseline,
      options: optionsOf("baseline"),
      samples: [],
    });
    for (const kind of KINDS) {
      const balancer = createBalancer(kind, endpointsOf(size), stateOf(size));
      cases.push({ name: kind, size, balancer, options: optionsOf(kind), samples: [] });
    }
  }
  return cases;
}

let sink = 0;

/** Nanoseconds per pick over PICKS picks. */
function measure(balancer: Balancer, options: readonly PickOptions[]): number {
  const start = performance.now();
  let sum = 0;
  for (let i = 0; i < PICKS; i++) sum += balancer.pick(options[i & (KEY_COUNT - 1)]);
  const elapsed = performance.now() - start;
  sink ^= sum;
  return (elapsed * 1e6) / PICKS;
}

function median(samples: readonly number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Milliseconds to build a consistent_hash ring, median of ROUNDS builds after a warm-up. */
function ringBuildMs(size: number): number {
  const samples: number[] = [];
  for (let round = 0; round <= ROUNDS; round++) {
    const start = performance.now();
    createBalancer("consistent_hash", endpointsOf(size), stateOf(size));
    if (round > 0) samples.push(performance.now() - start);
  }
  return median(samples);
}

const cases = makeCases();
for (const c of cases) measure(c.balancer, c.options); // warm-up: let the JIT settle first
// Rounds interleave the cases, so a slow phase of the machine colours all of them alike.
for (let round = 0; round < ROUNDS; round++) {
  for (const c of cases) c.samples.push(measure(c.balancer, c.options));
}

console.log(`balancer bench: ns per pick, median of ${ROUNDS} rounds of ${PICKS.toLocaleString("en")} picks`);
for (const size of SIZES) {
  const rows = cases.filter((c) => c.size === size);
  const base = median(rows[0]!.samples);
  console.log(`\n${size} endpoints`);
  for (const c of rows) {
    const ns = median(c.samples);
    console.log(
      `  ${c.name.padEnd(22)} ${ns.toFixed(1).padStart(7)} ns   ${(ns / base).toFixed(1).padStart(5)}x baseline`,
    );
  }
}
console.log(
  `\nconsistent_hash ring build (off the hot path): ${SIZES.map((size) => `${size} endpoints ${ringBuildMs(size).toFixed(2)} ms`).join(", ")}`,
);
if (sink === 0.5) console.log(sink); // keeps the picks observable, so none is optimised away
