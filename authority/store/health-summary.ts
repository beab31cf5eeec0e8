/**
 * A fleet's health per version over a time range, folded from the stored samples: what the
 * rollout controller's gates read (error rate, p95 latency, a minimum of agents). Pure; the
 * store selects the samples (AuthorityStore#healthSummary).
 */
import type { HealthSampleRow, LatencyHistogramRow } from "./rows.js";

export interface HealthSummary {
  readonly fleet: string;
  readonly version: number;
  /** Summed over every sample: all regions, all distributors, all windows. */
  readonly requests: number;
  readonly errors5xx: number;
  /**
   * How many agents served the version: per distributor, the most agents it merged into one
   * window, summed over distributors. An agent that moved between distributors counts at both.
   */
  readonly agents: number;
  readonly samples: number;
  /** The earliest start and the latest end of the samples' windows. */
  readonly windowStart: Date;
  readonly windowEnd: Date;
  /**
   * Summed bucket by bucket over the samples counted with the bounds most observations used:
   * histograms with other bounds cannot be added exactly. Null when no sample had one.
   */
  readonly latency: LatencyHistogramRow | null;
  /** Samples whose latency is not in `latency` (other bounds, or none); their requests still count. */
  readonly latencyExcluded: number;
}

/** One summary per version present in `samples`, lowest version first. */
export function summarizeHealth(samples: readonly HealthSampleRow[]): HealthSummary[] {
  const byVersion = new Map<number, HealthSampleRow[]>();
  for (const sample of samples) {
    const list = byVersion.get(sample.version);
    if (list === undefined) byVersion.set(sample.version, [sample]);
    else list.push(sample);
  }
  return [...byVersion.entries()].sort(([a], [b]) => a - b).map(([, list]) => summarizeVersion(list));
}

function summarizeVersion(samples: readonly HealthSampleRow[]): HealthSummary {
  const first = samples[0] as HealthSampleRow;
  let requests = 0;
  let errors5xx = 0;
  let windowStart = first.windowStart;
  let windowEnd = first.windowEnd;
  const agentsByDistributor = new Map<string, number>();
  for (const sample of samples) {
    requests += sample.requests;
    errors5xx += sample.errors5xx;
    if (sample.windowStart < windowStart) windowStart = sample.windowStart;
    if (sample.windowEnd > windowEnd) windowEnd = sample.windowEnd;
    const key = `${sample.region}\u0000${sample.distributorId}`;
    agentsByDistributor.set(key, Math.max(agentsByDistributor.get(key) ?? 0, sample.agents));
  }
  let agents = 0;
  for (const count of agentsByDistributor.values()) agents += count;
  const latency = sumLatency(samples);
  return {
    fleet: first.fleet,
    version: first.version,
    requests,
    errors5xx,
    agents,
    samples: samples.length,
    windowStart,
    windowEnd,
    latency: latency?.histogram ?? null,
    latencyExcluded: samples.length - (latency?.included ?? 0),
  };
}

/** The histograms of the bounds carrying the most observations (the first such on a tie), summed. */
function sumLatency(
  samples: readonly HealthSampleRow[],
): { histogram: LatencyHistogramRow; included: number } | undefined {
  const groups = new Map<string, HealthSampleRow[]>();
  for (const sample of samples) {
    const { boundsMs, counts } = sample.latency;
    if (boundsMs.length === 0 || counts.length !== boundsMs.length + 1) continue;
    const key = boundsMs.join(",");
    const group = groups.get(key);
    if (group === undefined) groups.set(key, [sample]);
    else group.push(sample);
  }
  let chosen: HealthSampleRow[] | undefined;
  let most = -1;
  for (const group of groups.values()) {
    const observations = group.reduce((total, sample) => total + sum(sample.latency.counts), 0);
    if (observations > most) {
      chosen = group;
      most = observations;
    }
  }
  if (chosen === undefined) return undefined;
  const boundsMs = (chosen[0] as HealthSampleRow).latency.boundsMs;
  const counts = new Array<number>(boundsMs.length + 1).fill(0);
  let sumMs = 0;
  for (const sample of chosen) {
    sample.latency.counts.forEach((count, index) => {
      counts[index] = (counts[index] ?? 0) + count;
    });
    sumMs += sample.latency.sumMs;
  }
  return { histogram: { boundsMs: [...boundsMs], counts, sumMs }, included: chosen.length };
}

function sum(values: readonly number[]): number {
  let total = 0;
  for (const value of values) total += value;
  return total;
}
