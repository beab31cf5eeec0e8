/**
 * Overload protection for a route: at most `limit` requests in flight, up to `queue_size` more
 * waiting in FIFO order for at most `queue_timeout`, and the rest refused at once.
 *
 * Queue timeouts use one timer, armed for the head of the queue only while something waits:
 * deadlines are enqueue time plus the current `queue_timeout`, so they rise in queue order and
 * when the timer fires it rejects the expired prefix and re-arms for the new head. A waiter
 * that leaves the queue early does not move the timer: it fires, finds nothing due, re-arms.
 *
 * With `adaptive: true` the limit follows latency, in the manner of Netflix concurrency-limits'
 * Gradient2: a long-term RTT average (the no-load baseline) against a short-term one; their
 * ratio, times a tolerance, is the gradient (clamped to [0.5, 1], so one outlier can at most
 * halve the target), and the target is `limit * gradient + sqrt(limit)` — the square root is
 * the queueing allowed before latency must rise — smoothed into the limit and bounded to
 * [min_concurrent, max_concurrent]. A dropped request (failed, timed out) has no meaningful RTT
 * (a refused connection is fast, a timeout is the timeout) so it does not feed the averages;
 * instead it cuts the limit by a fixed factor, the multiplicative decrease of AIMD, which is
 * how loss-based limiters react to loss. The limit starts at `max_concurrent`: a config swap or
 * a restart should not throttle a route that was healthy.
 */
import type { TrafficPlan } from "../../services/config/index.js";

export type OverloadConfig = NonNullable<TrafficPlan["overload_protection"]>;

export interface LimiterSettings {
  readonly maxConcurrent: number;
  readonly queueSize: number;
  readonly queueTimeoutMs: number;
  readonly adaptive: boolean;
  /** The adaptive limit's floor; never above maxConcurrent. */
  readonly minConcurrent: number;
}

export function limiterSettings(config: OverloadConfig): LimiterSettings {
  return {
    maxConcurrent: config.max_concurrent,
    queueSize: config.queue_size ?? 0,
    queueTimeoutMs: config.queue_timeout ?? 1000,
    adaptive: config.adaptive ?? false,
    minConcurrent: Math.min(config.min_concurrent ?? 1, config.max_concurrent),
  };
}

/** A queued request: exactly one of these is called, unless it is cancelled first. */
export interface Waiter {
  /** A slot is now the waiter's; it calls `release` when done, as after `tryAcquire`. */
  grant(): void;
  /** Not admitted in time (or at all): answer 503 overloaded. */
  reject(): void;
}

export interface Timer {
  close(): void;
}

/** Starts a one-shot timer; the default does not keep the process alive. */
export type SetTimer = (callback: () => void, ms: number) => Timer;

const realTimer: SetTimer = (callback, ms) => setTimeout(callback, ms).unref();

/** Gradient2's constants (its defaults). */
const LONG_WINDOW = 600;
const WARMUP = 10;
const SHORT_WINDOW = 10;
const TOLERANCE = 1.5;
const SMOOTHING = 0.2;
/** Share of the limit kept after a dropped request. */
const DROP_BACKOFF = 0.9;
/** Floor for an RTT sample, so a 0 ms answer does not divide by zero. */
const MIN_RTT_MS = 0.001;

export class ConcurrencyLimiter {
  #settings: LimiterSettings;
  #estimate: number;
  #limit: number;
  #inFlight = 0;
  /** Waiters and their enqueue times; a Map keeps FIFO order and deletes in O(1). */
  readonly #queue = new Map<Waiter, number>();
  #timer: Timer | undefined;
  #longRtt = 0;
  #shortRtt = 0;
  #samples = 0;

  constructor(
    settings: LimiterSettings,
    private readonly now: () => number = Date.now,
    private readonly setTimer: SetTimer = realTimer,
  ) {
    this.#settings = settings;
    this.#estimate = settings.maxConcurrent;
    this.#limit = settings.maxConcurrent;
  }

  /**
   * Applies a new config; the adaptive estimate is kept within the new bounds, and waiters'
   * deadlines follow the new `queue_timeout`.
   */
  update(settings: LimiterSettings): void {
    this.#settings = settings;
    this.#setEstimate(settings.adaptive ? this.#estimate : settings.maxConcurrent);
    this.#drain();
    if (this.#timer) {
      this.#stopTimer();
      this.#expire();
    }
  }

  get limit(): number {
    return this.#limit;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  get queued(): number {
    return this.#queue.size;
  }

