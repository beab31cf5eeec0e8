/**
 * Governance: the fleet owner's rules a config must follow on top of being valid. Pure: a
 * canonical config (and the fleet's previous one) in, every violation with its path out, in
 * the same shape as validation issues so the API and the CLI report both alike.
 */
import { type DynamicConfig, formatPath, type Policy, type Route } from "../services/config/index.js";

export const GOVERNANCE_RULES = [
  "route_timeout_required",
  "route_pool_required",
  "max_routes",
  "require_tls_kept",
] as const;

export type GovernanceRule = (typeof GOVERNANCE_RULES)[number];

export interface GovernanceSettings {
  /** Every route states a timeout, inline (`policy.timeout`) or through its `policy_ref`. */
  readonly route_timeout_required: boolean;
  /** Every route sends somewhere: a `pool`, or a traffic plan with a `stable_pool`. */
  readonly route_pool_required: boolean;
  /** The most routes a config may have; false switches the rule off. */
  readonly max_routes: number | false;
  /** A route that required TLS in the fleet's previous config keeps requiring it. */
  readonly require_tls_kept: boolean;
}

export const DEFAULT_GOVERNANCE: GovernanceSettings = {
  route_timeout_required: true,
  route_pool_required: true,
  max_routes: 5_000,
  require_tls_kept: true,
};

/** A violation; `code` is the rule's name, so it can be switched off by that name. */
export interface GovernanceIssue {
  readonly code: GovernanceRule;
  readonly path: string;
  readonly message: string;
}

/**
 * Checks `config` against the enabled rules. `previous` is the fleet's latest config, or
 * undefined for a fleet's first bundle (and then require_tls_kept has nothing to keep).
 */
export function checkGovernance(
  config: DynamicConfig,
  previous: DynamicConfig | undefined,
  settings: GovernanceSettings,
): GovernanceIssue[] {
  const issues: GovernanceIssue[] = [];
  const routes = config.routes ?? [];
  if (settings.max_routes !== false && routes.length > settings.max_routes) {
    issues.push({
      code: "max_routes",
      path: "routes",
      message: `${routes.length} routes, at most ${settings.max_routes} are allowed: split the fleet or raise governance.max_routes`,
    });
  }
  const policies = policiesById(config);
  const plannedStable = settings.route_pool_required ? routesWithStablePool(config) : undefined;
  const tlsBefore = settings.require_tls_kept && previous ? routesRequiringTls(previous) : undefined;
  for (let i = 0; i < routes.length; i++) {
    const route = routes[i] as Route;
    const policy = route.policy_ref === undefined ? undefined : policies.get(route.policy_ref);
    if (
      settings.route_timeout_required &&
      route.policy?.timeout === undefined &&
      policy?.timeout === undefined
    ) {
      issues.push({
        code: "route_timeout_required",
        path: formatPath(["routes", i, "policy", "timeout"]),
        message: `route "${route.id}" has no timeout: set policy.timeout, or a policy_ref whose policy has one`,
      });
    }
    if (plannedStable && route.pool === undefined && !plannedStable.has(route.id)) {
      issues.push({
        code: "route_pool_required",
        path: formatPath(["routes", i, "pool"]),
        message: `route "${route.id}" has no pool: set pool, or a traffic_management plan with a stable_pool`,
      });
    }
    if (tlsBefore?.has(route.id) && !requiresTls(route, policy)) {
      issues.push({
        code: "require_tls_kept",
        path: formatPath(["routes", i, "require_tls"]),
        message: `route "${route.id}" required TLS in the previous bundle: keep require_tls: true`,
      });
    }
  }
  return issues;
}

function policiesById(config: DynamicConfig): Map<string, Policy> {
  const byId = new Map<string, Policy>();
  for (const policy of config.policies ?? []) byId.set(policy.id, policy);
  return byId;
}

function routesWithStablePool(config: DynamicConfig): Set<string> {
  const ids = new Set<string>();
  for (const plan of config.traffic_management ?? []) if (plan.stable_pool !== undefined) ids.add(plan.route);
  return ids;
}

function routesRequiringTls(config: DynamicConfig): Set<string> {
  const policies = policiesById(config);
  const ids = new Set<string>();
  for (const route of config.routes ?? []) {
    const policy = route.policy_ref === undefined ? undefined : policies.get(route.policy_ref);
    if (requiresTls(route, policy)) ids.add(route.id);
  }
  return ids;
}

/** Where a route can ask for TLS: on itself, in its inline policy, or in its named policy. */
function requiresTls(route: Route, policy: Policy | undefined): boolean {
  return route.require_tls === true || route.policy?.require_tls === true || policy?.require_tls === true;
}
