/**
 * One distributor's Subscribe stream. Everything sent down runs in one chain of steps, in
 * order: the catch-up after Subscribe, then each change announced by NOTIFY. A step reads the
 * store, so a change is sent as it is when the step runs, and the per-fleet progress below makes
 * a repeated or late announcement send nothing. Reports coming up are stored in their own
 * chain, in the order they arrived, so a slow write never holds back a push.
 */
import { type ServerDuplexStream, status } from "@grpc/grpc-js";
import type {
  AuthorityDownstream,
  DistributorUpstream,
  Subscribe,
} from "../../proto/coherent/v1/authority.js";
import type { Logger } from "../../services/telemetry/logger.js";
import type { AuthorityStore, BundleCreatedEvent, FleetStateChangedEvent } from "../store/index.js";
import {
  agentReport,
  bundleMessage,
  fleetStateMessage,
  healthSampleRow,
  heartbeatMessage,
  SYNC_COMPLETE,
} from "./messages.js";

const HEARD_EVERY_MS = 1_000;

export type FeedCall = ServerDuplexStream<DistributorUpstream, AuthorityDownstream>;

/** What a session needs from its server. */
export interface FeedSessionHost {
  readonly store: AuthorityStore;
  readonly logger: Logger;
  readonly now: () => number;
  /** Called once Subscribe arrived, before the catch-up reads anything. */
  subscribed(session: FeedSession): void;
  /** Called once when the stream is over, however it ended. */
  ended(session: FeedSession): void;
}

/** What the distributor holds of one fleet, as far as this stream knows. */
interface FleetProgress {
  /** Its cache's highest bundle version at Subscribe: it holds what a state names up to it. */
  readonly known: number;
  /** Versions above `known` sent on this stream. */
  readonly sent: Set<number>;
  /** Generation of the newest state it holds. */
  generation: number;
}

class FeedError extends Error {
  constructor(
    readonly code: status,
    message: string,
  ) {
    super(message);
    this.name = "FeedError";
  }
}

export class FeedSession {
  readonly #call: FeedCall;
  readonly #host: FeedSessionHost;
  readonly #fleets = new Map<string, FleetProgress>();
  #downstream: Promise<void> = Promise.resolve();
  #upstream: Promise<void> = Promise.resolve();
  #subscription: Subscribe | undefined;
  #synced = false;
  #over = false;
  /** When the distributor's liveness was last written; see #heard. */
  #heardAt = Number.NEGATIVE_INFINITY;

