/**
 * A pool's effective health settings: the config with the agent's defaults filled in, in ms
 * and percents. Computed when a snapshot is compiled; a part the pool does not configure is
 * undefined, and that mechanism is off.
 */
import type { Pool, StatusRange } from "../../../services/config/index.js";

export interface ActiveSettings {
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly path: string;
  readonly expectedStatus: StatusRange;
  /** Each interval is drawn from interval × (1 ± jitter/100). */
  readonly jitterPercent: number;
  /** Passing checks in a row that bring an unhealthy endpoint back. */
  readonly healthyThreshold: number;
  /** Failing checks in a row that take a healthy endpoint out. */
  readonly unhealthyThreshold: number;
}

export interface PassiveSettings {
  readonly consecutiveFailures: number;
  readonly ejectionMs: number;
}

export interface OutlierSettings {
  readonly consecutiveFailures: number;
  /** Undefined: no error-rate check, only consecutive failures. */
  readonly errorRatePercent: number | undefined;
  readonly maxEjectionPercent: number;
  /** The error-rate window, and the time an ejection count takes to decay by one. */
  readonly intervalMs: number;
  /** The n-th ejection in a row lasts n × this. */
  readonly baseEjectionMs: number;
  /** Requests an endpoint needs in the window before its error rate counts. */
  readonly minRequests: number;
}

export interface HealthSettings {
  readonly active: ActiveSettings | undefined;
  readonly passive: PassiveSettings | undefined;
  readonly outlier: OutlierSettings | undefined;
}

/**
 * The defaults, and why:
 * - active timeout 1 s, but never longer than the interval, so one slow probe does not skip
 *   the next; an endpoint that cannot answer a health check in a second is not healthy.
 * - active path "/health": the spec's example; "/" would test whatever the application serves
 *   at its root (often a redirect or a heavy page), not its own view of its health.
 * - expected 200-399: a redirect still proves the process is up and routing.
 * - jitter 10%: enough that a fleet restarted together drifts apart within a few intervals.
 * - healthy_threshold 1, unhealthy_threshold 2: one lost probe is not an outage, and an
 *   endpoint that answers again should serve again at once (passive health still guards it).
 * - passive ejection 30 s: long enough for a restarting process, short enough to notice recovery.
 * - outlier detection as Envoy's: 5 consecutive failures, a 10 s interval, 30 s base ejection,
 *   at most 10% of the pool ejected (but always one), and 20 requests before an error rate
 *   counts. The error-rate check is off unless `error_rate_threshold` is set, as Envoy's
 *   failure-percentage check is off unless enforced: a pool-wide error rate is the circuit
 *   breaker's job, and ejecting on it would empty small pools.
 */
export const HEALTH_DEFAULTS = {
  activeTimeoutMs: 1_000,
  activePath: "/health",
  expectedStatus: { min: 200, max: 399 },
  jitterPercent: 10,
  healthyThreshold: 1,
  unhealthyThreshold: 2,
  passiveEjectionMs: 30_000,
  outlierConsecutiveFailures: 5,
  outlierIntervalMs: 10_000,
  baseEjectionMs: 30_000,
  maxEjectionPercent: 10,
  minRequests: 20,
} as const;

export function healthSettings(pool: Pool): HealthSettings {
  const active = pool.health?.active;
  const passive = pool.health?.passive;
  const outlier = pool.outlier_detection;
  const d = HEALTH_DEFAULTS;
  return {
    active: active && {
      intervalMs: active.interval,
      timeoutMs: active.timeout ?? Math.min(d.activeTimeoutMs, active.interval),
      path: active.path ?? d.activePath,
      expectedStatus: active.expected_status ?? d.expectedStatus,
      jitterPercent: active.jitter ?? d.jitterPercent,
      healthyThreshold: active.healthy_threshold ?? d.healthyThreshold,
      unhealthyThreshold: active.unhealthy_threshold ?? d.unhealthyThreshold,
    },
    passive: passive && {
      consecutiveFailures: passive.consecutive_failures,
      ejectionMs: passive.ejection_duration ?? d.passiveEjectionMs,
    },
    outlier: outlier && {
      consecutiveFailures: outlier.consecutive_failures ?? d.outlierConsecutiveFailures,
      errorRatePercent: outlier.error_rate_threshold,
      maxEjectionPercent: outlier.max_ejection_percent ?? d.maxEjectionPercent,
      intervalMs: outlier.interval ?? d.outlierIntervalMs,
      baseEjectionMs: outlier.base_ejection_time ?? d.baseEjectionMs,
      minRequests: outlier.min_requests ?? d.minRequests,
    },
  };
}

export function formatStatusRange(range: StatusRange): string {
  return range.min === range.max ? String(range.min) : `${range.min}-${range.max}`;
}
