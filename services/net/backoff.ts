/**
 * Reconnect delays with full jitter (AWS Architecture Blog, "Exponential Backoff and
 * Jitter"): a delay drawn uniformly from [0, min(cap, base × 2^attempt)), so a fleet that lost
 * its distributor at once does not come back in lockstep.
 */

export interface BackoffOptions {
  readonly baseMs: number;
  readonly capMs: number;
  /** Uniform in [0, 1), as Math.random. */
  readonly random: () => number;
}

export class Backoff {
  readonly #options: BackoffOptions;
  #attempt = 0;

  constructor(options: BackoffOptions) {
    this.#options = options;
  }

  /** The delay before the next attempt, in ms; each call widens the range up to the cap. */
  next(): number {
    const { baseMs, capMs, random } = this.#options;
    // 2^attempt is bounded once it passes the cap, so the exponent cannot overflow.
    const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(this.#attempt, 30));
    this.#attempt++;
    return Math.floor(random() * ceiling);
  }

  /** Called once a connection worked: the next failure starts again from the base. */
  reset(): void {
    this.#attempt = 0;
  }
}
