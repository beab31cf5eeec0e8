import { describe, expect, it } from "vitest";
import { TrafficPlanSchema } from "../../services/config/index.js";
import { CanaryRegistry, type CanaryState } from "./canary-registry.js";
import { compileTrafficPlan } from "./traffic-plan.js";

const START = Date.UTC(2025, 0, 1, 12, 0, 0);

function plan(fields: Record<string, unknown> = {}, route = "api") {
  return compileTrafficPlan(
    TrafficPlanSchema.parse({
      route,
      stable_pool: "v1",
      canary_pool: "v2",
      canary_weight: 10,
      safety_brake: { error_rate_margin: 5 },
      ...fields,
    }),
    undefined,
  );
}

function setup() {
  let time = START;
  const brakes: Array<[string, string]> = [];
  const registry = new CanaryRegistry({
    now: () => time,
    onBrake: (route, reason) => brakes.push([route, reason]),
  });
  return {
    registry,
    brakes,
    advance: (ms: number) => {
      time += ms;
    },
  };
}

/** Records `count` requests of one variant, `failures` of them failed, spread evenly. */
function record(state: CanaryState, variant: "stable" | "canary", count: number, failures = 0): void {
  for (let i = 0; i < count; i++) {
    state.record(variant, Math.floor(((i + 1) * failures) / count) > Math.floor((i * failures) / count));
  }
}

describe("the safety brake", () => {
  it("latches on a canary failing more than the margin above stable, and reports it once", () => {
    const { registry, brakes } = setup();
    const state = registry.stateFor("api", plan());
    record(state, "stable", 100, 1);
    record(state, "canary", 14);
    expect(state.braked).toBe(false);
    record(state, "canary", 6, 6);
    expect(state.braked).toBe(true);
    const reason = "canary error rate 30.0% exceeds stable 1.0% by more than 5 points over 60s (20 requests)";
    expect(brakes).toEqual([["api", reason]]);
    record(state, "canary", 10, 10);
    expect(brakes).toHaveLength(1);
    expect(state.braked).toBe(true);
  });

  it("does not latch on a canary within the margin, however many requests it serves", () => {
    const { registry, brakes } = setup();
    const state = registry.stateFor("api", plan());
    for (let round = 0; round < 50; round++) {
      record(state, "stable", 100, 2);
      record(state, "canary", 100, 6);
    }
    expect(state.braked).toBe(false);
    expect(brakes).toEqual([]);
  });

  it("waits for min_requests canary requests in the window", () => {
    const { registry } = setup();
    const state = registry.stateFor("api", plan());
    record(state, "canary", 19, 19);
    expect(state.braked).toBe(false);
    state.record("canary", false);
    expect(state.braked).toBe(true);
    const strict = registry.stateFor(
      "other",
      plan({ safety_brake: { error_rate_margin: 5, min_requests: 50 } }),
    );
    record(strict, "canary", 49, 49);
    expect(strict.braked).toBe(false);
    strict.record("canary", true);
    expect(strict.braked).toBe(true);
  });

  it("compares with a 0% baseline when stable served nothing in the window", () => {
    const { registry } = setup();
    const state = registry.stateFor("api", plan({ canary_weight: 100 }));
    record(state, "canary", 20, 2);
    expect(state.braked).toBe(true);
  });

  it("forgets requests older than the window", () => {
    const { registry, advance } = setup();
    const state = registry.stateFor("api", plan());
    record(state, "canary", 15, 15);
    advance(61_000);
    record(state, "canary", 5, 5);
    expect(state.braked).toBe(false);
    record(state, "canary", 14);
    // 34 requests since the plan, 19 in the window: still short of 20.
    expect(state.braked).toBe(false);
    state.record("canary", true);
    expect(state.braked).toBe(true);
  });

  it("still counts requests that are half a window old", () => {
    const { registry, advance } = setup();
    const state = registry.stateFor("api", plan({ safety_brake: { error_rate_margin: 5, window: "10s" } }));
    record(state, "canary", 15, 15);
    advance(5_000);
    record(state, "canary", 5, 5);
    expect(state.braked).toBe(true);
  });

  it("forgets stable failures with the window too", () => {
    const { registry, advance } = setup();
    const state = registry.stateFor("api", plan());
    record(state, "stable", 100, 50);
    record(state, "canary", 20, 10);
    expect(state.braked).toBe(false);
    advance(60_000);
    // Against the old stable failures (45%) a 30% canary would look fine.
    record(state, "stable", 10);
    record(state, "canary", 20, 6);
    expect(state.braked).toBe(true);
  });

  it("never latches without a safety_brake", () => {
    const { registry, brakes } = setup();
    const state = registry.stateFor("api", plan({ safety_brake: undefined }));
    record(state, "canary", 1000, 1000);
    expect(state.braked).toBe(false);
    expect(brakes).toEqual([]);
    expect(registry.list()[0]?.canary_error_percent).toBe(100);
  });
});

