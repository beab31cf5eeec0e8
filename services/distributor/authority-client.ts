/**
 * The distributor's AuthorityFeed client: the upper half of the distributor. One loop keeps
 * one Subscribe stream open, to the authority addresses in turn (the next one after every
 * stream that ends), with full-jitter backoff between attempts. On a stream:
 *
 * - Subscribe lists what the disk cache holds, so only what is missing comes down;
 * - each Bundle goes to DiskCache.putBundle, which verifies it (a refused bundle is logged
 *   and never cached), each FleetState to putState, in the order they came; SyncComplete,
 *   once everything before it is applied, makes the distributor ready;
 * - a bundle that verified but could not be written (a full disk) ends the stream, and what
 *   came after it on that stream is not applied: the state naming it would claim a bundle the
 *   cache lacks, and the authority sends nothing it believes held. The next Subscribe, after
 *   the backoff, lists the cache as it is, so the bundle and its state come again;
 * - once the authority has answered (its first message), every agent status this
 *   distributor knows goes up, then whatever health and status changes were queued;
 * - heartbeats when there is nothing else to send; a silent authority is left for the next.
 *
 * As the HealthSink it queues what the agent side hands it. The queues are bounded: statuses
 * coalesce by agent id, health samples drop the oldest beyond maxQueuedSamples (an authority
 * down for hours must not grow the distributor without end). Written messages are not
 * acknowledged by the protocol: a batch in flight when a stream breaks is lost, which the
 * full status resend after every Subscribe repairs for statuses; for health, a lost window is
 * a gap the rollout gates see as missing data, not as wrong data.
 */
import { setTimeout as sleep } from "node:timers/promises";
import {
  type ChannelCredentials,
  type ClientDuplexStream,
  type ClientOptions,
  credentials,
} from "@grpc/grpc-js";
import {
  type AgentStatus,
  type AuthorityDownstream,
  AuthorityFeedClient,
  type Bundle,
  type DistributorUpstream,
  type FleetState,
  type HealthSample,
} from "../../proto/coherent/v1/authority.js";
import { MAX_BUNDLE_MESSAGE_BYTES } from "../bundle/index.js";
import { Backoff } from "../net/backoff.js";
import type { Logger } from "../telemetry/logger.js";
import type { DiskCache } from "./disk-cache.js";
import { DistributorError, DistributorErrorCode } from "./errors.js";
import type { HealthSink } from "./fleet-source.js";
import type { DistributorMetrics } from "./metrics.js";

export const DEFAULT_AUTHORITY_HEARTBEAT_MS = 10_000;
/** The authority heartbeats every 10 s once caught up: three missed, and it is taken as gone. */
export const DEFAULT_AUTHORITY_SILENCE_MS = 35_000;
export const DEFAULT_MAX_QUEUED_SAMPLES = 10_000;
/** Statuses per AgentStatusBatch, so a region of thousands goes up in messages of bounded size. */
export const DEFAULT_STATUS_BATCH = 500;

/**
 * HTTP/2 keepalive towards the authority: a ping every 30 s, the connection dropped when one
 * is unanswered for 10 s, also between streams (permit_without_calls), so a dead path is
 * found sooner than the application's silence limit when the feed is quiet. Messages up to
 * MAX_BUNDLE_MESSAGE_BYTES: with gRPC's 4 MiB default, one larger bundle would fail every
 * Subscribe and leave the region without any later update.
 */
export const AUTHORITY_CHANNEL_OPTIONS = {
  "grpc.keepalive_time_ms": 30_000,
  "grpc.keepalive_timeout_ms": 10_000,
  "grpc.keepalive_permit_without_calls": 1,
  "grpc.max_receive_message_length": MAX_BUNDLE_MESSAGE_BYTES,
} as const;

