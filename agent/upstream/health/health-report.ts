/**
 * How an endpoint's health reads in GET /api/v2/pools/{id}/health and in state-change logs:
 * its state and, above all, why — the last failed check, the ejection and when it ends, or
 * that nothing watches it.
 */
import type { EndpointHealth, EndpointState } from "./endpoint-health.js";
import type { HealthSettings } from "./settings.js";

export interface EndpointHealthReport {
  readonly address: string;
  /** Whether requests may go to it now. */
  readonly healthy: boolean;
  readonly state: EndpointState;
  readonly reason: string;
  /** ISO time of the last active check, null before the first or without active checks. */
  readonly last_check: string | null;
  readonly last_check_result: string | null;
  /** Failed attempts in a row on the request path. */
  readonly consecutive_failures: number;
  readonly ejected_until: string | null;
  /** Outlier ejections in a row (the next one lasts this + 1 base ejection times). */
  readonly ejections: number;
}

export function reportEndpoint(
  endpoint: EndpointHealth,
  settings: HealthSettings,
  now: number,
): EndpointHealthReport {
  const state = endpoint.state(now);
  return {
    address: endpoint.address,
    healthy: endpoint.isAvailable(now),
    state,
    reason: stateReason(endpoint, state, settings),
    last_check: endpoint.lastCheckAt === 0 ? null : new Date(endpoint.lastCheckAt).toISOString(),
    last_check_result: endpoint.lastCheckDetail ?? null,
    consecutive_failures: endpoint.consecutiveFailures,
    ejected_until: now < endpoint.ejectedUntil ? new Date(endpoint.ejectedUntil).toISOString() : null,
    ejections: settings.outlier ? endpoint.ejectionsAt(now, settings.outlier.intervalMs) : 0,
  };
}

export function stateReason(
  endpoint: EndpointHealth,
  state: EndpointState,
  settings: HealthSettings,
): string {
  const check = endpoint.lastCheckDetail;
  const active = settings.active;
  if (state === "unhealthy") {
    if (endpoint.checkPasses > 0 && active) {
      return `recovering: active check passed (${check}), ${endpoint.checkPasses} of ${active.healthyThreshold} in a row needed`;
    }
    return `active check failed: ${check}, ${endpoint.checkFailures} in a row`;
  }
  if (state === "ejected")
    return `ejected: ${endpoint.ejectionReason}, until ${timeOfDay(endpoint.ejectedUntil)}`;
  if (!active && !settings.passive && !settings.outlier) return "in rotation: no health checks configured";
  const parts: string[] = [];
  if (active) {
    if (endpoint.lastCheckAt === 0) parts.push("first active check pending");
    else if (endpoint.checkFailures > 0) {
      parts.push(
        `active check failed: ${check}, ${endpoint.checkFailures} of ${active.unhealthyThreshold} in a row`,
      );
    } else parts.push(`active check passed: ${check}`);
  }
  if (settings.passive || settings.outlier) {
    const failures = endpoint.consecutiveFailures;
    parts.push(failures === 0 ? "no recent request failures" : `${failures} request failures in a row`);
  }
  return `in rotation: ${parts.join("; ")}`;
}

/** "12:00:30Z": an ejection end is minutes away, so the time of day says enough in a sentence. */
function timeOfDay(ms: number): string {
  return `${new Date(ms).toISOString().slice(11, 19)}Z`;
}
