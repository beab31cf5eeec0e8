/**
 * The agent's metrics, named as the spec names them. Label values come only from config ids
 * (route, pool, endpoint address), status codes and closed sets (error category, outcome),
 * so cardinality is bounded by the config. Children are bound when a snapshot is compiled,
 * so the request path does no label lookups, and the per-request ones are hot-metrics: plain
 * numbers read at scrape time.
 */
import { Counter, Gauge, Registry } from "prom-client";
import type { ProxyErrorCategory } from "../errors.js";
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

  bindEndpoint(pool: string, endpoint: string): EndpointMetrics {
    return {
      requests: this.upstreamRequests.labels({ pool, endpoint }),
      duration: this.upstreamDuration.labels({ pool, endpoint }),
    };
  }
}

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