  /** Takes a slot if one is free and nobody waits for one; pair a true with `release`. */
  tryAcquire(): boolean {
    if (this.#inFlight >= this.#limit || this.#queue.size > 0) return false;
    this.#inFlight++;
    return true;
  }

  /** Queues a waiter after `tryAcquire` said no; false when the queue is full (answer 503 at once). */
  enqueue(waiter: Waiter): boolean {
    if (this.#queue.size >= this.#settings.queueSize) return false;
    this.#queue.set(waiter, this.now());
    // A queue that was not empty has its timer already (or #expire is running and arms it).
    if (this.#queue.size === 1) this.#timer ??= this.setTimer(this.#expire, this.#settings.queueTimeoutMs);
    return true;
  }

  /** Takes a waiter out of the queue (its client went away); neither callback will be called. */
  cancel(waiter: Waiter): void {
    if (this.#queue.delete(waiter) && this.#queue.size === 0) this.#stopTimer();
  }

  /**
   * Frees a slot when a request ends. `latencyMs` is its time to answer; `dropped` marks a
   * failure or timeout, which only an adaptive limit takes into account.
   */
  release(latencyMs: number, dropped: boolean): void {
    const inFlight = this.#inFlight--;
    if (this.#settings.adaptive) {
      if (dropped) this.#setEstimate(this.#estimate * DROP_BACKOFF);
      else this.#sample(Math.max(latencyMs, MIN_RTT_MS), inFlight);
    }
    this.#drain();
  }

  /** Lets every waiter through, for a limiter no config uses any more. */
  close(): void {
    this.#stopTimer();
    for (const waiter of this.#queue.keys()) {
      this.#queue.delete(waiter);
      this.#inFlight++;
      waiter.grant();
    }
  }

  #sample(rtt: number, inFlight: number): void {
    if (this.#samples < WARMUP) {
      this.#samples++;
      this.#longRtt += (rtt - this.#longRtt) / this.#samples;
      this.#shortRtt = this.#longRtt;
    } else {
      this.#longRtt += (rtt - this.#longRtt) * (2 / (LONG_WINDOW + 1));
      this.#shortRtt += (rtt - this.#shortRtt) * (2 / (SHORT_WINDOW + 1));
    }
    // After a long overload the baseline has crept up; pull it down faster than its EMA
    // would, or the limit stays low long after latency recovered.
    if (this.#longRtt / this.#shortRtt > 2) this.#longRtt *= 0.95;

    const estimate = this.#estimate;
    const gradient = Math.max(0.5, Math.min(1, (TOLERANCE * this.#longRtt) / this.#shortRtt));
    const target = estimate * gradient + Math.sqrt(estimate);
    const next = estimate * (1 - SMOOTHING) + target * SMOOTHING;
    // Less than half the limit in use says nothing about whether a higher one would hold.
    if (next > estimate && inFlight < estimate / 2) return;
    this.#setEstimate(next);
  }

  #setEstimate(value: number): void {
    const s = this.#settings;
    this.#estimate = Math.max(s.minConcurrent, Math.min(s.maxConcurrent, value));
    this.#limit = Math.floor(this.#estimate);
  }

  /** Hands freed slots to the head of the queue. A grant may re-enter (release at once). */
  #drain(): void {
    // Checked first so a release with nobody waiting creates no iterator.
    if (this.#queue.size === 0) return;
    for (const waiter of this.#queue.keys()) {
      if (this.#inFlight >= this.#limit) return;
      this.#queue.delete(waiter);
      this.#inFlight++;
      waiter.grant();
    }
    this.#stopTimer();
  }

  readonly #expire = (): void => {
    this.#timer = undefined;
    const timeout = this.#settings.queueTimeoutMs;
    const now = this.now();
    for (const [waiter, since] of this.#queue) {
      const wait = since + timeout - now;
      if (wait > 0) {
        this.#timer ??= this.setTimer(this.#expire, wait);
        return;
      }
      this.#queue.delete(waiter);
      waiter.reject();
    }
  };

  #stopTimer(): void {
    this.#timer?.close();
    this.#timer = undefined;
  }
}

export interface LimiterStatus {
  readonly route: string;
  readonly limit: number;
  readonly inFlight: number;
  readonly queued: number;
}

/** Limiters by route id; a route that stays across a swap keeps its slots, queue and limit. */
export class LimiterRegistry {
  readonly #limiters = new Map<string, ConcurrencyLimiter>();

  constructor(
    private readonly now: () => number = Date.now,
    private readonly setTimer: SetTimer = realTimer,
  ) {}

  limiterFor(route: string, settings: LimiterSettings): ConcurrencyLimiter {
    let limiter = this.#limiters.get(route);
    if (limiter) limiter.update(settings);
    else {
      limiter = new ConcurrencyLimiter(settings, this.now, this.setTimer);
      this.#limiters.set(route, limiter);
    }
    return limiter;
  }

  /** Drops the limiters of routes the active config no longer protects, letting their queues go. */
  retain(routes: ReadonlySet<string>): void {
    for (const [route, limiter] of this.#limiters) {
      if (routes.has(route)) continue;
      this.#limiters.delete(route);
      limiter.close();
    }
  }

  list(): LimiterStatus[] {
    return Array.from(this.#limiters, ([route, l]) => ({
      route,
      limit: l.limit,
      inFlight: l.inFlight,
      queued: l.queued,
    }));
  }
}
