/**
 * Canary counters and the safety brake, one state per route, kept across snapshot swaps.
 *
 * A state lives as long as its route's plan: a swap whose plan for the route has the same
 * planKey keeps it — counters, window and brake — and a changed plan (a new config for that
 * route) gets a fresh state: counters from zero and the brake released. That is what "braked
 * until a new config arrives" means here: once latched, the brake holds until the operator
 * applies a changed traffic plan for the route; a config that leaves the plan as it was does
 * not release it. Requests still in flight on the old snapshot record into the old state,
 * which no longer counts.
 *
 * The brake compares error rates over a rolling window (safety_brake.window, 60 s by
 * default) kept in WINDOW_SLOTS slots, so it covers the last 90–100% of the window. After
 * each recorded request, once the window holds min_requests canary requests (20 by default),
 * it latches if the canary's error percentage exceeds the stable one's by more than
 * error_rate_margin points. With no stable request in the window the baseline is 0%. A latched
 * brake stops the window (only the totals go on); without a safety_brake there is no brake
 * and no window at all.
 */
import type { CompiledTrafficPlan } from "./traffic-plan.js";

const WINDOW_SLOTS = 10;

/** One row of GET /api/v2/traffic/canary. */
export interface CanaryRow {
  readonly route: string;
  readonly stable_pool: string;
  readonly canary_pool: string;
  /** As configured; while braked the canary gets none of the split regardless. */
  readonly canary_weight: number;
  /** Totals since the plan was applied. */
  readonly stable_requests: number;
  readonly canary_requests: number;
  readonly braked: boolean;
  readonly brake_reason?: string;
  /** ISO 8601. */
  readonly braked_at?: string;
  /** Failed share of the totals above, in percent, two decimals. */
  readonly canary_error_percent: number;
  readonly stable_error_percent: number;
}

/** Called once when a route's brake latches, for the log. */
export type BrakeListener = (route: string, reason: string) => void;

export interface CanaryRegistryOptions {
  readonly onBrake?: BrakeListener;
  readonly now?: () => number;
}

// Window counters, per slot, at these offsets.
const CANARY = 0;
const CANARY_FAILED = 1;
const STABLE = 2;
const STABLE_FAILED = 3;
const COUNTERS = 4;

export class CanaryState {
  readonly plan: CompiledTrafficPlan;
  readonly #now: () => number;
  readonly #onBrake: BrakeListener;
  #stableRequests = 0;
  #stableFailures = 0;
  #canaryRequests = 0;
  #canaryFailures = 0;
  /** WINDOW_SLOTS × COUNTERS, slot-major; `#inWindow` holds their sums per counter. */
  readonly #slots = new Float64Array(WINDOW_SLOTS * COUNTERS);
  readonly #inWindow = new Float64Array(COUNTERS);
  readonly #slotMs: number;
  #slot = 0;
  #slotStart: number;
  #braked = false;
  #brakeReason: string | undefined;
  #brakedAt: number | undefined;

  constructor(plan: CompiledTrafficPlan, now: () => number, onBrake: BrakeListener) {
    this.plan = plan;
    this.#now = now;
    this.#onBrake = onBrake;
    this.#slotMs = (plan.brake?.windowMs ?? 0) / WINDOW_SLOTS;
    this.#slotStart = now();
  }

  /** Read per request, before choosing the pool. */
  get braked(): boolean {
    return this.#braked;
  }

  /**
   * Called once per request that went to an upstream pool, when its outcome is known:
   * `failed` as for retries and breakers (connect error, reset, timeout or a 5xx).
   */
  record(variant: "stable" | "canary", failed: boolean): void {
    const canary = variant === "canary";
    if (canary) {
      this.#canaryRequests++;
      if (failed) this.#canaryFailures++;
    } else {
      this.#stableRequests++;
      if (failed) this.#stableFailures++;
    }
    const brake = this.plan.brake;
    if (brake === undefined || this.#braked) return;
    this.#advance();
    const base = this.#slot * COUNTERS;
    this.#count(base, canary ? CANARY : STABLE);
    if (failed) this.#count(base, canary ? CANARY_FAILED : STABLE_FAILED);
    const window = this.#inWindow;
    const canaryRequests = window[CANARY]!;
    if (canaryRequests < brake.minRequests) return;
    const canaryPercent = (window[CANARY_FAILED]! / canaryRequests) * 100;
    const stableRequests = window[STABLE]!;
    const stablePercent = stableRequests === 0 ? 0 : (window[STABLE_FAILED]! / stableRequests) * 100;
    if (canaryPercent - stablePercent > brake.marginPoints) {
      this.#latch(
        `canary error rate ${canaryPercent.toFixed(1)}% exceeds stable ${stablePercent.toFixed(1)}% ` +
          `by more than ${brake.marginPoints} points over ${brake.windowMs / 1000}s (${canaryRequests} requests)`,
      );
    }
  }

