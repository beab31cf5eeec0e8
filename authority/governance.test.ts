import { describe, expect, it } from "vitest";
import type { DynamicConfig, Route } from "../services/config/index.js";
import { checkGovernance, DEFAULT_GOVERNANCE, type GovernanceSettings } from "./governance.js";

// Typed configs rather than validated ones: validation itself already refuses some of what
// governance must still catch on its own (a route without a pool).
const config = (sections: Omit<DynamicConfig, "pools">): DynamicConfig => ({
  version: "v1",
  pools: [
    { id: "a", endpoints: [{ address: "10.0.0.1:80" }] },
    { id: "b", endpoints: [{ address: "10.0.0.2:80" }] },
  ],
  ...sections,
});

const route = (id: string, extra: Partial<Route> = {}): Route => ({
  id,
  path_prefix: `/${id}`,
  pool: "a",
  policy: { timeout: 5_000 },
  ...extra,
});

const only = (rule: keyof GovernanceSettings): GovernanceSettings => ({
  route_timeout_required: false,
  route_pool_required: false,
  max_routes: false,
  require_tls_kept: false,
  [rule]: DEFAULT_GOVERNANCE[rule],
});

describe("governance", () => {
  it("accepts a config that follows every default rule", () => {
    expect(
      checkGovernance(config({ routes: [route("r1"), route("r2")] }), undefined, DEFAULT_GOVERNANCE),
    ).toEqual([]);
  });

  it("requires a timeout on every route, inline or through its policy_ref", () => {
    const issues = checkGovernance(
      config({
        policies: [
          { id: "with-timeout", timeout: 3_000 },
          { id: "without", retries: { max_attempts: 2 } },
        ],
        routes: [
          route("inline"),
          route("by-ref", { policy: undefined, policy_ref: "with-timeout" }),
          route("none", { policy: undefined }),
          route("ref-without", { policy: undefined, policy_ref: "without" }),
        ],
      }),
      undefined,
      only("route_timeout_required"),
    );
    expect(issues.map((i) => [i.code, i.path])).toEqual([
      ["route_timeout_required", "routes[2].policy.timeout"],
      ["route_timeout_required", "routes[3].policy.timeout"],
    ]);
    expect(issues[0]?.message).toContain('"none"');
  });

  it("requires a pool on every route, or a traffic plan's stable_pool", () => {
    const issues = checkGovernance(
      config({
        routes: [route("pooled"), route("planned", { pool: undefined }), route("lost", { pool: undefined })],
        traffic_management: [{ route: "planned", stable_pool: "a", canary_pool: "b", canary_weight: 10 }],
      }),
      undefined,
      only("route_pool_required"),
    );
    expect(issues.map((i) => [i.code, i.path])).toEqual([["route_pool_required", "routes[2].pool"]]);
  });

  it("caps the number of routes", () => {
    const routes = Array.from({ length: 4 }, (_, i) => route(`r${i}`));
    const settings = { ...only("max_routes"), max_routes: 3 };
    expect(checkGovernance(config({ routes }), undefined, settings)).toEqual([
      expect.objectContaining({ code: "max_routes", path: "routes" }),
    ]);
    expect(checkGovernance(config({ routes: routes.slice(0, 3) }), undefined, settings)).toEqual([]);
    expect(DEFAULT_GOVERNANCE.max_routes).toBe(5_000);
  });

  it("keeps require_tls on a route that had it, wherever it was stated", () => {
    const previous = config({
      policies: [{ id: "secure", timeout: 1_000, require_tls: true }],
      routes: [
        route("on-route", { require_tls: true }),
        route("in-policy", { policy: { timeout: 1_000, require_tls: true } }),
        route("by-ref", { policy: undefined, policy_ref: "secure" }),
        route("kept", { require_tls: true }),
        route("plain"),
      ],
    });
    const next = config({
      policies: [{ id: "secure", timeout: 1_000 }],
      routes: [
        route("plain"),
        route("kept", { policy: { timeout: 1_000, require_tls: true } }),
        route("on-route"),
        route("in-policy"),
        route("by-ref", { policy: undefined, policy_ref: "secure" }),
      ],
    });
    const issues = checkGovernance(next, previous, only("require_tls_kept"));
    expect(issues.map((i) => [i.code, i.path])).toEqual([
      ["require_tls_kept", "routes[2].require_tls"],
      ["require_tls_kept", "routes[3].require_tls"],
      ["require_tls_kept", "routes[4].require_tls"],
    ]);
  });

  it("lets a route that required TLS be removed, and has nothing to keep on a fleet's first bundle", () => {
    const previous = config({ routes: [route("gone", { require_tls: true }), route("plain")] });
    const next = config({ routes: [route("plain")] });
    expect(checkGovernance(next, previous, DEFAULT_GOVERNANCE)).toEqual([]);
    expect(checkGovernance(previous, undefined, DEFAULT_GOVERNANCE)).toEqual([]);
  });

  it("checks nothing that is switched off", () => {
    const off: GovernanceSettings = {
      route_timeout_required: false,
      route_pool_required: false,
      max_routes: false,
      require_tls_kept: false,
    };
    const previous = config({ routes: [route("r", { require_tls: true })] });
    const next = config({ routes: [{ id: "r", path: "/r" }] });
    expect(checkGovernance(next, previous, off)).toEqual([]);
    expect(
      checkGovernance(next, previous, DEFAULT_GOVERNANCE)
        .map((i) => i.code)
        .sort(),
    ).toEqual(["require_tls_kept", "route_pool_required", "route_timeout_required"]);
  });
});