  constructor(call: FeedCall, host: FeedSessionHost) {
    this.#call = call;
    this.#host = host;
    call.on("data", (message: DistributorUpstream) => this.#receive(message));
    // The distributor closed its side: close ours, as a finished conversation.
    call.on("end", () => this.end());
    call.on("cancelled", () => this.#finish());
    call.on("error", () => this.#finish());
    call.on("close", () => this.#finish());
  }

  /** Distributor id and region from Subscribe; undefined before it. */
  get subscription(): Subscribe | undefined {
    return this.#subscription;
  }

  /** Ignored before Subscribe: the catch-up reads the store after it anyway. */
  bundleCreated(event: BundleCreatedEvent): void {
    if (this.#subscription !== undefined) this.#step(() => this.#sendBundle(event.fleet, event.version));
  }

  fleetStateChanged(event: FleetStateChangedEvent): void {
    if (this.#subscription !== undefined) this.#step(() => this.#sendState(event.fleet));
  }

  /**
   * Announcements may have been lost: every fleet's state is read again and sent where it is
   * newer than what this stream sent, with the bundles it names; nothing when nothing changed.
   */
  resync(): void {
    if (this.#subscription === undefined) return;
    this.#step(async () => {
      for (const fleet of await this.#host.store.listFleets()) await this.#sendState(fleet.name);
    });
  }

  /** Liveness; only once caught up, so a heartbeat never comes before SyncComplete. */
  heartbeat(): void {
    if (this.#synced && !this.#over) this.#call.write(heartbeatMessage(this.#host.now()));
  }

  /** Ends the stream with OK; the distributor resubscribes (to this replica or another). */
  end(): void {
    if (this.#over) return;
    this.#finish();
    this.#call.end();
  }

  #receive(message: DistributorUpstream): void {
    const kind = message.kind;
    if (this.#over || kind === undefined) return;
    if (kind.$case === "subscribe") {
      this.#subscribe(kind.value);
      return;
    }
    if (this.#subscription === undefined) {
      this.#fail(new FeedError(status.FAILED_PRECONDITION, "send Subscribe first"));
      return;
    }
    const { store, now } = this.#host;
    this.#heard();
    const { distributorId } = this.#subscription;
    switch (kind.$case) {
      case "agentStatusBatch": {
        const reports = kind.value.statuses.map((entry) => agentReport(entry, distributorId, now()));
        this.#report(() => store.upsertAgentStatuses(reports));
        break;
      }
      case "healthBatch": {
        const rows = kind.value.samples.map((sample) => healthSampleRow(sample, distributorId));
        this.#report(() => store.insertHealthSamples(rows));
        break;
      }
      case "heartbeat":
        break;
    }
  }

  #subscribe(subscription: Subscribe): void {
    if (this.#subscription !== undefined) {
      this.#fail(new FeedError(status.INVALID_ARGUMENT, "Subscribe is sent once per stream"));
      return;
    }
    if (subscription.distributorId === "") {
      this.#fail(new FeedError(status.INVALID_ARGUMENT, "Subscribe needs a distributor_id"));
      return;
    }
    this.#subscription = subscription;
    this.#heard();
    for (const known of subscription.knownFleets) {
      this.#fleets.set(known.fleet, {
        known: known.latestBundleVersion,
        sent: new Set(),
        generation: known.fleetStateGeneration,
      });
    }
    // From here on changes are heard; one committed while the catch-up reads runs after it.
    this.#host.subscribed(this);
    this.#step(async () => {
      for (const fleet of await this.#host.store.listFleets()) await this.#sendState(fleet.name);
      this.#write(SYNC_COMPLETE);
      this.#synced = true;
      this.#host.logger.info(
        {
          event: "feed_synced",
          distributor: subscription.distributorId,
          region: subscription.region,
        },
        "distributor caught up",
      );
    });
  }

  /** Sends the fleet's state if it is newer than the distributor's, after the bundles it names. */
  async #sendState(fleet: string): Promise<void> {
    const state = await this.#host.store.getFleetState(fleet);
    const progress = this.#progress(fleet);
    if (state === undefined || state.generation <= progress.generation) return;
    if (state.stableVersion !== null) await this.#sendBundle(fleet, state.stableVersion);
    if (state.candidateVersion !== null) await this.#sendBundle(fleet, state.candidateVersion);
    this.#write(fleetStateMessage(state));
    progress.generation = state.generation;
  }

  async #sendBundle(fleet: string, version: number): Promise<void> {
    const progress = this.#progress(fleet);
    if (version <= progress.known || progress.sent.has(version)) return;
    const bundle = await this.#host.store.getBundle(fleet, version);
    if (bundle === undefined) return;
    this.#write(bundleMessage(bundle));
    progress.sent.add(version);
  }

  #progress(fleet: string): FleetProgress {
    let progress = this.#fleets.get(fleet);
    if (progress === undefined) {
      progress = { known: 0, sent: new Set(), generation: 0 };
      this.#fleets.set(fleet, progress);
    }
    return progress;
  }

  #write(message: AuthorityDownstream): void {
    if (!this.#over) this.#call.write(message);
  }

  #step(work: () => Promise<void>): void {
    this.#downstream = this.#downstream
      .then(() => (this.#over ? undefined : work()))
      .catch((error) => this.#fail(error));
  }

  /**
   * Any message proves the distributor alive, and with it the agents it reports connected (see
   * AuthorityStore#distributorHeard); written at most once a second, in order with the reports.
   */
  #heard(): void {
    const subscription = this.#subscription;
    const now = this.#host.now();
    if (subscription === undefined || now - this.#heardAt < HEARD_EVERY_MS) return;
    this.#heardAt = now;
    this.#report(() => this.#host.store.distributorHeard(subscription.distributorId, subscription.region));
  }

  #report(work: () => Promise<unknown>): void {
    this.#upstream = this.#upstream
      .then(async () => {
        if (!this.#over) await work();
      })
      .catch((error) => this.#fail(error));
  }

  /**
   * Ends the stream with an error status. A store failure is UNAVAILABLE: the distributor keeps
   * serving from its cache and resubscribes, perhaps to a replica that can reach the database.
   */
  #fail(error: unknown): void {
    if (this.#over) return;
    const failure =
      error instanceof FeedError
        ? error
        : new FeedError(status.UNAVAILABLE, `authority store: ${String(error)}`);
    this.#host.logger.warn(
      {
        event: "feed_failed",
        distributor: this.#subscription?.distributorId,
        code: failure.code,
        err: error,
      },
      "distributor stream ended with an error",
    );
    this.#finish();
    // grpc-js turns an error emitted on a server stream into the call's status.
    this.#call.emit("error", { code: failure.code, details: failure.message });
  }

  #finish(): void {
    if (this.#over) return;
    this.#over = true;
    this.#host.ended(this);
  }
}
