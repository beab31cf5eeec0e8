/**
 * The AuthorityFeed gRPC service: distributors subscribe and are caught up, then hear of every
 * bundle and fleet state change — made through any replica, since the changes arrive by
 * NOTIFY — and report their agents and merged health, which the store keeps. Lifecycle in one
 * place: listen once, close idempotently.
 */
import { Server } from "@grpc/grpc-js";
import {
  AuthorityFeedService,
  type AuthorityFeedServer as FeedHandlers,
} from "../../proto/coherent/v1/authority.js";
import { addStandardServices, type StandardServices } from "../../services/net/grpc-standard.js";
import { type ServerTlsFiles, serverCredentials } from "../../services/net/tls.js";
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
  /** Serve over TLS (mTLS with a client CA); plaintext when not given. */
  readonly tls?: ServerTlsFiles;
}

/**
 * HTTP/2 keepalive: a ping every 60 s on an idle connection, dropped when unanswered for 20 s,
 * so a distributor behind a vanished NAT entry or a dead host is noticed within about 80 s
 * even when the application heartbeat has nothing to say. Distributors ping at 30 s; grpc-js
 * enforces no minimum ping interval on its server, so no ping is refused.
 */
export const FEED_SERVER_OPTIONS = {
  "grpc.keepalive_time_ms": 60_000,
  "grpc.keepalive_timeout_ms": 20_000,
} as const;

export class AuthorityFeedServer implements FeedSessionHost {
  readonly store: AuthorityStore;
  readonly logger: Logger;
  readonly now: () => number;
  readonly #grpc = new Server(FEED_SERVER_OPTIONS);
  readonly #standard: StandardServices;
  readonly #tls: ServerTlsFiles | undefined;
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
    this.#tls = options.tls;
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
    this.#standard = addStandardServices(
      this.#grpc,
      ["coherent.v1.AuthorityFeed"],
      ["coherent/v1/authority.proto"],
    );
  }

  /**
   * Hears the store's announcements, then binds `address` (host:port) and resolves with the
   * port; grpc.health.v1 answers SERVING from then until close. Once only.
   */
  async listen(address: string): Promise<number> {
    if (this.#listening) throw new Error("the feed server listens once");
    this.#listening = true;
    const credentials = await serverCredentials(this.#tls);
    this.#unsubscribes.push(
      await this.store.onBundleCreated((event) => {
        for (const session of this.#sessions) session.bundleCreated(event);
      }),
      await this.store.onFleetStateChanged(
        (event) => {
          for (const session of this.#sessions) session.fleetStateChanged(event);
        },
        () => {
          // A state changed while no announcement could come would otherwise reach no
          // distributor until it resubscribes.
          this.logger.info(
            { event: "feed_resync", sessions: this.#sessions.size },
            "store announcements resumed: sending every distributor what changed meanwhile",
          );
          for (const session of this.#sessions) session.resync();
        },
      ),
    );
    const port = await new Promise<number>((resolve, reject) =>
      this.#grpc.bindAsync(address, credentials, (error, bound) => (error ? reject(error) : resolve(bound))),
    );
    if (this.#heartbeatMs > 0) {
      this.#heartbeat = setInterval(() => {
        for (const session of this.#sessions) session.heartbeat();
      }, this.#heartbeatMs);
      this.#heartbeat.unref();
    }
    this.#standard.setServing(true);
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
    this.#standard.setServing(false);
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
