/**
 * Circuit breakers, one per pool ("pool:<id>") or route ("route:<id>"), kept across snapshot
 * swaps. A breaker trips open when, over its rolling window, at least `min_requests` requests
 * ended and at least `error_threshold_percent` of them failed; it then refuses everything for
 * `open_duration`, after which the next admission turns it half-open and lets
 * `half_open_requests` probes through: all of them succeeding closes it with a fresh window, any
 * failing opens it again. It also caps requests in flight and requests waiting for a connection.
 *
 * The caller pairs every "ok" from `admit` with exactly one `done`. Outcomes carry no ticket, so
 * while half-open every outcome counts as a probe's — including one of a request admitted before
 * the trip, which says as much about the upstream as a probe would.
 */
import type { Pool } from "../../services/config/index.js";
import { RollingWindow } from "./rolling-window.js";

export type BreakerConfig = NonNullable<Pool["circuit_breaker"]>;

export type BreakerState = "closed" | "open" | "half_open";

/** Why `admit` answered: "ok" lets the request through, anything else refuses it. */
export type Admission = "ok" | "open" | "max_concurrent" | "max_pending";

/** A breaker's config with every default applied. */
export interface BreakerSettings {
  readonly errorThresholdPercent: number;
  readonly minRequests: number;
  readonly openDurationMs: number;
  readonly windowMs: number;
  readonly halfOpenRequests: number;
  /** Requests in flight at once; Infinity: no limit. */
  readonly maxConcurrentRequests: number;
  /** Requests waiting for a connection at once; Infinity: no limit. */
  readonly maxPendingRequests: number;
}

export const BREAKER_DEFAULTS: BreakerSettings = {
  errorThresholdPercent: 50,
  minRequests: 20,
  openDurationMs: 30_000,
  windowMs: 10_000,
  halfOpenRequests: 3,
  maxConcurrentRequests: Number.POSITIVE_INFINITY,
  maxPendingRequests: Number.POSITIVE_INFINITY,
};

export function breakerSettings(config: BreakerConfig): BreakerSettings {
  const d = BREAKER_DEFAULTS;
  return {
    errorThresholdPercent: config.error_threshold_percent ?? d.errorThresholdPercent,
    minRequests: config.min_requests ?? d.minRequests,
    openDurationMs: config.open_duration ?? d.openDurationMs,
    windowMs: config.window ?? d.windowMs,
    halfOpenRequests: config.half_open_requests ?? d.halfOpenRequests,
    maxConcurrentRequests: config.max_concurrent_requests ?? d.maxConcurrentRequests,
    maxPendingRequests: config.max_pending_requests ?? d.maxPendingRequests,
  };
}

/** Told of every state change, for logs and metrics; `reason` is a sentence for a person. */
export type TransitionListener = (from: BreakerState, to: BreakerState, reason: string) => void;

export class CircuitBreaker {
  #settings: BreakerSettings;
  readonly #window: RollingWindow;
  #state: BreakerState = "closed";
  #openedAt = 0;
  #trips = 0;
  #inFlight = 0;
  /** Probes let through in the current half-open period, and their successes so far. */
  #probes = 0;
  #probeSuccesses = 0;

  constructor(
    settings: BreakerSettings,
    private readonly now: () => number = Date.now,
    private readonly onTransition?: TransitionListener,
  ) {
    this.#settings = settings;
    this.#window = new RollingWindow(settings.windowMs, now);
  }

  /** Applies a new config; the state, its history and the requests in flight stay. */
  update(settings: BreakerSettings): void {
    this.#settings = settings;
    this.#window.windowMs = settings.windowMs;
  }

  get settings(): BreakerSettings {
    return this.#settings;
  }

  get state(): BreakerState {
    return this.#state;
  }

  /** Times the breaker went to open, from closed or from half-open. */
  get trips(): number {
    return this.#trips;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  errorPercent(): number {
    return this.#window.errorPercent();
  }

