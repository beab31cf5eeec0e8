/**
 * Which pool a request of a route with a traffic plan goes to. `compileTrafficPlan` runs once
 * per config, off the request path; `choosePool` runs per request and returns one of the
 * plan's precomputed choices, allocating nothing.
 *
 * The rules, in order:
 *
 * 1. Cohort routing, when configured and the request carries the key (a missing or empty
 *    header, cookie or client address falls through to 2):
 *    - `header` / `cookie`: the value, matched exactly (case-sensitive), is looked up in
 *      `mappings`; an unmapped value falls through to 2.
 *    - `hash_on` with `weights`: weighted rendezvous hashing of the key over the pools, so a
 *      key keeps its pool, each pool gets its share of the keys, and changing one weight moves
 *      only the keys that must move.
 * 2. The canary split: `random` (uniform in [0, 1)) below canary_weight / 100 goes to the
 *    canary pool, the rest to the stable pool. canary_weight defaults to 0: a canary pool
 *    without a weight is reached only through cohorts.
 *
 * The stable pool is `stable_pool`, or the route's own `pool` when the plan names none.
 *
 * While the canary is braked no request goes to the canary pool: the split sends everything
 * to stable, a mapping that names the canary pool sends its requests to the stable pool, and
 * hashing leaves the canary pool out, so its keys go where they would without it (and come
 * back when the brake is released). A safety brake that let cohorts keep reaching a canary
 * it found broken would protect only part of the traffic.
 *
 * A choice's variant says which counters the request feeds: "canary" exactly when the pool
 * is the canary pool (by split or cohort), "stable" when it is the stable pool, and "cohort"
 * for any other pool a cohort names. For the safety brake everything that is not "canary"
 * counts as stable: `variant === "canary" ? "canary" : "stable"`.
 */
import { canonicalJson, type TrafficPlan } from "../../services/config/index.js";
import { hash32 } from "../upstream/balancers/consistent-hash.js";
import { createRendezvousTable, pickRendezvous, type RendezvousTable } from "./rendezvous.js";

/** What choosePool reads from a request; header names are asked for in lowercase. */
export interface RequestFacts {
  header(name: string): string | undefined;
  cookie(name: string): string | undefined;
  readonly clientIp: string | undefined;
}

export type TrafficVariant = "stable" | "canary" | "cohort";

export interface PoolChoice {
  readonly pool: string;
  readonly variant: TrafficVariant;
}

/** safety_brake with its defaults applied. */
export interface BrakeSettings {
  /** Percentage points by which the canary's error rate may exceed stable's. */
  readonly marginPoints: number;
  readonly windowMs: number;
  /** Canary requests the window needs before the brake may latch. */
  readonly minRequests: number;
}

export const BRAKE_DEFAULTS = { windowMs: 60_000, minRequests: 20 } as const;

interface KeySource {
  readonly from: "header" | "cookie" | "client_ip";
  readonly name: string;
}

type CohortRule =
  | { readonly by: "mapping"; readonly key: KeySource; readonly choices: ReadonlyMap<string, PoolChoice> }
  | {
      readonly by: "hash";
      readonly key: KeySource;
      readonly table: RendezvousTable;
      /** Choices in table order. */
      readonly choices: readonly PoolChoice[];
      /** The canary pool's index in the table, left out while braked; -1 when absent. */
      readonly canaryIndex: number;
    };

export interface CompiledTrafficPlan {
  readonly route: string;
  /** Equal for two compilations exactly when they route and brake the same way. */
  readonly planKey: string;
  /** Every pool a request can be sent to: stable, canary and the cohorts'. */
  readonly pools: readonly string[];
  readonly stablePool: string;
  readonly canaryPool: string | undefined;
  /** canary_weight as configured, 0–100; 0 when left out. */
  readonly canaryWeight: number;
  readonly brake: BrakeSettings | undefined;
  readonly stable: PoolChoice;
  readonly canary: PoolChoice | undefined;
  readonly canaryFraction: number;
  readonly cohort: CohortRule | undefined;
}

/**
 * `routePool` is the route's own `pool`, if it has one. The config must be valid (every pool
 * named exists; a route without a pool has a stable_pool).
 *
 * The plan key covers everything but overload_protection, which another module applies:
 * retuning the concurrency limit is not a new canary and must not reset its counters or
 * release its brake.
 */
