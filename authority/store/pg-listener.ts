/**
 * LISTEN on Postgres. A pooled connection cannot hold a LISTEN (it goes back to the pool and the
 * subscription with it), so notifications come over one dedicated pg.Client per Database,
 * shared by every channel. When that connection drops it is reopened after `reconnectDelayMs`
 * and every channel listened to again; notifications sent while it was down are lost, so a
 * subscriber treats a notification as a hint to read, never as the data, and is told (its
 * `onResumed`) when the LISTEN is back after a drop, to read what it may have missed.
 */
import pg from "pg";

export type NotificationHandler = (payload: string) => void;

export interface PgListenerOptions {
  readonly client: pg.ClientConfig;
  readonly reconnectDelayMs?: number;
}

export class PgListener {
  readonly #config: pg.ClientConfig;
  readonly #reconnectDelayMs: number;
  readonly #handlers = new Map<string, Set<NotificationHandler>>();
  readonly #resumed = new Set<() => void>();
  /** The connection dropped since the last one was opened: the next one tells #resumed. */
  #dropped = false;
  #client: pg.Client | undefined;
  #connecting: Promise<pg.Client> | undefined;
  #retry: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: PgListenerOptions) {
    this.#config = options.client;
    this.#reconnectDelayMs = options.reconnectDelayMs ?? 1000;
  }

  /**
   * Resolves once the LISTEN is in place; the result unsubscribes `fn`. `onResumed` is called
   * each time the LISTEN is back after its connection dropped.
   */
  async listen(
    channel: string,
    fn: NotificationHandler,
    onResumed?: () => void,
  ): Promise<() => Promise<void>> {
    let handlers = this.#handlers.get(channel);
    if (!handlers) {
      handlers = new Set();
      this.#handlers.set(channel, handlers);
    }
    handlers.add(fn);
    // Its own function per call, so one subscriber's unsubscribe never removes another's.
    const resumed = onResumed === undefined ? undefined : () => onResumed();
    if (resumed) this.#resumed.add(resumed);
    try {
      // A reconnect racing this call may LISTEN the channel too; LISTEN is idempotent.
      const client = await this.#connect();
      await client.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
    } catch (error) {
      if (resumed) this.#resumed.delete(resumed);
      this.#remove(channel, fn);
      throw error;
    }
    return async () => {
      if (resumed) this.#resumed.delete(resumed);
      if (!this.#remove(channel, fn)) return;
      await this.#client?.query(`UNLISTEN ${pg.escapeIdentifier(channel)}`).catch(() => undefined);
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#retry);
    this.#handlers.clear();
    const client = this.#client ?? (await this.#connecting?.catch(() => undefined));
    this.#client = undefined;
    await client?.end().catch(() => undefined);
  }

  /** True when the channel has no handler left. */
  #remove(channel: string, fn: NotificationHandler): boolean {
    const handlers = this.#handlers.get(channel);
    if (!handlers?.delete(fn) || handlers.size > 0) return false;
    this.#handlers.delete(channel);
    return true;
  }

  #connect(): Promise<pg.Client> {
    if (this.#closed) return Promise.reject(new Error("the listener is closed"));
    if (this.#client) return Promise.resolve(this.#client);
    this.#connecting ??= this.#open().finally(() => {
      this.#connecting = undefined;
    });
    return this.#connecting;
  }

  async #open(): Promise<pg.Client> {
    const client = new pg.Client(this.#config);
    client.on("notification", (message) => this.#dispatch(message));
    client.on("error", () => this.#lost(client));
    client.on("end", () => this.#lost(client));
    try {
      await client.connect();
      for (const channel of this.#handlers.keys()) {
        await client.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
      }
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
    if (this.#closed) {
      await client.end().catch(() => undefined);
      throw new Error("the listener is closed");
    }
    this.#client = client;
    if (this.#dropped) {
      this.#dropped = false;
      for (const fn of this.#resumed) {
        try {
          fn();
        } catch {}
      }
    }
    return client;
  }

  #dispatch(message: pg.Notification): void {
    const handlers = this.#handlers.get(message.channel);
    if (!handlers) return;
    for (const fn of handlers) {
      // One subscriber's exception must not keep the others from hearing about it.
      try {
        fn(message.payload ?? "");
      } catch {}
    }
  }

  #lost(client: pg.Client): void {
    if (this.#client !== client) return;
    this.#client = undefined;
    this.#dropped = true;
    client.end().catch(() => undefined);
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    if (this.#closed || this.#retry || this.#handlers.size === 0) return;
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      this.#connect().catch(() => this.#scheduleReconnect());
    }, this.#reconnectDelayMs);
    this.#retry.unref();
  }
}
