/**
 * Traffic counters per bundle version for the HealthReports a managed agent sends: requests,
 * 5xx answers and a latency histogram with fixed bounds (so a distributor can add up many
 * agents' histograms). Each report takes one window and starts the next where it ended, so
 * windows tile time without gaps or overlap, across reconnects too.
 *
 * `record` is on the request path: one map lookup (none when the version is the previous
 * call's) and a scan of ten bounds, no allocation.
 *
 * In a cluster each worker records its own requests and hands its counters to the primary
 * every second (`takeReport`, then `add` on the primary's recorder), so the primary's reports
 * cover every worker.
 */
import type { HealthReport, VersionHealth } from "../../proto/coherent/v1/distribution.js";

/** Inclusive upper bounds in ms; the proto's example, shared by every agent of a fleet. */
export const LATENCY_BOUNDS_MS: readonly number[] = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000];

/** Why `add` refused counters: they cannot be summed bucket by bucket with this recorder's. */
export class HealthMergeError extends Error {
  readonly code = "latency_bounds_differ";
}

class VersionCounters {
  requests = 0;
  errors5xx = 0;
  sumMs = 0;
  /** One more than the bounds: the last is the overflow bucket. */
  readonly counts: number[] = new Array<number>(LATENCY_BOUNDS_MS.length + 1).fill(0);

  constructor(readonly version: number) {}

  reset(): void {
    this.requests = 0;
    this.errors5xx = 0;
    this.sumMs = 0;
    this.counts.fill(0);
  }
}

export class HealthRecorder {
  readonly #now: () => number;
  readonly #byVersion = new Map<number, VersionCounters>();
  #last: VersionCounters | undefined;
  #windowStart: number;

  constructor(now: () => number) {
    this.#now = now;
    this.#windowStart = now();
  }

  /**
   * Called once per finished request, when its last byte was sent (or it failed): `version`
   * is the bundle version of the snapshot the request read (0 without a bundle), `status` the
   * status the client got, `durationMs` from the first byte received to the last sent.
   */
  record(version: number, status: number, durationMs: number): void {
    const counters = this.#counters(version);
    counters.requests++;
    if (status >= 500 && status <= 599) counters.errors5xx++;
    counters.sumMs += durationMs;
    let bucket = 0;
    while (bucket < LATENCY_BOUNDS_MS.length && durationMs > (LATENCY_BOUNDS_MS[bucket] ?? 0)) bucket++;
    counters.counts[bucket] = (counters.counts[bucket] ?? 0) + 1;
  }

  /**
   * Adds counters another recorder took (a cluster worker's, sent to its primary) to the
   * current window. Throws a HealthMergeError, adding nothing, when a histogram's bounds are
   * not LATENCY_BOUNDS_MS.
   */
  add(versions: readonly VersionHealth[]): void {
    for (const { latency } of versions) {
      const bounds = latency?.boundsMs ?? [];
      if (
        latency === undefined ||
        bounds.length !== LATENCY_BOUNDS_MS.length ||
        bounds.some((bound, i) => bound !== LATENCY_BOUNDS_MS[i]) ||
        latency.counts.length !== LATENCY_BOUNDS_MS.length + 1
      )
        throw new HealthMergeError(
          `latency bounds [${bounds.join(", ")}] are not [${LATENCY_BOUNDS_MS.join(", ")}]`,
        );
    }
    for (const health of versions) {
      const counters = this.#counters(health.version);
      counters.requests += health.requests;
      counters.errors5xx += health.errors5xx;
      counters.sumMs += health.latency?.sumMs ?? 0;
      health.latency?.counts.forEach((count, bucket) => {
        counters.counts[bucket] = (counters.counts[bucket] ?? 0) + count;
      });
    }
  }

  /**
   * Ends the current window now and returns its counters (versions without requests left
   * out); the next window starts where this one ends. Called every report interval.
   */
  takeReport(): HealthReport {
    const end = this.#now();
    const versions: VersionHealth[] = [];
    for (const [version, counters] of this.#byVersion) {
      if (counters.requests === 0) {
        // Idle for a whole window: an old version's requests have all finished.
        this.#byVersion.delete(version);
        if (this.#last === counters) this.#last = undefined;
        continue;
      }
      versions.push({
        version,
        requests: counters.requests,
        errors5xx: counters.errors5xx,
        latency: {
          boundsMs: [...LATENCY_BOUNDS_MS],
          counts: [...counters.counts],
          sumMs: counters.sumMs,
          count: counters.requests,
        },
      });
      counters.reset();
    }
    const report = { windowStartUnixMs: this.#windowStart, windowEndUnixMs: end, versions };
    this.#windowStart = end;
    return report;
  }

  #counters(version: number): VersionCounters {
    let counters = this.#last;
    if (counters === undefined || counters.version !== version) {
      counters = this.#byVersion.get(version);
      if (counters === undefined) {
        counters = new VersionCounters(version);
        this.#byVersion.set(version, counters);
      }
      this.#last = counters;
    }
    return counters;
  }
}
