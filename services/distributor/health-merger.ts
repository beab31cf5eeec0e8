/**
 * Merges agents' HealthReports per (fleet, version, region) between two flushes: counters
 * are window deltas, so merging is a sum; the sample's window spans the merged reports. A
 * latency histogram is summed only with the bounds of the first report merged: one with other
 * bounds adds its requests and errors but not its latency, since it cannot be merged exactly.
 */
import type { HealthSample } from "../../proto/coherent/v1/authority.js";
import type { LatencyHistogram } from "../../proto/coherent/v1/common.js";
import type { HealthReport } from "../../proto/coherent/v1/distribution.js";

interface Pending {
  readonly sample: HealthSample;
  readonly agents: Set<string>;
}

export class HealthMerger {
  readonly #pending = new Map<string, Pending>();

  add(agentId: string, fleet: string, region: string, report: HealthReport): void {
    for (const entry of report.versions) {
      const key = `${fleet}\u0000${entry.version}\u0000${region}`;
      let pending = this.#pending.get(key);
      if (pending === undefined) {
        pending = {
          sample: {
            fleet,
            version: entry.version,
            region,
            windowStartUnixMs: report.windowStartUnixMs,
            windowEndUnixMs: report.windowEndUnixMs,
            requests: 0,
            errors5xx: 0,
            latency: entry.latency === undefined ? undefined : emptyLike(entry.latency),
            agents: 0,
          },
          agents: new Set(),
        };
        this.#pending.set(key, pending);
      }
      const sample = pending.sample;
      sample.windowStartUnixMs = Math.min(sample.windowStartUnixMs, report.windowStartUnixMs);
      sample.windowEndUnixMs = Math.max(sample.windowEndUnixMs, report.windowEndUnixMs);
      sample.requests += entry.requests;
      sample.errors5xx += entry.errors5xx;
      if (sample.latency === undefined && entry.latency !== undefined)
        sample.latency = emptyLike(entry.latency);
      if (sample.latency !== undefined && entry.latency !== undefined) addInto(sample.latency, entry.latency);
      pending.agents.add(agentId);
      sample.agents = pending.agents.size;
    }
  }

  /** The samples merged since the previous drain; empty when no report came. */
  drain(): HealthSample[] {
    const samples: HealthSample[] = [];
    for (const pending of this.#pending.values()) samples.push(pending.sample);
    this.#pending.clear();
    return samples;
  }
}

function emptyLike(histogram: LatencyHistogram): LatencyHistogram {
  return {
    boundsMs: [...histogram.boundsMs],
    counts: new Array<number>(histogram.boundsMs.length + 1).fill(0),
    sumMs: 0,
    count: 0,
  };
}

function addInto(into: LatencyHistogram, from: LatencyHistogram): void {
  if (!sameBounds(into.boundsMs, from.boundsMs) || from.counts.length !== into.counts.length) return;
  for (let i = 0; i < from.counts.length; i++) into.counts[i] = (into.counts[i] ?? 0) + (from.counts[i] ?? 0);
  into.sumMs += from.sumMs;
  into.count += from.count;
}

function sameBounds(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
