/**
 * Request coalescing (`coalesce: true`): of concurrent misses for one key, the first — the
 * leader — goes upstream; the others — followers — wait for it.
 *
 * The leader calls `done(stored)` once its answer is known: stored, or not storable, failed or
 * abandoned. Followers then learn "stored" (look the entry up again; a request of another
 * Vary variant may still miss, and then goes upstream) or "go_upstream". A follower waiting
 * longer than `coalesce_timeout` goes upstream on its own. A leader that never reports cannot
 * hold its key: after the timeout the next miss becomes a new leader.
 */

export type CoalesceOutcome = "stored" | "go_upstream";

export interface LeaderTicket {
  readonly leader: true;
  /** Idempotent; only the first call counts. */
  done(stored: boolean): void;
}

export interface FollowerTicket {
  readonly leader: false;
  readonly wait: Promise<CoalesceOutcome>;
}

export type CoalesceTicket = LeaderTicket | FollowerTicket;

interface Waiter {
  readonly resolve: (outcome: CoalesceOutcome) => void;
  timer: NodeJS.Timeout | undefined;
}

class Flight implements LeaderTicket {
  readonly leader = true;
  readonly waiters = new Set<Waiter>();
  #settled = false;

  constructor(
    readonly coalescer: Coalescer,
    readonly key: string,
    readonly startedAt: number,
  ) {}

  done(stored: boolean): void {
    if (this.#settled) return;
    this.#settled = true;
    this.coalescer.settle(this, stored ? "stored" : "go_upstream");
  }
}

export class Coalescer {
  readonly #flights = new Map<string, Flight>();
  readonly #now: () => number;
  #timeoutMs: number;
  #waiting = 0;

  constructor(timeoutMs: number, now: () => number = Date.now) {
    this.#timeoutMs = timeoutMs;
    this.#now = now;
  }

  /** Requests now waiting for a leader: the gauge `proxy_cache_coalesce_waiters`. */
  get waiters(): number {
    return this.#waiting;
  }

  /** For requests that join from now on. */
  set timeoutMs(ms: number) {
    this.#timeoutMs = ms;
  }

  /** Called on a miss that may be stored; a leader must call `done`, whatever happens. */
  join(key: string): CoalesceTicket {
    const now = this.#now();
    const flight = this.#flights.get(key);
    if (flight !== undefined && now - flight.startedAt < this.#timeoutMs) {
      return { leader: false, wait: this.#follow(flight) };
    }
    const leader = new Flight(this, key, now);
    this.#flights.set(key, leader);
    return leader;
  }

  /** Sends every follower upstream (the route's cache is going away or coalescing was turned off). */
  releaseAll(): void {
    for (const flight of [...this.#flights.values()]) flight.done(false);
  }

  /** Called by a leader's `done`. */
  settle(flight: Flight, outcome: CoalesceOutcome): void {
    // A flight given up for a newer leader must not end the newer one.
    if (this.#flights.get(flight.key) === flight) this.#flights.delete(flight.key);
    for (const waiter of flight.waiters) {
      clearTimeout(waiter.timer);
      waiter.resolve(outcome);
    }
    this.#waiting -= flight.waiters.size;
    flight.waiters.clear();
  }

  #follow(flight: Flight): Promise<CoalesceOutcome> {
    return new Promise((resolve) => {
      const waiter: Waiter = { resolve, timer: undefined };
      waiter.timer = setTimeout(() => {
        if (!flight.waiters.delete(waiter)) return;
        this.#waiting--;
        resolve("go_upstream");
      }, this.#timeoutMs);
      waiter.timer.unref();
      flight.waiters.add(waiter);
      this.#waiting++;
    });
  }
}
