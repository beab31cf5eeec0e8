/**
 * The health of one pool's endpoints, kept across config swaps (one per pool id, endpoints
 * keyed by address). Three mechanisms take an endpoint out of rotation:
 * - active checks: probes flip it unhealthy after `unhealthy_threshold` failures in a row and
 *   healthy again after `healthy_threshold` passes;
 * - passive health: `consecutive_failures` failed attempts in a row eject it for
 *   `ejection_duration`;
 * - outlier detection: consecutive failures, or an error rate at or above the threshold over
 *   an interval, eject it for base_ejection_time × its ejections in a row, while at most
 *   max_ejection_percent of the pool (but always one endpoint) is ejected at once.
 *
 * `isAvailable` and `report` run on every attempt: O(1) and allocation-free. The error-rate
 * window is evaluated lazily, by the first report after it ends, so no timer runs for it.
 * An ejection's end is noticed (and told to the listener) at the endpoint's next report or
 * the next `describe`/`healthyCount`, since availability itself only compares with the clock.
 */
import { ActiveChecker, type CheckResult, type Probe } from "./active-checker.js";
import { EndpointHealth, type EndpointState } from "./endpoint-health.js";
import { type EndpointHealthReport, reportEndpoint, stateReason } from "./health-report.js";
import type { HealthSettings, OutlierSettings } from "./settings.js";

/** The fail-open trickle's pace when no endpoint is available: the spec's 1 request a second. */
const TRICKLE_INTERVAL_MS = 1_000;
/** The longest outlier ejection however often an endpoint is ejected (Envoy's max_ejection_time). */
const MAX_EJECTION_MS = 300_000;

const NO_HEALTH: HealthSettings = { active: undefined, passive: undefined, outlier: undefined };

export interface HealthChange {
  readonly pool: string;
  readonly address: string;
  readonly from: EndpointState;
  readonly to: EndpointState;
  readonly reason: string;
}

/** Called on every state change of an endpoint, for logs; it must not throw. */
export type HealthListener = (change: HealthChange) => void;

/** The probe of the endpoint at `index` of the pool, or undefined to leave it unprobed. */
export type ProbeFor = (index: number) => Probe | undefined;

export interface PoolHealthOptions {
  readonly now?: () => number;
  /** Draws in [0, 1) for the probe schedules. */
  readonly random?: () => number;
  readonly listener?: HealthListener;
}

const noProbe: ProbeFor = () => undefined;

export class PoolHealth {
  #settings = NO_HEALTH;
  #endpoints: EndpointHealth[] = [];
  #byAddress = new Map<string, EndpointHealth>();
  #checker: ActiveChecker | undefined;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #listener: HealthListener | undefined;
  #nextTrickleAt = Number.NEGATIVE_INFINITY;
  #trickleCursor = 0;
  /** When the current outlier error-rate window ends. */
  #windowEnd = 0;
  /** Set when the outlier cap was found full: no outlier ejection can happen before then. */
  #capFullUntil = 0;
  #closed = false;

  constructor(
    readonly id: string,
    addresses: readonly string[],
    settings: HealthSettings,
    probeFor: ProbeFor = noProbe,
    options: PoolHealthOptions = {},
  ) {
    this.#now = options.now ?? Date.now;
    this.#random = options.random ?? Math.random;
    this.#listener = options.listener;
    this.update(addresses, settings, probeFor);
  }

  get total(): number {
    return this.#endpoints.length;
  }

