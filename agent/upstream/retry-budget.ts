/**
 * Retry budgets, one per route, kept across snapshot swaps. A retry is allowed while the
 * retries of the last window stay under `budget_percent` of the successful requests of that
 * window — so a failing upstream sees at most that much extra load, never a retry storm —
 * or while fewer than MIN_CONCURRENT retries are in flight, so a quiet route can still retry.
 */

const WINDOW_MS = 10_000;
const SLOTS = 10;
const SLOT_MS = WINDOW_MS / SLOTS;
const MIN_CONCURRENT = 3;

export class RetryBudget {
  #percent: number;
  readonly #successes = new Float64Array(SLOTS);
  readonly #retries = new Float64Array(SLOTS);
  #slot = 0;
  #slotStart: number;
  #inFlight = 0;

  constructor(
    percent: number,
    private readonly now: () => number = Date.now,
  ) {
    this.#percent = percent;
    this.#slotStart = now();
  }

  set percent(value: number) {
    this.#percent = value;
  }

  recordSuccess(): void {
    this.#advance();
    this.#successes[this.#slot]! += 1;
  }

  /** Takes a retry from the budget; false when none is left. Call `release` when it ends. */
  tryAcquire(): boolean {
    this.#advance();
    const allowed =
      this.#inFlight < MIN_CONCURRENT || sum(this.#retries) < (sum(this.#successes) * this.#percent) / 100;
    if (!allowed) return false;
    this.#retries[this.#slot]! += 1;
    this.#inFlight++;
    return true;
  }

  release(): void {
    this.#inFlight--;
  }

  /** Retries still allowed now by the percentage rule (the floor aside). */
  get tokens(): number {
    this.#advance();
    return Math.max(0, (sum(this.#successes) * this.#percent) / 100 - sum(this.#retries));
  }

  #advance(): void {
    const now = this.now();
    let steps = Math.floor((now - this.#slotStart) / SLOT_MS);
    if (steps <= 0) return;
    this.#slotStart += steps * SLOT_MS;
    for (steps = Math.min(steps, SLOTS); steps > 0; steps--) {
      this.#slot = (this.#slot + 1) % SLOTS;
      this.#successes[this.#slot] = 0;
      this.#retries[this.#slot] = 0;
    }
  }
}

function sum(values: Float64Array): number {
  let total = 0;
  for (const value of values) total += value;
  return total;
}

/** Budgets by route id; a route that stays across a swap keeps its history. */
export class RetryBudgetRegistry {
  readonly #budgets = new Map<string, RetryBudget>();

  budgetFor(route: string, percent: number): RetryBudget {
    let budget = this.#budgets.get(route);
    if (!budget) {
      budget = new RetryBudget(percent);
      this.#budgets.set(route, budget);
    } else budget.percent = percent;
    return budget;
  }

  /** Each route's tokens now, for the proxy_retry_budget_tokens gauge. */
  *tokens(): Iterable<readonly [string, number]> {
    for (const [route, budget] of this.#budgets) yield [route, budget.tokens];
  }

  /** Drops the budgets of routes the active config no longer has. */
  retain(routes: ReadonlySet<string>): void {
    for (const id of this.#budgets.keys()) if (!routes.has(id)) this.#budgets.delete(id);
  }
}