  /** The row for GET /api/v2/traffic/canary; undefined when the plan has no canary pool. */
  row(): CanaryRow | undefined {
    const { plan } = this;
    if (plan.canaryPool === undefined) return undefined;
    return {
      route: plan.route,
      stable_pool: plan.stablePool,
      canary_pool: plan.canaryPool,
      canary_weight: plan.canaryWeight,
      stable_requests: this.#stableRequests,
      canary_requests: this.#canaryRequests,
      braked: this.#braked,
      ...(this.#brakeReason !== undefined && { brake_reason: this.#brakeReason }),
      ...(this.#brakedAt !== undefined && { braked_at: new Date(this.#brakedAt).toISOString() }),
      canary_error_percent: percent(this.#canaryFailures, this.#canaryRequests),
      stable_error_percent: percent(this.#stableFailures, this.#stableRequests),
    };
  }

  #count(base: number, counter: number): void {
    this.#slots[base + counter]! += 1;
    this.#inWindow[counter]! += 1;
  }

  /** Moves to the slot of now, emptying the slots the window left behind. */
  #advance(): void {
    let steps = Math.floor((this.#now() - this.#slotStart) / this.#slotMs);
    if (steps <= 0) return;
    this.#slotStart += steps * this.#slotMs;
    for (steps = Math.min(steps, WINDOW_SLOTS); steps > 0; steps--) {
      this.#slot = (this.#slot + 1) % WINDOW_SLOTS;
      const base = this.#slot * COUNTERS;
      for (let counter = 0; counter < COUNTERS; counter++) {
        this.#inWindow[counter]! -= this.#slots[base + counter]!;
        this.#slots[base + counter] = 0;
      }
    }
  }

  #latch(reason: string): void {
    this.#braked = true;
    this.#brakeReason = reason;
    this.#brakedAt = this.#now();
    this.#onBrake(this.plan.route, reason);
  }
}

function percent(part: number, whole: number): number {
  return whole === 0 ? 0 : Math.round((part / whole) * 10_000) / 100;
}

/** Canary states by route id. */
export class CanaryRegistry {
  readonly #states = new Map<string, CanaryState>();
  readonly #now: () => number;
  readonly #onBrake: BrakeListener;

  constructor(options: CanaryRegistryOptions = {}) {
    this.#now = options.now ?? Date.now;
    this.#onBrake = options.onBrake ?? (() => {});
  }

  /** Called when a snapshot is bound: the route's state, fresh when its plan changed. */
  stateFor(route: string, plan: CompiledTrafficPlan): CanaryState {
    let state = this.#states.get(route);
    if (state === undefined || state.plan.planKey !== plan.planKey) {
      state = new CanaryState(plan, this.#now, this.#onBrake);
      this.#states.set(route, state);
    }
    return state;
  }

  /** Drops the states of routes the active config no longer plans traffic for. */
  retain(routes: ReadonlySet<string>): void {
    for (const route of this.#states.keys()) if (!routes.has(route)) this.#states.delete(route);
  }

  /** GET /api/v2/traffic/canary: one row per route with a canary pool, by route id. */
  list(): CanaryRow[] {
    const rows: CanaryRow[] = [];
    for (const state of this.#states.values()) {
      const row = state.row();
      if (row !== undefined) rows.push(row);
    }
    return rows.sort((a, b) => (a.route < b.route ? -1 : a.route > b.route ? 1 : 0));
  }
}