  /** Whether the endpoint at `index` may take a request now. */
  isAvailable(index: number): boolean {
    const endpoint = this.#endpoints[index];
    return endpoint?.isAvailable(this.#now()) === true;
  }

  /** The outcome of every attempt to the endpoint at `index`; a failure as the README defines it. */
  report(index: number, success: boolean): void {
    const endpoint = this.#endpoints[index];
    if (endpoint === undefined) return;
    const now = this.#now();
    const { passive, outlier } = this.#settings;
    if (outlier) {
      if (now >= this.#windowEnd) this.#evaluateErrorRates(now, outlier);
      endpoint.windowRequests++;
      if (!success) endpoint.windowFailures++;
    }
    if (success) {
      endpoint.consecutiveFailures = 0;
      endpoint.passiveFailures = 0;
      endpoint.outlierFailures = 0;
    } else {
      endpoint.consecutiveFailures++;
      // An ejected endpoint's late failures (requests already in flight) do not eject it again.
      if (
        passive &&
        now >= endpoint.passiveUntil &&
        ++endpoint.passiveFailures >= passive.consecutiveFailures
      ) {
        endpoint.passiveFailures = 0;
        endpoint.ejectPassive(
          now + passive.ejectionMs,
          `${passive.consecutiveFailures} consecutive failures`,
        );
      }
      if (
        outlier &&
        now >= endpoint.outlierUntil &&
        ++endpoint.outlierFailures >= outlier.consecutiveFailures &&
        this.#ejectOutlier(endpoint, now, outlier, `${outlier.consecutiveFailures} consecutive failures`)
      ) {
        endpoint.outlierFailures = 0;
      }
    }
    this.#observe(endpoint, now);
  }

  /**
   * The fail-open trickle, for when no endpoint is available: an endpoint index at most once
   * a second (rotating over all of them, whatever their state), -1 otherwise — the caller
   * then answers 503 no_healthy_upstream.
   */
  trickle(): number {
    const total = this.#endpoints.length;
    const now = this.#now();
    if (total === 0 || now < this.#nextTrickleAt) return -1;
    this.#nextTrickleAt = now + TRICKLE_INTERVAL_MS;
    const index = this.#trickleCursor % total;
    this.#trickleCursor = index + 1;
    return index;
  }

  /** Endpoints available now; for the healthy-endpoints gauge and the admin API. */
  healthyCount(): number {
    const now = this.#now();
    let count = 0;
    for (const endpoint of this.#endpoints) {
      this.#observe(endpoint, now);
      if (endpoint.isAvailable(now)) count++;
    }
    return count;
  }

  /** Each endpoint's state and why, in endpoint order: GET /api/v2/pools/{id}/health. */
  describe(): EndpointHealthReport[] {
    const now = this.#now();
    return this.#endpoints.map((endpoint) => {
      this.#observe(endpoint, now);
      return reportEndpoint(endpoint, this.#settings, now);
    });
  }

  /**
   * Takes a new endpoint list and settings (a config swap). An endpoint that stays keeps its
   * state; a new one starts healthy. A mechanism the new settings turn off lifts what it did:
   * its ejections end, or active verdicts are forgotten.
   */
  update(addresses: readonly string[], settings: HealthSettings, probeFor: ProbeFor = noProbe): void {
    if (this.#closed) return;
    const now = this.#now();
    const previous = this.#settings;
    this.#settings = settings;
    const byAddress = new Map<string, EndpointHealth>();
    this.#endpoints = addresses.map((address) => {
      const endpoint = byAddress.get(address) ?? this.#byAddress.get(address) ?? new EndpointHealth(address);
      byAddress.set(address, endpoint);
      return endpoint;
    });
    this.#byAddress = byAddress;
    this.#capFullUntil = 0;
    if (settings.outlier && settings.outlier.intervalMs !== previous.outlier?.intervalMs) {
      this.#windowEnd = now + settings.outlier.intervalMs;
    }
    for (const endpoint of byAddress.values()) {
      if (!settings.active) endpoint.resetActive();
      if (!settings.passive) endpoint.ejectPassive(0, endpoint.passiveReason);
      if (!settings.outlier) {
        endpoint.ejectOutlier(0, endpoint.outlierReason);
        endpoint.ejections = 0;
      }
    }
    this.#updateChecker(addresses, settings, probeFor);
    for (const endpoint of byAddress.values()) this.#observe(endpoint, now, "config changed");
  }

  /** Stops the active checks. Idempotent. */
  close(): void {
    this.#closed = true;
    this.#checker?.close();
    this.#checker = undefined;
  }

  #updateChecker(addresses: readonly string[], settings: HealthSettings, probeFor: ProbeFor): void {
    if (!settings.active) {
      this.#checker?.close();
      this.#checker = undefined;
      return;
    }
    const probes = new Map<string, Probe>();
    for (let index = 0; index < addresses.length; index++) {
      const probe = probeFor(index);
      const address = addresses[index];
      if (probe && address !== undefined) probes.set(address, probe);
    }
    if (this.#checker) this.#checker.settings = settings.active;
    else {
      this.#checker = new ActiveChecker(
        settings.active,
        (address, result) => this.#onCheck(address, result),
        this.#random,
      );
    }
    this.#checker.sync(probes);
  }

