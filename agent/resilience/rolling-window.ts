/**
 * Request outcomes over a rolling window, as a ring of SLOTS time slots (the style of
 * upstream/retry-budget.ts): recording is O(1) and allocates nothing, and totals are kept
 * running so reading them is O(1) too. Old outcomes leave the window a whole slot at a time,
 * so the window is exact to within one slot (a tenth of its length).
 */

const SLOTS = 10;

export class RollingWindow {
  readonly #requests = new Float64Array(SLOTS);
  readonly #failures = new Float64Array(SLOTS);
  #totalRequests = 0;
  #totalFailures = 0;
  #slot = 0;
  #slotStart: number;
  #slotMs: number;

  constructor(
    windowMs: number,
    private readonly now: () => number,
  ) {
    this.#slotMs = windowMs / SLOTS;
    this.#slotStart = now();
  }

  /** A new length applies from the next slot on; the outcomes already counted stay. */
  set windowMs(value: number) {
    this.#slotMs = value / SLOTS;
  }

  get windowMs(): number {
    return this.#slotMs * SLOTS;
  }

  record(success: boolean): void {
    this.#advance();
    this.#requests[this.#slot]! += 1;
    this.#totalRequests++;
    if (!success) {
      this.#failures[this.#slot]! += 1;
      this.#totalFailures++;
    }
  }

  get requests(): number {
    this.#advance();
    return this.#totalRequests;
  }

  get failures(): number {
    this.#advance();
    return this.#totalFailures;
  }

  /** Failed share of the window's requests, 0-100; 0 when the window is empty. */
  errorPercent(): number {
    this.#advance();
    return this.#totalRequests === 0 ? 0 : (this.#totalFailures * 100) / this.#totalRequests;
  }

  /** Forgets every outcome: the window starts afresh now. */
  reset(): void {
    this.#requests.fill(0);
    this.#failures.fill(0);
    this.#totalRequests = 0;
    this.#totalFailures = 0;
    this.#slotStart = this.now();
  }

  #advance(): void {
    const now = this.now();
    let steps = Math.floor((now - this.#slotStart) / this.#slotMs);
    if (steps <= 0) return;
    this.#slotStart += steps * this.#slotMs;
    for (steps = Math.min(steps, SLOTS); steps > 0; steps--) {
      this.#slot = (this.#slot + 1) % SLOTS;
      this.#totalRequests -= this.#requests[this.#slot]!;
      this.#totalFailures -= this.#failures[this.#slot]!;
      this.#requests[this.#slot] = 0;
      this.#failures[this.#slot] = 0;
    }
  }
}