describe("CanaryRegistry across config swaps", () => {
  it("keeps a route's state, brake included, while its plan is unchanged", () => {
    const { registry } = setup();
    const state = registry.stateFor("api", plan());
    record(state, "canary", 20, 20);
    const swapped = registry.stateFor("api", plan());
    expect(swapped).toBe(state);
    expect(swapped.braked).toBe(true);
    expect(registry.stateFor("api", plan({ overload_protection: { max_concurrent: 10 } }))).toBe(state);
  });

  it("starts over, brake released and counters at zero, when the route's plan changes", () => {
    const { registry, brakes } = setup();
    const old = registry.stateFor("api", plan());
    record(old, "stable", 10);
    record(old, "canary", 20, 20);
    const fresh = registry.stateFor("api", plan({ canary_weight: 5 }));
    expect(fresh).not.toBe(old);
    expect(fresh.braked).toBe(false);
    expect(registry.list()).toMatchObject([
      { canary_weight: 5, stable_requests: 0, canary_requests: 0, braked: false },
    ]);
    // Late requests of the old snapshot do not count towards the new plan.
    record(old, "canary", 5, 5);
    expect(registry.list()[0]?.canary_requests).toBe(0);
    record(fresh, "canary", 20, 20);
    expect(fresh.braked).toBe(true);
    expect(brakes).toHaveLength(2);
  });

  it("drops the states of routes no longer retained", () => {
    const { registry } = setup();
    const kept = registry.stateFor("api", plan());
    const dropped = registry.stateFor("web", plan({}, "web"));
    record(dropped, "canary", 20, 20);
    registry.retain(new Set(["api"]));
    expect(registry.list().map((row) => row.route)).toEqual(["api"]);
    expect(registry.stateFor("api", plan())).toBe(kept);
    expect(registry.stateFor("web", plan({}, "web")).braked).toBe(false);
  });
});

describe("CanaryRegistry.list", () => {
  it("gives one row per route with a canary, sorted by route, with totals since the plan", () => {
    const { registry, advance } = setup();
    const web = registry.stateFor("web", plan({ canary_weight: 25, safety_brake: undefined }, "web"));
    registry.stateFor(
      "cohorts",
      plan({ canary_pool: undefined, canary_weight: undefined, safety_brake: undefined }, "cohorts"),
    );
    const api = registry.stateFor("api", plan());
    record(api, "stable", 100, 1);
    advance(1_500);
    record(api, "canary", 14);
    record(api, "canary", 6, 6);
    record(api, "canary", 10, 10);
    record(web, "stable", 3, 1);
    expect(registry.list()).toEqual([
      {
        route: "api",
        stable_pool: "v1",
        canary_pool: "v2",
        canary_weight: 10,
        stable_requests: 100,
        canary_requests: 30,
        braked: true,
        brake_reason:
          "canary error rate 30.0% exceeds stable 1.0% by more than 5 points over 60s (20 requests)",
        braked_at: "2025-01-01T12:00:01.500Z",
        canary_error_percent: 53.33,
        stable_error_percent: 1,
      },
      {
        route: "web",
        stable_pool: "v1",
        canary_pool: "v2",
        canary_weight: 25,
        stable_requests: 3,
        canary_requests: 0,
        braked: false,
        canary_error_percent: 0,
        stable_error_percent: 33.33,
      },
    ]);
  });
});
