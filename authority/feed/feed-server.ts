/**
 * The AuthorityFeed gRPC service: distributors subscribe and are caught up, then hear of every
 * bundle and fleet state change — made through any replica, since the changes arrive by
 * NOTIFY — and report their agents and merged health, which the store keeps. Lifecycle in one
 * place: listen once, close idempotently.
 */
import { Server, ServerCredentials } from "@grpc/grpc-js";
import {
  AuthorityFeedService,
  type AuthorityFeedServer as FeedHandlers,
} from "../../proto/coherent/v1/authority.js";
import type { Logger } from "../../services/telemetry/logger.js";
import type { AuthorityStore } from "../store/index.js";
import { FeedSession, type FeedSessionHost } from "./feed-session.js";

export interface AuthorityFeedOptions {
  readonly store: AuthorityStore;
  readonly logger: Logger;
  /** Wall clock in ms, for heartbeats and statuses without a last_seen. */
  readonly now?: () => number;
  /** How often every caught-up stream gets a Heartbeat; 10 s by default, 0 for none. */
  readonly heartbeatIntervalMs?: number;
  /** How long close() lets streams finish before cutting them; 2 s by default. */
  readonly closeTimeoutMs?: number;
}

export class AuthorityFeedServer implements FeedSessionHost {
  readonly store: AuthorityStore;
  readonly logger: Logger;
  readonly now: () => number;
  readonly #grpc = new Server();
  readonly #sessions = new Set<FeedSession>();
  readonly #heartbeatMs: number;
  readonly #closeTimeoutMs: number;
  readonly #unsubscribes: (() => Promise<void>)[] = [];
  #heartbeat: NodeJS.Timeout | undefined;
  #listening = false;
  #closing: Promise<void> | undefined;

  constructor(options: AuthorityFeedOptions) {
    this.store = options.store;
    this.logger = options.logger;
    this.now = options.now ?? Date.now;
    this.#heartbeatMs = options.heartbeatIntervalMs ?? 10_000;
    this.#closeTimeoutMs = options.closeTimeoutMs ?? 2_000;
    const handlers: FeedHandlers = {
      subscribe: (call) => {
        if (this.#closing) {
          call.end();
          return;
        }
        this.#sessions.add(new FeedSession(call, this));
      },
    };
    this.#grpc.addService(AuthorityFeedService, handlers);
  }

  /**
   * Hears the store's announcements, then binds `address` (host:port, insecure for now) and
   * resolves with the port. Once only.
   */
  async listen(address: string): Promise<number> {
    if (this.#listening) throw new Error("the feed server listens once");
    this.#listening = true;
    this.#unsubscribes.push(
      await this.store.onBundleCreated((event) => {
        for (const session of this.#sessions) session.bundleCreated(event);
      }),
      await this.store.onFleetStateChanged((event) => {
        for (const session of this.#sessions) session.fleetStateChanged(event);
      }),
    );
    const port = await new Promise<number>((resolve, reject) =>
      this.#grpc.bindAsync(address, ServerCredentials.createInsecure(), (error, bound) =>
        error ? reject(error) : resolve(bound),
      ),
    );
    if (this.#heartbeatMs > 0) {
      this.#heartbeat = setInterval(() => {
        for (const session of this.#sessions) session.heartbeat();
      }, this.#heartbeatMs);
      this.#heartbeat.unref();
    }
    return port;
  }

  /** Streams open, subscribed or not yet. */
  get sessionCount(): number {
    return this.#sessions.size;
  }

  subscribed(session: FeedSession): void {
    this.logger.info(
      {
        event: "feed_subscribed",
        distributor: session.subscription?.distributorId,
        region: session.subscription?.region,
      },
      "distributor subscribed",
    );
  }

  ended(session: FeedSession): void {
    this.#sessions.delete(session);
  }

  /** Ends every stream with OK, stops hearing announcements and stops the server. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    clearInterval(this.#heartbeat);
    for (const session of [...this.#sessions]) session.end();
    await Promise.all(this.#unsubscribes.map((unsubscribe) => unsubscribe()));
    await new Promise<void>((resolve) => {
      const cut = setTimeout(() => {
        this.#grpc.forceShutdown();
        resolve();
      }, this.#closeTimeoutMs);
      this.#grpc.tryShutdown(() => {
        clearTimeout(cut);
        resolve();
      });
    });
  }
}