export interface AuthorityClientOptions {
  /** host:port of each authority replica; any one will do. */
  readonly addresses: readonly string[];
  readonly distributorId: string;
  readonly region: string;
  readonly cache: DiskCache;
  readonly logger: Logger;
  /** TLS (or mTLS) to the authority; plaintext when not given. */
  readonly credentials?: ChannelCredentials;
  /** Merged over AUTHORITY_CHANNEL_OPTIONS, e.g. a TLS server name override. */
  readonly channelOptions?: Partial<ClientOptions>;
  /** Called once, at the first SyncComplete. */
  readonly onSynced?: () => void;
  readonly now?: () => number;
  readonly random?: () => number;
  readonly backoffBaseMs?: number;
  readonly backoffCapMs?: number;
  /** How often a Heartbeat goes up when nothing else did. */
  readonly heartbeatIntervalMs?: number;
  /** A stream that brought nothing for this long (no answer to Subscribe included) is cut. */
  readonly silenceMs?: number;
  readonly maxQueuedSamples?: number;
  readonly statusBatchSize?: number;
  /** Statuses of agents disconnected longer than this are no longer resent; 1 h by default. */
  readonly forgetAfterMs?: number;
  /** How long close() waits for the last health to be written and the stream to end; 2 s. */
  readonly closeTimeoutMs?: number;
  /** The distributor's metrics, for the feed's gauge and counters. */
  readonly metrics?: DistributorMetrics;
}

type Call = ClientDuplexStream<DistributorUpstream, AuthorityDownstream>;

export class AuthorityClient implements HealthSink {
  readonly #options: AuthorityClientOptions;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #backoff: Backoff;
  readonly #abort = new AbortController();
  /** The newest status of every agent reported, resent in full after each Subscribe. */
  readonly #known = new Map<string, AgentStatus>();
  /** Changed since they last went up; at most one per agent. */
  readonly #pendingStatuses = new Map<string, AgentStatus>();
  #pendingSamples: HealthSample[] = [];
  #droppedSamples = 0;
  #dropping = false;
  /** The open stream once the authority answered on it; undefined otherwise. */
  #open: { readonly call: Call; readonly address: string } | undefined;
  #writable = true;
  #lastSent = 0;
  #synced = false;
  #loop: Promise<void> | undefined;
  #closing: Promise<void> | undefined;

