import { describe, expect, it } from "vitest";
import { TrafficPlanSchema } from "../../services/config/index.js";
import { choosePool, compileTrafficPlan, type PoolChoice, type RequestFacts } from "./traffic-plan.js";

function plan(fields: Record<string, unknown>, routePool?: string) {
  return compileTrafficPlan(TrafficPlanSchema.parse({ route: "api", ...fields }), routePool);
}

interface FactsInput {
  readonly headers?: Record<string, string>;
  readonly cookies?: Record<string, string>;
  readonly ip?: string;
}

function facts({ headers = {}, cookies = {}, ip }: FactsInput = {}): RequestFacts {
  return {
    header: (name) => headers[name],
    cookie: (name) => cookies[name],
    clientIp: ip,
  };
}

/** mulberry32: a seeded uniform source, so the split test is reproducible. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const NO_FACTS = facts();
const KEYS = Array.from({ length: 10_000 }, (_, i) => `user-${i}`);

describe("the canary split", () => {
  const canary = { stable_pool: "v1", canary_pool: "v2", canary_weight: 10 };

  it("sends canary_weight percent of 10,000 draws to the canary pool", () => {
    const compiled = plan(canary);
    const random = seeded(42);
    let toCanary = 0;
    for (let i = 0; i < 10_000; i++) {
      const choice = choosePool(compiled, NO_FACTS, false, random());
      if (choice.pool === "v2") toCanary++;
      else expect(choice.pool).toBe("v1");
    }
    // Binomial(10,000, 0.1) has a standard deviation of 30: ±150 is five of them.
    expect(toCanary).toBeGreaterThan(850);
    expect(toCanary).toBeLessThan(1150);
  });

  it("compares the draw with the weight: below goes to the canary, at or above to stable", () => {
    const compiled = plan(canary);
    expect(choosePool(compiled, NO_FACTS, false, 0).variant).toBe("canary");
    expect(choosePool(compiled, NO_FACTS, false, 0.0999).variant).toBe("canary");
    expect(choosePool(compiled, NO_FACTS, false, 0.1).variant).toBe("stable");
    expect(choosePool(plan({ ...canary, canary_weight: 100 }), NO_FACTS, false, 0.9999).pool).toBe("v2");
  });

  it("sends nothing to a canary without a weight, or while braked", () => {
    const unweighted = plan({ stable_pool: "v1", canary_pool: "v2" });
    expect(unweighted.canaryWeight).toBe(0);
    expect(choosePool(unweighted, NO_FACTS, false, 0).pool).toBe("v1");
    expect(choosePool(plan({ ...canary, canary_weight: 100 }), NO_FACTS, true, 0).pool).toBe("v1");
  });

  it("returns the plan's own choice objects, so a request allocates none", () => {
    const compiled = plan(canary);
    expect(choosePool(compiled, NO_FACTS, false, 0)).toBe(compiled.canary);
    expect(choosePool(compiled, NO_FACTS, false, 0.5)).toBe(compiled.stable);
    expect(choosePool(compiled, NO_FACTS, false, 0.7)).toBe(choosePool(compiled, NO_FACTS, true, 0));
    expect(Object.isFrozen(compiled.stable)).toBe(true);
  });

  it("takes the stable pool from the route when the plan names none", () => {
    const compiled = plan({ cohort_routing: { header: "x-cohort", mappings: { beta: "v3" } } }, "v1");
    expect(compiled.stablePool).toBe("v1");
    expect(choosePool(compiled, NO_FACTS, false, 0)).toEqual({ pool: "v1", variant: "stable" });
    expect(plan({ stable_pool: "v0" }, "v1").stablePool).toBe("v0");
    expect(() => plan({})).toThrow(/no stable_pool/);
  });

  it("applies safety_brake defaults of 60 s and 20 requests", () => {
    expect(plan({ ...canary, safety_brake: { error_rate_margin: 5 } }).brake).toEqual({
      marginPoints: 5,
      windowMs: 60_000,
      minRequests: 20,
    });
    expect(
      plan({ ...canary, safety_brake: { error_rate_margin: "2.5%", window: "30s", min_requests: 50 } }).brake,
    ).toEqual({ marginPoints: 2.5, windowMs: 30_000, minRequests: 50 });
    expect(plan(canary).brake).toBeUndefined();
  });
});

describe("cohort routing by header or cookie", () => {
  const byHeader = plan({
    stable_pool: "v1",
    canary_pool: "v2",
    canary_weight: 50,
    cohort_routing: { header: "X-Cohort", mappings: { beta: "v2", stable: "v1", legacy: "v0" } },
  });

  it("sends a mapped value to its pool, whatever the draw", () => {
    for (const random of [0, 0.49, 0.99]) {
      const choose = (value: string) =>
        choosePool(byHeader, facts({ headers: { "x-cohort": value } }), false, random);
      expect(choose("beta")).toEqual({ pool: "v2", variant: "canary" });
      expect(choose("stable")).toEqual({ pool: "v1", variant: "stable" });
      expect(choose("legacy")).toEqual({ pool: "v0", variant: "cohort" });
    }
  });

  it("labels a choice canary exactly when its pool is the canary pool", () => {
    const seen: PoolChoice[] = [];
    for (const value of ["beta", "stable", "legacy", "other"]) {
      for (const random of [0, 0.9]) {
        seen.push(choosePool(byHeader, facts({ headers: { "x-cohort": value } }), false, random));
      }
    }
    expect(seen.some((choice) => choice.variant === "cohort")).toBe(true);
    for (const choice of seen) expect(choice.variant === "canary").toBe(choice.pool === "v2");
  });

  it("falls through to the split for an unmapped, empty or missing value", () => {
    for (const request of [
      facts({ headers: { "x-cohort": "gamma" } }),
      facts({ headers: { "x-cohort": "" } }),
      NO_FACTS,
    ]) {
      expect(choosePool(byHeader, request, false, 0.2).pool).toBe("v2");
      expect(choosePool(byHeader, request, false, 0.7).pool).toBe("v1");
    }
  });

  it("matches values exactly, case included", () => {
    expect(choosePool(byHeader, facts({ headers: { "x-cohort": "Beta" } }), false, 0.7).pool).toBe("v1");
  });

  it("sends a cohort mapped to the canary to the stable pool while braked, and other cohorts on", () => {
    const choose = (value: string) =>
      choosePool(byHeader, facts({ headers: { "x-cohort": value } }), true, 0);
    expect(choose("beta")).toBe(byHeader.stable);
    expect(choose("legacy")).toEqual({ pool: "v0", variant: "cohort" });
  });

  it("reads the named cookie, its name case-sensitive", () => {
    const byCookie = plan({
      stable_pool: "v1",
      canary_pool: "v2",
      cohort_routing: { cookie: "Cohort", mappings: { beta: "v2" } },
    });
    expect(choosePool(byCookie, facts({ cookies: { Cohort: "beta" } }), false, 0.5).pool).toBe("v2");
    expect(choosePool(byCookie, facts({ cookies: { cohort: "beta" } }), false, 0.5).pool).toBe("v1");
    expect(choosePool(byCookie, facts({ headers: { cohort: "beta" } }), false, 0.5).pool).toBe("v1");
  });
});

describe("cohort routing by consistent hash", () => {
  const hashed = (weights: Record<string, number>, hashOn = "header:X-User") =>
    plan({ stable_pool: "v1", canary_pool: "v2", cohort_routing: { hash_on: hashOn, weights } });

  function assign(compiled: ReturnType<typeof hashed>, braked = false): string[] {
    return KEYS.map((key) => choosePool(compiled, facts({ headers: { "x-user": key } }), braked, 0).pool);
  }

  function shares(pools: readonly string[]): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const pool of pools) counts[pool] = (counts[pool] ?? 0) + 1;
    return counts;
  }

  it("keeps a key on one pool, whatever the draw and the order the weights are written in", () => {
    const first = assign(hashed({ v1: 80, v2: 10, v3: 10 }));
    expect(assign(hashed({ v3: 10, v2: 10, v1: 80 }))).toEqual(first);
    const compiled = hashed({ v1: 80, v2: 10, v3: 10 });
    for (const [i, key] of KEYS.slice(0, 200).entries()) {
      expect(choosePool(compiled, facts({ headers: { "x-user": key } }), false, 0.999).pool).toBe(first[i]);
    }
  });

  it("gives each pool its share of the keys", () => {
    const counts = shares(assign(hashed({ v1: 70, v2: 20, v3: 10 })));
    // Standard deviations are 46, 40 and 30 keys: ±250 is five or more of each.
    expect(counts.v1).toBeGreaterThan(6750);
    expect(counts.v1).toBeLessThan(7250);
    expect(counts.v2).toBeGreaterThan(1750);
    expect(counts.v2).toBeLessThan(2250);
    expect(counts.v3).toBeGreaterThan(750);
    expect(counts.v3).toBeLessThan(1250);
  });

  it("moves only keys to a pool whose weight grew, about as many as its share grew", () => {
    const before = assign(hashed({ v1: 70, v2: 20, v3: 10 }));
    const after = assign(hashed({ v1: 70, v2: 20, v3: 30 }));
    let moved = 0;
    for (let i = 0; i < KEYS.length; i++) {
      if (before[i] === after[i]) continue;
      moved++;
      expect(after[i]).toBe("v3");
    }
    // v3's share goes from 10% to 25%: 1,500 of 10,000 keys must move, and no more.
    expect(moved).toBeGreaterThan(1300);
    expect(moved).toBeLessThan(1700);
  });

  it("moves only keys from a pool whose weight shrank", () => {
    const before = assign(hashed({ v1: 50, v2: 20, v3: 30 }));
    const after = assign(hashed({ v1: 10, v2: 20, v3: 30 }));
    let moved = 0;
    for (let i = 0; i < KEYS.length; i++) {
      if (before[i] === after[i]) continue;
      moved++;
      expect(before[i]).toBe("v1");
    }
    // v1's share goes from 50% to 1/6: a third of the keys move.
    expect(moved).toBeGreaterThan(3100);
    expect(moved).toBeLessThan(3570);
  });

  it("labels keys by the pool they land on", () => {
    const compiled = hashed({ v1: 50, v2: 25, v3: 25 });
    const choices = KEYS.slice(0, 300).map((key) =>
      choosePool(compiled, facts({ headers: { "x-user": key } }), false, 0),
    );
    expect(new Set(choices.map((choice) => choice.variant))).toEqual(new Set(["stable", "canary", "cohort"]));
    for (const choice of choices) expect(choice.variant === "canary").toBe(choice.pool === "v2");
  });

  it("while braked sends the canary's keys elsewhere and only those, and back when released", () => {
    const compiled = hashed({ v1: 50, v2: 25, v3: 25 });
    const open = assign(compiled);
    const braked = assign(compiled, true);
    expect(braked).not.toContain("v2");
    for (let i = 0; i < KEYS.length; i++) if (open[i] !== "v2") expect(braked[i]).toBe(open[i]);
    expect(assign(compiled)).toEqual(open);
    const onlyCanary = hashed({ v2: 1 });
    expect(choosePool(onlyCanary, facts({ headers: { "x-user": "u" } }), true, 0)).toBe(onlyCanary.stable);
  });

  it("hashes the client address or a cookie, and falls through to the split without a key", () => {
    const byIp = plan({
      stable_pool: "v1",
      canary_pool: "v2",
      canary_weight: 100,
      cohort_routing: { hash_on: "client_ip", weights: { v3: 1 } },
    });
    expect(choosePool(byIp, facts({ ip: "192.0.2.7" }), false, 0).pool).toBe("v3");
    expect(choosePool(byIp, NO_FACTS, false, 0).pool).toBe("v2");
    const byCookie = hashed({ v3: 1 }, "cookie:session");
    expect(choosePool(byCookie, facts({ cookies: { session: "s1" } }), false, 0).pool).toBe("v3");
    expect(choosePool(byCookie, facts({ cookies: { session: "" } }), false, 0).pool).toBe("v1");
  });
});

describe("planKey", () => {
  const base = {
    stable_pool: "v1",
    canary_pool: "v2",
    canary_weight: 10,
    safety_brake: { error_rate_margin: 5 },
    cohort_routing: { header: "x-cohort", mappings: { a: "v1", b: "v2" } },
  };

  it("is the same for the same plan however it is written", () => {
    expect(
      plan({
        cohort_routing: { mappings: { b: "v2", a: "v1" }, header: "X-Cohort" },
        safety_brake: { error_rate_margin: "5%" },
        canary_weight: "10%",
        canary_pool: "v2",
        stable_pool: "v1",
      }).planKey,
    ).toBe(plan(base).planKey);
  });

  it("changes with anything that routes or brakes differently", () => {
    const key = plan(base).planKey;
    expect(plan({ ...base, canary_weight: 11 }).planKey).not.toBe(key);
    expect(plan({ ...base, safety_brake: { error_rate_margin: 5, min_requests: 21 } }).planKey).not.toBe(key);
    expect(plan({ ...base, cohort_routing: { header: "x-cohort", mappings: { a: "v1" } } }).planKey).not.toBe(
      key,
    );
    expect(plan({ ...base, route: "other" }).planKey).not.toBe(key);
  });

  it("follows the route's pool when that is the stable pool", () => {
    const { stable_pool: _, ...withoutStable } = base;
    expect(plan(withoutStable, "v1").planKey).toBe(plan(base).planKey);
    expect(plan(withoutStable, "v0").planKey).not.toBe(plan(withoutStable, "v1").planKey);
  });

  it("ignores overload_protection, which is not a new canary", () => {
    expect(plan({ ...base, overload_protection: { max_concurrent: 100 } }).planKey).toBe(plan(base).planKey);
  });
});