  #onCheck(address: string, result: CheckResult): void {
    const endpoint = this.#byAddress.get(address);
    const active = this.#settings.active;
    if (endpoint === undefined || active === undefined) return;
    const now = this.#now();
    endpoint.lastCheckAt = now;
    endpoint.lastCheckDetail = result.detail;
    if (result.ok) {
      endpoint.checkFailures = 0;
      endpoint.checkPasses++;
      if (endpoint.checkPasses >= active.healthyThreshold) endpoint.activeHealthy = true;
    } else {
      endpoint.checkPasses = 0;
      endpoint.checkFailures++;
      if (endpoint.checkFailures >= active.unhealthyThreshold) endpoint.activeHealthy = false;
    }
    this.#observe(endpoint, now);
  }

  /**
   * Ejects `endpoint` as an outlier unless the cap is reached; false when it was not ejected.
   * Runs only when a threshold is crossed, so its pass over the pool is off the common path,
   * and a full cap is remembered until the first ejection in it ends.
   */
  #ejectOutlier(endpoint: EndpointHealth, now: number, outlier: OutlierSettings, cause: string): boolean {
    if (now < this.#capFullUntil) return false;
    const allowed = Math.max(1, Math.floor((this.#byAddress.size * outlier.maxEjectionPercent) / 100));
    let ejected = 0;
    let firstEnd = Number.POSITIVE_INFINITY;
    for (const other of this.#byAddress.values()) {
      if (now >= other.outlierUntil) continue;
      ejected++;
      firstEnd = Math.min(firstEnd, other.outlierUntil);
    }
    if (ejected >= allowed) {
      this.#capFullUntil = firstEnd;
      return false;
    }
    const ejections = endpoint.ejectionsAt(now, outlier.intervalMs) + 1;
    const base = outlier.baseEjectionMs;
    const duration = Math.min(base * ejections, Math.max(base, MAX_EJECTION_MS));
    endpoint.ejections = ejections;
    endpoint.ejectOutlier(
      now + duration,
      `outlier: ${cause}, ejection ${ejections} in a row for ${formatSeconds(duration)}`,
    );
    return true;
  }

  /** Ends the error-rate window: ejects the endpoints at or above the threshold, worst first. */
  #evaluateErrorRates(now: number, outlier: OutlierSettings): void {
    this.#windowEnd = now + outlier.intervalMs;
    const threshold = outlier.errorRatePercent;
    if (threshold !== undefined) {
      const offenders = [...this.#byAddress.values()].filter(
        (e) =>
          e.windowFailures > 0 &&
          e.windowRequests >= outlier.minRequests &&
          e.windowFailures * 100 >= threshold * e.windowRequests &&
          now >= e.outlierUntil,
      );
      offenders.sort((a, b) => b.windowFailures / b.windowRequests - a.windowFailures / a.windowRequests);
      for (const e of offenders) {
        const rate = Math.round((e.windowFailures * 100) / e.windowRequests);
        const cause = `error rate ${rate}% (${e.windowFailures} of ${e.windowRequests} requests, threshold ${threshold}%)`;
        if (!this.#ejectOutlier(e, now, outlier, cause)) break;
      }
    }
    for (const endpoint of this.#byAddress.values()) {
      endpoint.windowRequests = 0;
      endpoint.windowFailures = 0;
    }
  }

  /** Tells the listener when the endpoint's state changed since it was last told; `cause` leads the reason. */
  #observe(endpoint: EndpointHealth, now: number, cause?: string): void {
    const to = endpoint.state(now);
    const from = endpoint.reported;
    if (to === from) return;
    endpoint.reported = to;
    if (this.#listener === undefined) return;
    let reason =
      from === "ejected" && to === "healthy"
        ? `ejection ended (${endpoint.ejectionReason})`
        : stateReason(endpoint, to, this.#settings);
    if (cause !== undefined) reason = `${cause}: ${reason}`;
    this.#listener({ pool: this.id, address: endpoint.address, from, to, reason });
  }
}

function formatSeconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}