export function compileTrafficPlan(plan: TrafficPlan, routePool: string | undefined): CompiledTrafficPlan {
  const stablePool = plan.stable_pool ?? routePool;
  if (stablePool === undefined) {
    throw new Error(`traffic plan for route "${plan.route}" has no stable_pool and the route no pool`);
  }
  const choices = new Map<string, PoolChoice>();
  const choiceFor = (pool: string): PoolChoice => {
    let choice = choices.get(pool);
    if (!choice) {
      const variant = pool === plan.canary_pool ? "canary" : pool === stablePool ? "stable" : "cohort";
      choice = Object.freeze({ pool, variant });
      choices.set(pool, choice);
    }
    return choice;
  };
  const canaryWeight = plan.canary_weight ?? 0;
  const stable = choiceFor(stablePool);
  const canary = plan.canary_pool === undefined ? undefined : choiceFor(plan.canary_pool);
  const cohort = compileCohorts(plan, choiceFor);
  return {
    route: plan.route,
    pools: [...choices.keys()],
    planKey: canonicalJson({ ...plan, overload_protection: undefined, stable_pool: stablePool }),
    stablePool,
    canaryPool: plan.canary_pool,
    canaryWeight,
    brake: plan.safety_brake && {
      marginPoints: plan.safety_brake.error_rate_margin,
      windowMs: plan.safety_brake.window ?? BRAKE_DEFAULTS.windowMs,
      minRequests: plan.safety_brake.min_requests ?? BRAKE_DEFAULTS.minRequests,
    },
    stable,
    canary,
    canaryFraction: canaryWeight / 100,
    cohort,
  };
}

function compileCohorts(plan: TrafficPlan, choiceFor: (pool: string) => PoolChoice): CohortRule | undefined {
  const cohorts = plan.cohort_routing;
  if (cohorts === undefined) return undefined;
  if (cohorts.hash_on !== undefined) {
    if (cohorts.weights === undefined) return undefined;
    const table = createRendezvousTable(
      Object.entries(cohorts.weights).map(([id, weight]) => ({ id, weight })),
    );
    return {
      by: "hash",
      key: keySource(cohorts.hash_on),
      table,
      choices: table.ids.map(choiceFor),
      canaryIndex: plan.canary_pool === undefined ? -1 : table.ids.indexOf(plan.canary_pool),
    };
  }
  const key: KeySource | undefined =
    cohorts.header !== undefined
      ? { from: "header", name: cohorts.header.toLowerCase() }
      : cohorts.cookie !== undefined
        ? { from: "cookie", name: cohorts.cookie }
        : undefined;
  if (key === undefined || cohorts.mappings === undefined) return undefined;
  const mapped = new Map<string, PoolChoice>();
  for (const [value, pool] of Object.entries(cohorts.mappings)) mapped.set(value, choiceFor(pool));
  return { by: "mapping", key, choices: mapped };
}

/** hash_on as the schema normalizes it: client_ip, header:name (lowercased) or cookie:NAME. */
function keySource(hashOn: string): KeySource {
  if (hashOn === "client_ip") return { from: "client_ip", name: "" };
  const colon = hashOn.indexOf(":");
  const from = hashOn.slice(0, colon);
  const name = hashOn.slice(colon + 1);
  return from === "header" ? { from: "header", name: name.toLowerCase() } : { from: "cookie", name };
}

/**
 * The pool for one request. `braked` is the route's CanaryState.braked; `random` a uniform
 * draw in [0, 1) (Math.random() in production). Returns one of the plan's own choice objects.
 */
export function choosePool(
  plan: CompiledTrafficPlan,
  request: RequestFacts,
  braked: boolean,
  random: number,
): PoolChoice {
  const cohort = plan.cohort;
  if (cohort !== undefined) {
    const key = readKey(cohort.key, request);
    if (key !== undefined && key !== "") {
      if (cohort.by === "mapping") {
        const choice = cohort.choices.get(key);
        if (choice !== undefined) return braked && choice === plan.canary ? plan.stable : choice;
      } else {
        const index = pickRendezvous(cohort.table, hash32(key), braked ? cohort.canaryIndex : -1);
        if (index !== -1) return cohort.choices[index]!;
      }
    }
  }
  return !braked && plan.canary !== undefined && random < plan.canaryFraction ? plan.canary : plan.stable;
}

function readKey(source: KeySource, request: RequestFacts): string | undefined {
  switch (source.from) {
    case "header":
      return request.header(source.name);
    case "cookie":
      return request.cookie(source.name);
    case "client_ip":
      return request.clientIp;
  }
}