  /**
   * Called before a request is sent; `pending` is how many requests already wait for a
   * connection. An open breaker turns half-open here once `open_duration` has passed, so the
   * state reads "open" until the first request after that.
   */
  admit(pending: number): Admission {
    const s = this.#settings;
    if (this.#state === "open") {
      if (this.now() - this.#openedAt < s.openDurationMs) return "open";
      this.#probes = 0;
      this.#probeSuccesses = 0;
      this.#transition("half_open", `open for ${formatMs(s.openDurationMs)}`);
    }
    if (this.#state === "half_open" && this.#probes >= s.halfOpenRequests) return "open";
    if (pending >= s.maxPendingRequests) return "max_pending";
    if (this.#inFlight >= s.maxConcurrentRequests) return "max_concurrent";
    this.#inFlight++;
    if (this.#state === "half_open") this.#probes++;
    return "ok";
  }

  /**
   * Called once for every "ok" admission when its request ends; a failure is as the README
   * defines it. Outcomes that end while open are not counted: the window restarts on closing.
   */
  done(success: boolean): void {
    this.#inFlight--;
    if (this.#state === "closed") {
      this.#window.record(success);
      this.#checkTrip();
    } else if (this.#state === "half_open") {
      if (!success) {
        this.#open(
          `probe failed after ${this.#probeSuccesses} of ${this.#settings.halfOpenRequests} succeeded`,
        );
      } else if (++this.#probeSuccesses >= this.#settings.halfOpenRequests) {
        this.#window.reset();
        this.#transition("closed", `${this.#probeSuccesses} probes succeeded`);
      }
    }
  }

  /**
   * Gives back an "ok" admission whose request never reached the upstream (another check
   * refused it afterwards): nothing is recorded, and a half-open probe slot is returned.
   */
  abandon(): void {
    this.#inFlight--;
    if (this.#state === "half_open" && this.#probes > 0) this.#probes--;
  }

  #checkTrip(): void {
    const s = this.#settings;
    const requests = this.#window.requests;
    if (requests < s.minRequests || this.#window.failures === 0) return;
    const percent = this.#window.errorPercent();
    if (percent < s.errorThresholdPercent) return;
    this.#open(
      `error rate ${Math.round(percent)}% >= ${s.errorThresholdPercent}% over ${formatMs(s.windowMs)} (${requests} requests)`,
    );
  }

  #open(reason: string): void {
    this.#openedAt = this.now();
    this.#trips++;
    this.#transition("open", reason);
  }

  #transition(to: BreakerState, reason: string): void {
    const from = this.#state;
    this.#state = to;
    this.onTransition?.(from, to, reason);
  }
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

export interface BreakerStatus {
  readonly key: string;
  readonly state: BreakerState;
  readonly trips: number;
  readonly inFlight: number;
  readonly errorPercent: number;
}

/** Breakers by key; a pool or route that stays across a swap keeps its breaker's state. */
export class BreakerRegistry {
  readonly #breakers = new Map<string, CircuitBreaker>();

  constructor(
    private readonly onTransition?: (
      key: string,
      from: BreakerState,
      to: BreakerState,
      reason: string,
    ) => void,
    private readonly now: () => number = Date.now,
  ) {}

  breakerFor(key: string, settings: BreakerSettings): CircuitBreaker {
    let breaker = this.#breakers.get(key);
    if (breaker) breaker.update(settings);
    else {
      const listener = this.onTransition;
      breaker = new CircuitBreaker(
        settings,
        this.now,
        listener && ((from, to, reason) => listener(key, from, to, reason)),
      );
      this.#breakers.set(key, breaker);
    }
    return breaker;
  }

  /** Drops the breakers whose keys the active config no longer has. */
  retain(keys: ReadonlySet<string>): void {
    for (const key of this.#breakers.keys()) if (!keys.has(key)) this.#breakers.delete(key);
  }

  list(): BreakerStatus[] {
    return Array.from(this.#breakers, ([key, b]) => ({
      key,
      state: b.state,
      trips: b.trips,
      inFlight: b.inFlight,
      errorPercent: b.errorPercent(),
    }));
  }
}
