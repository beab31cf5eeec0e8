/**
 * The runtime state the admin API shows — pool health, circuit breakers, canaries — as one
 * process sees it, and merged over a cluster's workers. Each worker keeps its own state (no
 * shared memory), so the merge takes the most cautious view: an endpoint is healthy only if
 * every worker sends it traffic, a breaker shows its worst state, counts add up.
 */
import type { BreakerState } from "../resilience/circuit-breaker.js";
import type { CanaryRow } from "../traffic/canary-registry.js";
import type { EndpointHealthReport } from "../upstream/health/health-report.js";

export interface PoolHealthView {
  readonly pool: string;
  readonly endpoints: readonly EndpointHealthReport[];
}

export interface BreakerView {
  readonly pool?: string;
  readonly route?: string;
  readonly state: BreakerState;
  readonly trips: number;
  readonly in_flight: number;
  readonly error_percent: number;
}

/** A route's limits now: overload protection, rate limit and retry budget, where configured. */
export interface RouteLimitsView {
  readonly route: string;
  readonly overload?: { readonly limit: number; readonly in_flight: number; readonly queued: number };
  readonly rate_limit?: {
    readonly requests_per_second: number;
    readonly burst: number;
    readonly keys: number;
  };
  readonly retry_budget_tokens: number;
}

export interface RuntimeState {
  readonly pools: readonly PoolHealthView[];
  readonly breakers: readonly BreakerView[];
  readonly canaries: readonly CanaryRow[];
  readonly limits: readonly RouteLimitsView[];
}

const BREAKER_SEVERITY: Record<BreakerState, number> = { closed: 0, half_open: 1, open: 2 };

export function mergeRuntimeStates(states: readonly RuntimeState[]): RuntimeState {
  const [first, ...rest] = states;
  if (!first) return { pools: [], breakers: [], canaries: [], limits: [] };
  if (rest.length === 0) return first;
  return {
    pools: mergeBy(
      states.map((s) => s.pools),
      (p) => p.pool,
      mergePools,
    ),
    breakers: mergeBy(
      states.map((s) => s.breakers),
      (b) => `${b.pool ?? ""}\u0000${b.route ?? ""}`,
      mergeBreakers,
    ),
    canaries: mergeBy(
      states.map((s) => s.canaries),
      (c) => c.route,
      mergeCanaries,
    ),
    limits: mergeBy(
      states.map((s) => s.limits),
      (l) => l.route,
      mergeLimits,
    ),
  };
}

/** Groups the items of every list by key, in first-seen order, and merges each group. */
function mergeBy<T>(
  lists: readonly (readonly T[])[],
  key: (item: T) => string,
  merge: (items: readonly T[]) => T,
): T[] {
  const groups = new Map<string, T[]>();
  for (const list of lists) {
    for (const item of list) {
      const group = groups.get(key(item));
      if (group) group.push(item);
      else groups.set(key(item), [item]);
    }
  }
  return [...groups.values()].map(merge);
}

function mergePools(views: readonly PoolHealthView[]): PoolHealthView {
  const first = views[0] as PoolHealthView;
  const byAddress = mergeBy(
    views.map((v) => v.endpoints),
    (e) => e.address,
    // The worst worker's view explains why the endpoint is out of rotation.
    (reports) => reports.find((r) => !r.healthy) ?? (reports[0] as EndpointHealthReport),
  );
  return { pool: first.pool, endpoints: byAddress };
}

function mergeBreakers(views: readonly BreakerView[]): BreakerView {
  const worst = views.reduce((a, b) => (BREAKER_SEVERITY[b.state] > BREAKER_SEVERITY[a.state] ? b : a));
  return {
    ...worst,
    trips: sum(views, (v) => v.trips),
    in_flight: sum(views, (v) => v.in_flight),
    error_percent: Math.max(...views.map((v) => v.error_percent)),
  };
}

function mergeCanaries(rows: readonly CanaryRow[]): CanaryRow {
  const braked = rows.find((r) => r.braked);
  const stable = sum(rows, (r) => r.stable_requests);
  const canary = sum(rows, (r) => r.canary_requests);
  const weighted = (requests: (r: CanaryRow) => number, percent: (r: CanaryRow) => number, total: number) =>
    total === 0 ? 0 : Math.round((sum(rows, (r) => requests(r) * percent(r)) / total) * 100) / 100;
  return {
    ...(braked ?? (rows[0] as CanaryRow)),
    stable_requests: stable,
    canary_requests: canary,
    stable_error_percent: weighted(
      (r) => r.stable_requests,
      (r) => r.stable_error_percent,
      stable,
    ),
    canary_error_percent: weighted(
      (r) => r.canary_requests,
      (r) => r.canary_error_percent,
      canary,
    ),
  };
}

/** Each worker holds its share of a route's limits: the agent's are their sums. */
function mergeLimits(views: readonly RouteLimitsView[]): RouteLimitsView {
  const overloads = views.flatMap((v) => (v.overload ? [v.overload] : []));
  const rates = views.flatMap((v) => (v.rate_limit ? [v.rate_limit] : []));
  return {
    route: (views[0] as RouteLimitsView).route,
    ...(overloads.length > 0 && {
      overload: {
        limit: sum(overloads, (o) => o.limit),
        in_flight: sum(overloads, (o) => o.in_flight),
        queued: sum(overloads, (o) => o.queued),
      },
    }),
    ...(rates.length > 0 && {
      rate_limit: {
        requests_per_second: sum(rates, (r) => r.requests_per_second),
        burst: sum(rates, (r) => r.burst),
        keys: sum(rates, (r) => r.keys),
      },
    }),
    retry_budget_tokens: sum(views, (v) => v.retry_budget_tokens),
  };
}

function sum<T>(items: readonly T[], value: (item: T) => number): number {
  let total = 0;
  for (const item of items) total += value(item);
  return total;
}
