/**
 * Which controller acts. With Postgres: a session advisory lock held on a dedicated
 * connection (a pooled one would hand the lock back with the connection). The holder checks
 * the connection every `checkMs`; an error, a slow answer or a closed socket ends its
 * leadership at once, before anything else is written, and it tries again later. A process
 * killed outright closes its socket, Postgres drops its session and the lock with it, and a
 * waiting controller takes over on its next try.
 *
 * Each new leadership gets a higher epoch from the `controller_lease` row; the controller
 * stamps its writes with it (see rollout-store.ts), so a leader that lost the lock but has not
 * noticed yet cannot overwrite its successor's work.
 *
 * With PGlite the database lives inside one process, which is therefore the only controller.
 */
import { EventEmitter } from "node:events";
import pg from "pg";

export interface Leadership {
  /** True while this process may act. */
  readonly isLeader: boolean;
  /** Calls `fn` on every change; returns the unsubscribe function. */
  onChange(fn: (leader: boolean) => void): () => void;
  start(): void;
  /** Gives the lock up; idempotent. */
  stop(): Promise<void>;
}

/** The lock's key is per schema, so tests in separate schemas of one database elect apart. */
export function lockName(schema: string | undefined): string {
  return `coherent.rollout-controller:${schema ?? "public"}`;
}

/** The part every leadership shares: the flag and its change events. */
abstract class LeadershipState {
  readonly #events = new EventEmitter();
  #leader = false;

  get isLeader(): boolean {
    return this.#leader;
  }

  onChange(fn: (leader: boolean) => void): () => void {
    this.#events.on("change", fn);
    return () => this.#events.off("change", fn);
  }

  protected set(leader: boolean): void {
    if (this.#leader === leader) return;
    this.#leader = leader;
    this.#events.emit("change", leader);
  }
}

export interface PostgresLeadershipOptions {
  readonly url: string;
  readonly schema?: string;
  /** How often the holder checks its connection and a waiter tries the lock; 1 s by default. */
  readonly checkMs?: number;
  readonly onError?: (error: Error) => void;
}

export class PostgresLeadership extends LeadershipState implements Leadership {
  readonly #options: PostgresLeadershipOptions;
  readonly #checkMs: number;
  #client: pg.Client | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #busy = false;

  constructor(options: PostgresLeadershipOptions) {
    super();
    this.#options = options;
    this.#checkMs = options.checkMs ?? 1000;
  }

  start(): void {
    this.#stopped = false;
    void this.#round();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#drop();
  }

  /** One check: try for the lock, or prove the connection holding it still answers. */
  async #round(): Promise<void> {
    if (this.#stopped || this.#busy) return;
    this.#busy = true;
    try {
      const client = this.#client ?? (await this.#connect());
      if (this.isLeader) {
        await this.#answerWithin(client.query("SELECT 1"));
      } else {
        const result = await this.#answerWithin(
          client.query<{ locked: boolean }>("SELECT pg_try_advisory_lock(hashtext($1)) AS locked", [
            lockName(this.#options.schema),
          ]),
        );
        if (result.rows[0]?.locked === true && !this.#stopped) this.set(true);
      }
    } catch (error) {
      this.#options.onError?.(error as Error);
      await this.#drop();
    } finally {
      this.#busy = false;
      if (!this.#stopped) this.#timer = setTimeout(() => void this.#round(), this.#checkMs);
    }
  }

  async #connect(): Promise<pg.Client> {
    const client = new pg.Client({
      connectionString: this.#options.url,
      keepAlive: true,
      connectionTimeoutMillis: this.#checkMs * 5,
    });
    // A socket that closes or fails between checks ends the leadership at that moment.
    client.on("error", (error) => {
      this.#options.onError?.(error);
      void this.#drop();
    });
    client.on("end", () => void this.#drop());
    this.#client = client;
    await client.connect();
    return client;
  }

  /** A check slower than a few intervals counts as a lost connection. */
  #answerWithin<T>(query: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error("the leader lock's connection stopped answering")),
        this.#checkMs * 3,
      );
    });
    return Promise.race([query, late]).finally(() => clearTimeout(timer));
  }

  async #drop(): Promise<void> {
    this.set(false);
    const client = this.#client;
    this.#client = undefined;
    // Ending the session releases the lock if it is still held.
    await client?.end().catch(() => undefined);
  }
}

/** PGlite: the process that opened the database is its only possible controller. */
export class EmbeddedLeadership extends LeadershipState implements Leadership {
  start(): void {
    this.set(true);
  }

  async stop(): Promise<void> {
    this.set(false);
  }
}