  constructor(options: AuthorityClientOptions) {
    if (options.addresses.length === 0) throw new TypeError("the feed client needs an authority address");
    this.#options = options;
    this.#logger = options.logger;
    this.#now = options.now ?? Date.now;
    this.#backoff = new Backoff({
      baseMs: options.backoffBaseMs ?? 250,
      capMs: options.backoffCapMs ?? 30_000,
      random: options.random ?? Math.random,
    });
  }

  /** True once an authority said SyncComplete (on any stream, ever). */
  get synced(): boolean {
    return this.#synced;
  }

  /** The authority whose stream is open and answering; undefined between streams. */
  get connectedTo(): string | undefined {
    return this.#open?.address;
  }

  /** Health samples dropped, oldest first, because the queue was full. */
  get droppedSamples(): number {
    return this.#droppedSamples;
  }

  /** Starts subscribing; returns at once. Called once. */
  start(): void {
    if (this.#loop !== undefined) throw new Error("the feed client starts once");
    this.#loop = this.#run(this.#abort.signal);
  }

  health(samples: readonly HealthSample[]): void {
    this.#pendingSamples.push(...samples);
    const limit = this.#options.maxQueuedSamples ?? DEFAULT_MAX_QUEUED_SAMPLES;
    const excess = this.#pendingSamples.length - limit;
    if (excess > 0) {
      // Once per outage, not per flush: the queue stays full until an authority answers.
      if (!this.#dropping) {
        this.#logger.warn(
          { event: "health_dropped", queued: limit },
          "health queue full while no authority answers: dropping the oldest samples",
        );
      }
      this.#dropping = true;
      this.#pendingSamples.splice(0, excess);
      this.#droppedSamples += excess;
      this.#options.metrics?.healthDropped.inc(excess);
    }
    this.#pump();
  }

  agentStatus(statuses: readonly AgentStatus[]): void {
    for (const status of statuses) {
      this.#known.set(status.agentId, status);
      this.#pendingStatuses.set(status.agentId, status);
    }
    this.#forget();
    this.#pump();
  }

  /**
   * Writes what is queued if a stream is open, ends it, and stops resubscribing. Call it after
   * the agent side's last flush, so the last health goes up. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const open = this.#open;
    if (open !== undefined) {
      this.#pump();
      const ended = new Promise<void>((resolve) => open.call.once("status", () => resolve()));
      open.call.end();
      await Promise.race([ended, sleep(this.#options.closeTimeoutMs ?? 2_000)]);
    }
    this.#abort.abort();
    await this.#loop;
  }

  async #run(signal: AbortSignal): Promise<void> {
    const { addresses } = this.#options;
    let index = 0;
    while (!signal.aborted) {
      const address = addresses[index % addresses.length] ?? "";
      if (await this.#session(address, signal)) this.#backoff.reset();
      // Replicas are alike: a stream that ended, whatever the reason, moves to the next one.
      index++;
      try {
        await sleep(this.#backoff.next(), undefined, { signal });
      } catch {
        return;
      }
    }
  }

  /** One stream to `address`; resolves when it ends, true if it reached SyncComplete. */
  #session(address: string, signal: AbortSignal): Promise<boolean> {
    const logger = this.#logger;
    const client = new AuthorityFeedClient(
      address,
      this.#options.credentials ?? credentials.createInsecure(),
      {
        ...AUTHORITY_CHANNEL_OPTIONS,
        ...this.#options.channelOptions,
      },
    );
    const call: Call = client.subscribe();
    const heartbeatMs = this.#options.heartbeatIntervalMs ?? DEFAULT_AUTHORITY_HEARTBEAT_MS;
    const silenceMs = this.#options.silenceMs ?? DEFAULT_AUTHORITY_SILENCE_MS;
    let lastReceived = this.#now();
    let synced = false;
    let ended = false;
    /** A bundle of this stream could not be cached: nothing after it on the stream is applied. */
    let unwritten = false;
    // Downstream messages are applied one at a time, in order: a state after its bundles.
    let applying: Promise<void> = Promise.resolve();

    const timer = setInterval(
      () => {
        const now = this.#now();
        if (now - lastReceived > silenceMs) {
          logger.warn({ event: "authority_silent", authority: address }, "authority silent, trying the next");
          call.cancel();
          return;
        }
        if (this.#open?.call === call && now - this.#lastSent >= heartbeatMs) {
          this.#write(call, { kind: { $case: "heartbeat", value: { sentAtUnixMs: now } } });
        }
      },
      Math.min(heartbeatMs, silenceMs / 2),
    );

    return new Promise<boolean>((resolve) => {
      const finish = () => {
        if (ended) return;
        ended = true;
        clearInterval(timer);
        signal.removeEventListener("abort", finish);
        if (this.#open?.call === call) {
          this.#open = undefined;
          this.#options.metrics?.authorityConnected.set(0);
        }
        call.cancel();
        client.close();
        // What was being applied finishes first, so the next stream's Subscribe lists it.
        applying.then(() => resolve(synced));
      };
      signal.addEventListener("abort", finish);

      call.on("data", (message: AuthorityDownstream) => {
        if (ended) return;
        lastReceived = this.#now();
        if (this.#open === undefined) this.#opened(call, address);
        const kind = message.kind;
        if (kind === undefined || kind.$case === "heartbeat") return;
        applying = applying.then(async () => {
          if (unwritten) return;
          if (kind.$case === "bundle") {
            if (!(await this.#putBundle(kind.value, address))) {
              unwritten = true;
              finish();
            }
          } else if (kind.$case === "fleetState") await this.#putState(kind.value, address);
          else {
            synced = true;
            this.#syncComplete(address);
          }
        });
      });
      call.on("drain", () => {
        if (this.#open?.call !== call) return;
        this.#writable = true;
        this.#pump();
      });
      call.on("error", (error: Error) => {
        // Our own cancel, after the stream was given up, is no news.
        if (ended) return;
        logger.warn(
          { event: "authority_stream_failed", authority: address, err: error.message },
          "feed stream failed",
        );
        finish();
      });
      call.on("status", finish);
      call.on("end", finish);

      this.#write(call, {
        kind: {
          $case: "subscribe",
          value: {
            distributorId: this.#options.distributorId,
            region: this.#options.region,
            knownFleets: this.#options.cache.knownFleets(),
          },
        },
      });
    });
  }

  /** The authority answered: the region's view goes up in full, then what waited. */
  #opened(call: Call, address: string): void {
    this.#open = { call, address };
    this.#options.metrics?.authorityConnected.set(1);
    this.#writable = true;
    this.#logger.info({ event: "authority_connected", authority: address }, "subscribed to the authority");
    this.#forget();
    this.#pendingStatuses.clear();
    for (const [id, status] of this.#known) this.#pendingStatuses.set(id, status);
    this.#pump();
  }

  /** False when the bundle verified but could not be written: the stream must be given up. */
  async #putBundle(bundle: Bundle, address: string): Promise<boolean> {
    try {
      await this.#options.cache.putBundle(bundle);
      return true;
    } catch (error) {
      if (error instanceof DistributorError && error.code === DistributorErrorCode.CacheWriteFailed) {
        this.#logger.error(
          {
            event: "bundle_not_cached",
            authority: address,
            fleet: bundle.fleet,
            version: bundle.version,
            err: error.message,
          },
          "bundle not written to the cache: subscribing again to get it",
        );
        return false;
      }
      this.#options.metrics?.bundlesRefused.inc();
      this.#logger.error(
        {
          event: "bundle_refused",
          authority: address,
          fleet: bundle.fleet,
          version: bundle.version,
          code: (error as { code?: unknown }).code,
          err: (error as Error).message,
        },
        "bundle refused: not cached, not served",
      );
      return true;
    }
  }

  async #putState(state: FleetState, address: string): Promise<void> {
    try {
      await this.#options.cache.putState(state);
    } catch (error) {
      // putState serves the state before writing it: only the disk copy is behind.
      this.#logger.error(
        {
          event: "state_write_failed",
          authority: address,
          fleet: state.fleet,
          err: (error as Error).message,
        },
        "fleet state served but not written to the cache",
      );
    }
  }

  #syncComplete(address: string): void {
    this.#logger.info({ event: "authority_synced", authority: address }, "caught up with the authority");
    if (this.#synced) return;
    this.#synced = true;
    this.#options.onSynced?.();
  }

  /** Writes queued statuses, then health, while the stream takes them. */
  #pump(): void {
    const open = this.#open;
    if (open === undefined) return;
    const batch = this.#options.statusBatchSize ?? DEFAULT_STATUS_BATCH;
    while (this.#writable && this.#pendingStatuses.size > 0) {
      const statuses: AgentStatus[] = [];
      for (const [id, status] of this.#pendingStatuses) {
        statuses.push(status);
        this.#pendingStatuses.delete(id);
        if (statuses.length === batch) break;
      }
      this.#write(open.call, { kind: { $case: "agentStatusBatch", value: { statuses } } });
    }
    if (this.#writable && this.#pendingSamples.length > 0) {
      const samples = this.#pendingSamples;
      this.#pendingSamples = [];
      this.#dropping = false;
      this.#write(open.call, { kind: { $case: "healthBatch", value: { samples } } });
    }
  }

  #write(call: Call, message: DistributorUpstream): void {
    this.#lastSent = this.#now();
    // false: grpc-js buffered it, but more should wait for "drain".
    if (!call.write(message)) this.#writable = false;
  }

  /** A gone agent's status is resent after each Subscribe until it is as old as the core forgets. */
  #forget(): void {
    const before = this.#now() - (this.#options.forgetAfterMs ?? 60 * 60_000);
    for (const [id, status] of this.#known) {
      if (!status.connected && status.lastSeenUnixMs < before) this.#known.delete(id);
    }
  }
}
