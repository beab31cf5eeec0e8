/**
 * The agent's metrics, named as the spec names them. Label values come only from config ids
 * (route, pool, endpoint address), status codes and closed sets (error category, outcome),
 * so cardinality is bounded by the config. Children are bound when a snapshot is compiled,
 * so the request path does no label lookups, and the per-request ones are hot-metrics: plain
 * numbers read at scrape time.
 */
import { Counter, Gauge, Registry } from "prom-client";
import type { ProxyErrorCategory } from "../errors.js";
import type { BreakerState, BreakerStatus } from "../resilience/circuit-breaker.js";
import type { LimiterStatus } from "../resilience/concurrency-limiter.js";
import type { CanaryRow } from "../traffic/canary-registry.js";
import { type CounterChild, type HistogramChild, HotCounter, HotHistogram } from "./hot-metrics.js";

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const SIZE_BUCKETS = [64, 256, 1024, 4096, 16_384, 65_536, 262_144, 1_048_576, 4_194_304, 16_777_216];

export class AgentMetrics {
  readonly registry = new Registry();

  readonly requests = new HotCounter({
    name: "proxy_requests_total",
    help: "Requests answered, by route, pool and status code",
    labelNames: ["route", "pool", "status"] as const,
    registers: [this.registry],
  });
  readonly requestDuration = new HotHistogram({
    name: "proxy_request_duration_seconds",
    help: "Time from request received to response finished",
    labelNames: ["route", "pool"] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly requestSize = new HotHistogram({
    name: "proxy_request_size_bytes",
    help: "Request body bytes received from clients",
    labelNames: ["route"] as const,
    buckets: SIZE_BUCKETS,
    registers: [this.registry],
  });
  readonly responseSize = new HotHistogram({
    name: "proxy_response_size_bytes",
    help: "Response body bytes sent to clients",
    labelNames: ["route"] as const,
    buckets: SIZE_BUCKETS,
    registers: [this.registry],
  });
  readonly errors = new HotCounter({
    name: "proxy_errors_total",
    help: "Responses the proxy made itself, by route and error category",
    labelNames: ["route", "error"] as const,
    registers: [this.registry],
  });
  readonly upstreamRequests = new HotCounter({
    name: "proxy_upstream_requests_total",
    help: "Attempts sent to upstream endpoints",
    labelNames: ["pool", "endpoint"] as const,
    registers: [this.registry],
  });
  readonly upstreamDuration = new HotHistogram({
    name: "proxy_upstream_duration_seconds",
    help: "Time from attempt sent to upstream response headers",
    labelNames: ["pool", "endpoint"] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  // Every worker of a cluster reports the same value: aggregated as one, not summed.
  readonly poolTotalEndpoints = new Gauge({
    name: "proxy_pool_total_endpoints",
    help: "Endpoints configured in a pool",
    labelNames: ["pool"] as const,
    aggregator: "first",
    registers: [this.registry],
    collect: () => this.#collectPools(),
  });
  // Each worker judges health on its own; across a cluster the most cautious count is shown.
  readonly poolHealthyEndpoints = new Gauge({
    name: "proxy_pool_healthy_endpoints",
    help: "Endpoints of a pool in rotation now (not unhealthy, not ejected)",
    labelNames: ["pool"] as const,
    aggregator: "min",
    registers: [this.registry],
  });
  // A pool's breaker is labelled with its pool, a route policy's breaker with its route.
  readonly breakerState = new Gauge({
    name: "proxy_breaker_state",
    help: "1 for the state each circuit breaker is in, 0 for the others",
    labelNames: ["pool", "route", "state"] as const,
    aggregator: "max",
    registers: [this.registry],
    collect: () => this.#collectBreakers(),
  });
  readonly breakerTrips = new HotCounter({
    name: "proxy_breaker_trips_total",
    help: "Times a circuit breaker opened",
    labelNames: ["pool", "route"],
    registers: [this.registry],
  });
  readonly endpointEjections = new HotCounter({
    name: "proxy_endpoint_ejections_total",
    help: "Times an endpoint was taken out of rotation by passive health or outlier detection",
    labelNames: ["pool", "endpoint"],
    registers: [this.registry],
  });
  readonly overloadLimit = new Gauge({
    name: "proxy_overload_limit",
    help: "A route's concurrency limit now (overload protection; adaptive ones move)",
    labelNames: ["route"] as const,
    registers: [this.registry],
    collect: () => this.#collectLimiters(),
  });
  readonly overloadInFlight = new Gauge({
    name: "proxy_overload_in_flight",
    help: "Requests of a route holding an overload-protection slot",
    labelNames: ["route"] as const,
    registers: [this.registry],
  });
  readonly overloadQueued = new Gauge({
    name: "proxy_overload_queued",
    help: "Requests of a route waiting for an overload-protection slot",
    labelNames: ["route"] as const,
    registers: [this.registry],
  });
  readonly canaryBraked = new Gauge({
    name: "proxy_canary_braked",
    help: "1 while a route's canary is braked by its safety brake",
    labelNames: ["route"] as const,
    aggregator: "max",
    registers: [this.registry],
    collect: () => {
      this.canaryBraked.reset();
      for (const row of this.#sources?.canaries() ?? [])
        this.canaryBraked.labels(row.route).set(row.braked ? 1 : 0);
    },
  });
  readonly cacheRequests = new HotCounter({
    name: "proxy_cache_requests_total",
    help: "Requests of cached routes by what the cache did: hit, miss (went upstream, may store), bypass",
    labelNames: ["route", "result"],
    registers: [this.registry],
  });
  readonly cacheCoalesceWaiters = new Gauge({
    name: "proxy_cache_coalesce_waiters",
    help: "Requests waiting for another request's upstream answer to the same cache key",
    labelNames: ["route"] as const,
    registers: [this.registry],
    collect: () => {
      this.cacheCoalesceWaiters.reset();
      for (const { route, waiters } of this.#sources?.caches() ?? [])
        this.cacheCoalesceWaiters.labels(route).set(waiters);
    },
  });
  readonly pluginCalls = new HotCounter({
    name: "proxy_plugin_calls_total",
    help: "Plugin calls by outcome: allow, deny, error, timeout",
    labelNames: ["plugin", "outcome"],
    registers: [this.registry],
    collect: () => {
      for (const { plugin, outcome, count } of this.#sources?.pluginCalls() ?? []) {
        this.pluginCalls.labels({ plugin, outcome }).value = count;
      }
    },
  });
  readonly traceSpansDropped = new HotCounter({
    name: "proxy_trace_spans_dropped_total",
    help: "Spans not exported: queue_full (the collector is slow or down), export_failed",
    labelNames: ["reason"],
    registers: [this.registry],
  });
  readonly retryBudgetTokens = new Gauge({
    name: "proxy_retry_budget_tokens",
    help: "Retries a route's budget still allows now (budget_percent of recent successes, minus recent retries)",
    labelNames: ["route"] as const,
    registers: [this.registry],
    collect: () => {
      this.retryBudgetTokens.reset();
      for (const [route, tokens] of this.#sources?.retryBudgets() ?? [])
        this.retryBudgetTokens.labels(route).set(tokens);
    },
  });
  readonly retries = new HotCounter({
    name: "proxy_retries_total",
    help: "Retry decisions: success (a retry answered), exhausted (attempts used up), budget (refused by the retry budget)",
    labelNames: ["route", "outcome"] as const,
    registers: [this.registry],
  });
  readonly configReloads = new Counter({
    name: "proxy_config_reloads_total",
    help: "Config changes tried, by result (applied, rejected, unchanged)",
    labelNames: ["result"] as const,
    registers: [this.registry],
  });
  readonly configInfo = new Gauge({
    name: "proxy_config_info",
    help: "The active config: 1 for its version and content hash",
    labelNames: ["version", "content_sha256"] as const,
    aggregator: "first",
    registers: [this.registry],
  });

  #sources: StateSources | undefined;

  /** Where the gauges of runtime state read from at scrape time. */
  observe(sources: StateSources): void {
    this.#sources = sources;
  }

  #collectPools(): void {
    this.poolTotalEndpoints.reset();
    this.poolHealthyEndpoints.reset();
    for (const { pool, healthy, total } of this.#sources?.pools() ?? []) {
      this.poolTotalEndpoints.labels(pool).set(total);
      this.poolHealthyEndpoints.labels(pool).set(healthy);
    }
  }

  #collectBreakers(): void {
    this.breakerState.reset();
    for (const breaker of this.#sources?.breakers() ?? []) {
      const owner = breakerLabels(breaker.key);
      for (const state of BREAKER_STATES) {
        this.breakerState.set({ ...owner, state }, breaker.state === state ? 1 : 0);
      }
    }
  }

  #collectLimiters(): void {
    this.overloadLimit.reset();
    this.overloadInFlight.reset();
    this.overloadQueued.reset();
    for (const { route, limit, inFlight, queued } of this.#sources?.limiters() ?? []) {
      this.overloadLimit.labels(route).set(limit);
      this.overloadInFlight.labels(route).set(inFlight);
      this.overloadQueued.labels(route).set(queued);
    }
  }

  /**
   * Drops the series of routes and pools the active config no longer has, so an agent whose
   * routes are renamed again and again does not export every name it ever had. A route that
   * comes back starts from zero, which Prometheus reads as a counter reset.
   */
  retain(active: { readonly routes: ReadonlySet<string>; readonly pools: ReadonlySet<string> }): void {
    const keep = (labels: { route?: string; pool?: string }) =>
      (labels.route === undefined || active.routes.has(labels.route)) &&
      (labels.pool === undefined || active.pools.has(labels.pool));
    for (const metric of [
      this.requests,
      this.requestDuration,
      this.requestSize,
      this.responseSize,
      this.errors,
      this.upstreamRequests,
      this.upstreamDuration,
      this.breakerTrips,
      this.endpointEjections,
      this.cacheRequests,
      this.retries,
    ])
      metric.retain(keep);
  }

  endpointEjected(pool: string, endpoint: string): void {
    this.endpointEjections.labels({ pool, endpoint }).inc();
  }

  /** Counts a breaker opening; `key` is the breaker registry's ("pool:ID" or "route:ID"). */
  breakerTripped(key: string): void {
    this.breakerTrips.labels(breakerLabels(key)).inc();
  }

  bindRoute(route: string, pool: string): RouteMetrics {
    const statuses = new Map<number, CounterChild>();
    const errors = new Map<ProxyErrorCategory, CounterChild>();
    return {
      duration: this.requestDuration.labels({ route, pool }),
      requestSize: this.requestSize.labels({ route }),
      responseSize: this.responseSize.labels({ route }),
      retrySuccess: this.retries.labels({ route, outcome: "success" }),
      retryExhausted: this.retries.labels({ route, outcome: "exhausted" }),
      retryBudget: this.retries.labels({ route, outcome: "budget" }),
      // Status codes are a small set per route; each child is looked up once, on first use.
      status: (code) => {
        let child = statuses.get(code);
        if (!child) {
          child = this.requests.labels({ route, pool, status: String(code) });
          statuses.set(code, child);
        }
        return child;
      },
      error: (category) => {
        let child = errors.get(category);
        if (!child) {
          child = this.errors.labels({ route, error: category });
          errors.set(category, child);
        }
        return child;
      },
    };
  }

  bindCache(route: string): CacheMetrics {
    return {
      hit: this.cacheRequests.labels({ route, result: "hit" }),
      miss: this.cacheRequests.labels({ route, result: "miss" }),
      bypass: this.cacheRequests.labels({ route, result: "bypass" }),
    };
  }

  bindEndpoint(pool: string, endpoint: string): EndpointMetrics {
    return {
      requests: this.upstreamRequests.labels({ pool, endpoint }),
      duration: this.upstreamDuration.labels({ pool, endpoint }),
    };
  }
}

const BREAKER_STATES: readonly BreakerState[] = ["closed", "open", "half_open"];

function breakerLabels(key: string): { pool?: string; route?: string } {
  return key.startsWith("route:") ? { route: key.slice(6) } : { pool: key.slice(key.indexOf(":") + 1) };
}

/** Runtime state the gauges show, read when /metrics is scraped. */
export interface StateSources {
  pools(): Iterable<{ readonly pool: string; readonly healthy: number; readonly total: number }>;
  breakers(): Iterable<BreakerStatus>;
  retryBudgets(): Iterable<readonly [route: string, tokens: number]>;
  limiters(): Iterable<LimiterStatus>;
  canaries(): Iterable<CanaryRow>;
  caches(): Iterable<{ readonly route: string; readonly waiters: number }>;
  pluginCalls(): Iterable<{ readonly plugin: string; readonly outcome: string; readonly count: number }>;
}

/** A cached route's proxy_cache_requests_total series, by result. */
export type CacheMetrics = Readonly<Record<"hit" | "miss" | "bypass", CounterChild>>;

export interface RouteMetrics {
  readonly duration: HistogramChild;
  readonly requestSize: HistogramChild;
  readonly responseSize: HistogramChild;
  readonly retrySuccess: CounterChild;
  readonly retryExhausted: CounterChild;
  readonly retryBudget: CounterChild;
  status(code: number): CounterChild;
  error(category: ProxyErrorCategory): CounterChild;
}

export interface EndpointMetrics {
  readonly requests: CounterChild;
  readonly duration: HistogramChild;
}
