/**
 * Counters and histograms for the request path. A child is plain numbers that the request path
 * bumps; prom-client reads them only when /metrics is scraped. prom-client's own children hash
 * their label set on every inc() and observe(), and with four observations per request that was
 * a measurable share of the agent's CPU per request (see test/bench/proxy.bench.ts).
 *
 * Both classes speak prom-client's metric protocol (name, help, type, aggregator, get()), so the
 * registry renders them and AggregatorRegistry sums them across cluster workers like its own.
 */
import type { Aggregator, Metric, Registry } from "prom-client";

/** A label left out is not exported (as prom-client does), e.g. a breaker of a route has no pool. */
type Labels<L extends string> = Readonly<Partial<Record<L, string>>>;

interface ExportedValue {
  value: number;
  labels: Readonly<Partial<Record<string, string | number>>>;
  metricName?: string;
}

interface MetricOptions<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly L[];
  readonly registers: readonly Registry[];
  /** Called at scrape time before reading, for counts kept elsewhere (set child values). */
  readonly collect?: () => void;
}

abstract class HotMetric<L extends string, Child> {
  readonly name: string;
  readonly help: string;
  readonly aggregator: Aggregator = "sum";
  abstract readonly type: "counter" | "histogram";
  readonly #labelNames: readonly L[];
  readonly #children = new Map<string, { labels: Labels<L>; child: Child }>();
  readonly #collect: (() => void) | undefined;

  constructor(options: MetricOptions<L>) {
    this.#collect = options.collect;
    this.name = options.name;
    this.help = options.help;
    this.#labelNames = options.labelNames;
    for (const registry of options.registers) {
      // The registry only reads name, help, type, aggregator and get(); its typings name just
      // prom-client's own four classes.
      registry.registerMetric(this as unknown as Metric);
    }
  }

  /** The child for a label set, made once; callers keep it and skip the lookup afterwards. */
  labels(labels: Labels<L>): Child {
    const key = this.#labelNames.map((name) => labels[name] ?? "").join("\u0000");
    let entry = this.#children.get(key);
    if (!entry) {
      entry = { labels: { ...labels }, child: this.createChild() };
      this.#children.set(key, entry);
    }
    return entry.child;
  }

  async get(): Promise<{
    name: string;
    help: string;
    type: string;
    aggregator: Aggregator;
    values: ExportedValue[];
  }> {
    this.#collect?.();
    const values: ExportedValue[] = [];
    for (const { labels, child } of this.#children.values()) this.export(labels, child, values);
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  /** prom-client's string rendering asks for this when a metric defines it; same data. */
  getForPromString() {
    return this.get();
  }

  reset(): void {
    this.#children.clear();
  }

  /** Drops the children whose labels `keep` refuses; a caller that still holds one only loses its counts. */
  retain(keep: (labels: Labels<L>) => boolean): void {
    for (const [key, { labels }] of this.#children) if (!keep(labels)) this.#children.delete(key);
  }

  protected abstract createChild(): Child;
  protected abstract export(labels: Labels<L>, child: Child, into: ExportedValue[]): void;
}

export class CounterChild {
  value = 0;
  inc(by = 1): void {
    this.value += by;
  }
}

export class HotCounter<L extends string> extends HotMetric<L, CounterChild> {
  readonly type = "counter";

  protected createChild(): CounterChild {
    return new CounterChild();
  }

  protected export(labels: Labels<L>, child: CounterChild, into: ExportedValue[]): void {
    into.push({ labels: { ...labels }, value: child.value });
  }
}

export class HistogramChild {
  /** counts[i] holds observations in (bounds[i-1], bounds[i]]; the last slot is above every bound. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > (bounds[i] as number)) i++;
    this.counts[i] = (this.counts[i] as number) + 1;
    this.sum += value;
    this.count++;
  }
}

export class HotHistogram<L extends string> extends HotMetric<L, HistogramChild> {
  readonly type = "histogram";
  readonly #bounds: readonly number[];

  constructor(options: MetricOptions<L> & { readonly buckets: readonly number[] }) {
    super(options);
    this.#bounds = [...options.buckets].sort((a, b) => a - b);
  }

  protected createChild(): HistogramChild {
    return new HistogramChild(this.#bounds);
  }

  protected export(labels: Labels<L>, child: HistogramChild, into: ExportedValue[]): void {
    const bucketName = `${this.name}_bucket`;
    let cumulative = 0;
    child.bounds.forEach((bound, i) => {
      cumulative += child.counts[i] as number;
      into.push({ metricName: bucketName, labels: { le: bound, ...labels }, value: cumulative });
    });
    into.push({ metricName: bucketName, labels: { le: "+Inf", ...labels }, value: child.count });
    into.push({ metricName: `${this.name}_sum`, labels: { ...labels }, value: child.sum });
    into.push({ metricName: `${this.name}_count`, labels: { ...labels }, value: child.count });
  }
}
