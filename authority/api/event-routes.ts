/**
 * GET /events: Server-Sent Events for the dashboard and anyone else watching. One hub per
 * replica listens to the store's rollout and fleet-state announcements (LISTEN/NOTIFY, so a
 * change made through any replica arrives) and writes each to every open stream:
 *
 *   event: rollout      data: the rollout as JSON (rollout-json.ts, as GET /rollouts/{id} has it)
 *   event: fleet_state  data: {"fleet", "generation"}
 *   ": heartbeat" comment every heartbeatMs, so proxies do not close an idle stream
 *
 * An announcement is a hint, not the data: the hub reads the rollout once per notification
 * and sends what it read. The hub subscribes when the first stream opens and stays subscribed
 * until the server closes, when every stream is ended so close does not wait for clients.
 */
import type { ServerResponse } from "node:http";
import type { FastifyInstance } from "fastify";
import { ApiError } from "../errors.js";
import type { AuthorityStore, RolloutChangedEvent } from "../store/index.js";
import { rolloutJson } from "./rollout-json.js";
import { errorResponses } from "./schemas.js";

export interface EventStreamOptions {
  /** Streams one replica holds at once; the next one gets 503 too_many_streams. */
  readonly maxStreams: number;
  readonly heartbeatMs: number;
}

export const EVENT_STREAM_DEFAULTS: EventStreamOptions = { maxStreams: 100, heartbeatMs: 15_000 };

export function registerEventRoutes(
  api: FastifyInstance,
  store: AuthorityStore,
  options: Partial<EventStreamOptions> = {},
): void {
  const settings = { ...EVENT_STREAM_DEFAULTS, ...options };
  const hub = new EventHub(store, settings.heartbeatMs);
  let reserved = 0;
  // preClose runs before the server stops accepting: open streams would otherwise hold close.
  api.addHook("preClose", async () => hub.close());

  api.get(
    "/events",
    {
      // EventSource cannot send an Authorization header; this route alone takes ?token=.
      config: { role: "viewer", tokenInQuery: true },
      schema: {
        tags: ["events"],
        summary: "Server-Sent Events: rollout and fleet_state changes, a heartbeat comment every 15 s",
        querystring: {
          type: "object",
          properties: { token: { type: "string", description: "The bearer token, for EventSource" } },
        },
        response: errorResponses,
      },
    },
    async (_req, reply) => {
      // Reserved before the first await, so streams opening together cannot overshoot.
      if (hub.size + reserved >= settings.maxStreams) {
        throw new ApiError(
          "too_many_streams",
          `this replica holds ${settings.maxStreams} event streams already; retry later or use another replica`,
        );
      }
      reserved += 1;
      try {
        await hub.start();
      } finally {
        reserved -= 1;
      }
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache, no-transform",
        // The socket goes with the stream, so the server's close, which ends every stream, does
        // not wait for sockets left idle in keep-alive.
        connection: "close",
        // nginx buffers responses unless told not to, which would hold events back.
        "x-accel-buffering": "no",
      });
      res.write("retry: 3000\n: connected\n\n");
      hub.add(res);
      res.once("close", () => hub.remove(res));
    },
  );
}

/** What a stream may have waiting unsent before it is dropped. */
const MAX_BUFFERED_BYTES = 1024 * 1024;

class EventHub {
  readonly #store: AuthorityStore;
  readonly #heartbeatMs: number;
  readonly #streams = new Set<ServerResponse>();
  #started: Promise<void> | undefined;
  readonly #unsubscribe: Array<() => Promise<void>> = [];
  #heartbeat: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(store: AuthorityStore, heartbeatMs: number) {
    this.#store = store;
    this.#heartbeatMs = heartbeatMs;
  }

  get size(): number {
    return this.#streams.size;
  }

  /** Subscribes once; a failed subscription is retried by the next stream. */
  start(): Promise<void> {
    if (this.#closed) return Promise.reject(new ApiError("too_many_streams", "the server is closing"));
    this.#started ??= this.#subscribe().catch(async (error: unknown) => {
      this.#started = undefined;
      await this.#unsubscribeAll();
      throw error;
    });
    return this.#started;
  }

  /** A stream that opened while the server began closing is ended at once. */
  add(res: ServerResponse): void {
    if (this.#closed) res.end();
    else this.#streams.add(res);
  }

  remove(res: ServerResponse): void {
    this.#streams.delete(res);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#heartbeat);
    for (const res of this.#streams) res.end();
    this.#streams.clear();
    await this.#started?.catch(() => undefined);
    await this.#unsubscribeAll();
  }

  async #unsubscribeAll(): Promise<void> {
    const unsubscribe = this.#unsubscribe.splice(0);
    await Promise.all(unsubscribe.map((fn) => fn()));
  }

  async #subscribe(): Promise<void> {
    this.#unsubscribe.push(await this.#store.onRolloutChanged((event) => void this.#rolloutChanged(event)));
    this.#unsubscribe.push(
      await this.#store.onFleetStateChanged((event) =>
        this.#send("fleet_state", { fleet: event.fleet, generation: event.generation }),
      ),
    );
    this.#heartbeat = setInterval(() => this.#write(": heartbeat\n\n"), this.#heartbeatMs);
    this.#heartbeat.unref();
  }

  async #rolloutChanged(event: RolloutChangedEvent): Promise<void> {
    if (this.#streams.size === 0) return;
    // A read that fails (the database blinked) loses only this hint; the next change or the
    // dashboard's own polling catches up.
    const rollout = await this.#store.rollouts.get(event.id).catch(() => undefined);
    // Notifications may arrive out of order: never send an older revision than announced.
    if (rollout && rollout.revision >= event.revision)
      this.#send("rollout", rolloutJson(rollout, Date.now()));
  }

  #send(event: string, data: unknown): void {
    this.#write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  #write(chunk: string): void {
    // No await: one slow reader never holds up the rest. One that lets this much pile up is
    // dropped instead of buffered without end; EventSource reconnects by itself.
    for (const res of this.#streams) {
      if (res.writableLength > MAX_BUFFERED_BYTES) {
        this.#streams.delete(res);
        res.destroy();
      } else if (!res.writableEnded) {
        res.write(chunk);
      }
    }
  }
}
