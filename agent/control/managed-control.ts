/**
 * The managed agent's control-plane client. At start it serves the persisted last good bundle
 * (if one verifies), so an agent restarted while no distributor answers still serves. Then
 * one loop keeps one AgentDistribution stream open: to the distributors in the order given,
 * moving to the next when one fails, with full-jitter backoff between attempts. On a stream:
 * Hello, then every BundleUpdate answered by an Ack or a Nack (BundleApplier), heartbeats
 * every interval the distributor sets, and a HealthReport every report interval. Whatever
 * happens to the stream, the agent keeps serving what it has.
 */

import { hostname } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import {
  type ChannelCredentials,
  type ClientDuplexStream,
  type ClientOptions,
  credentials,
} from "@grpc/grpc-js";
import {
  AgentDistributionClient,
  type AgentMessage,
  type DistributorMessage,
} from "../../proto/coherent/v1/distribution.js";
import { type Keyring, MAX_BUNDLE_MESSAGE_BYTES } from "../../services/bundle/index.js";
import type { ControlPlaneConfig } from "../../services/config/index.js";
import { Backoff } from "../../services/net/backoff.js";
import { channelCredentials } from "../../services/net/tls.js";
import type { Logger } from "../../services/telemetry/logger.js";
import type { ConfigTarget } from "../runtime/config-target.js";
import { BundleApplier, type CurrentBundle } from "./bundle-applier.js";
import { HealthRecorder } from "./health-recorder.js";
import { LastGoodBundle } from "./last-good-bundle.js";
import { keyringFrom } from "./trusted-keys.js";

export const DEFAULT_HEALTH_REPORT_INTERVAL_MS = 5_000;
/** Used when a Welcome sets no heartbeat interval. */
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 10_000;
/** How long a stream may stay without a Welcome before the next distributor is tried. */
export const DEFAULT_WELCOME_TIMEOUT_MS = 15_000;
/** A distributor silent for this many heartbeat intervals is taken as gone. */
const SILENT_INTERVALS = 3;

export interface ManagedControlOptions {
  readonly settings: ControlPlaneConfig;
  readonly target: ConfigTarget;
  readonly keyring: Keyring;
  readonly logger: Logger;
  readonly softwareVersion: string;
  /** Where the data plane records finished requests; a new one when not given. */
  readonly health?: HealthRecorder;
  /** TLS to the distributors; plaintext when not given. */
  readonly credentials?: ChannelCredentials;
  readonly channelOptions?: Partial<ClientOptions>;
  readonly now?: () => number;
  readonly random?: () => number;
  readonly backoffBaseMs?: number;
  readonly backoffCapMs?: number;
  readonly welcomeTimeoutMs?: number;
}

export class ManagedControl {
  readonly health: HealthRecorder;
  readonly #options: ManagedControlOptions;
  readonly #settings: ControlPlaneConfig;
  readonly #now: () => number;
  readonly #applier: BundleApplier;
  readonly #backoff: Backoff;
  readonly #credentials: ChannelCredentials;
  readonly #abort = new AbortController();
  #started = false;
  #loop: Promise<void> = Promise.resolve();
  #updates: Promise<void> = Promise.resolve();
  #connectedTo: string | undefined;

  constructor(options: ManagedControlOptions) {
    this.#options = options;
    this.#settings = options.settings;
    this.#now = options.now ?? Date.now;
    this.health = options.health ?? new HealthRecorder(this.#now);
    this.#credentials = options.credentials ?? credentials.createInsecure();
    this.#backoff = new Backoff({
      baseMs: options.backoffBaseMs ?? 250,
      capMs: options.backoffCapMs ?? 30_000,
      random: options.random ?? Math.random,
    });
    const stateDir = options.settings.state_dir;
    this.#applier = new BundleApplier({
      fleet: options.settings.fleet,
      keyring: options.keyring,
      target: options.target,
      lastGood: stateDir === undefined ? undefined : new LastGoodBundle(stateDir),
      logger: options.logger,
    });
  }

  /** The bundle serving now; undefined before the first one. */
  get current(): CurrentBundle | undefined {
    return this.#applier.current;
  }

  /** The distributor whose stream is open (Welcome received); undefined between streams. */
  get connectedTo(): string | undefined {
    return this.#connectedTo;
  }

  /**
   * Serves the last good bundle if there is one, then starts connecting; resolves once the
   * persisted bundle serves (or there was none), without waiting for any distributor.
   * Called once.
   */
  async start(): Promise<void> {
    if (this.#started) throw new Error("ManagedControl already started");
    this.#started = true;
    await this.#applier.restore();
    if (this.#abort.signal.aborted) return;
    this.#loop = this.#run(this.#abort.signal);
  }

  /** Closes the stream and stops reconnecting; the config serving stays. Idempotent. */
  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#loop;
    await this.#updates;
  }

  async #run(signal: AbortSignal): Promise<void> {
    const distributors = this.#settings.distributors;
    let index = 0;
    while (!signal.aborted) {
      const address = distributors[index % distributors.length] ?? "";
      const welcomed = await this.#session(address, signal);
      // A distributor that answered is tried again first; one that failed, not.
      if (!welcomed) index++;
      try {
        await sleep(this.#backoff.next(), undefined, { signal });
      } catch {
        return;
      }
    }
  }

  /** One stream to `address`; resolves when it ends, true if the distributor welcomed us. */
  #session(address: string, signal: AbortSignal): Promise<boolean> {
    const { logger } = this.#options;
    const client = new AgentDistributionClient(address, this.#credentials, {
      "grpc.max_receive_message_length": MAX_BUNDLE_MESSAGE_BYTES,
      ...this.#options.channelOptions,
    });
    const call: ClientDuplexStream<AgentMessage, DistributorMessage> = client.stream();
    let welcomed = false;
    let ended = false;
    let lastReceived = this.#now();
    let lastSent = this.#now();
    let heartbeat: NodeJS.Timeout | undefined;
    let reports: NodeJS.Timeout | undefined;
    // A distributor that takes the stream but never answers (or a connect that hangs) is a failure too.
    const welcomeTimer = setTimeout(() => {
      logger.warn({ distributor: address }, "no Welcome from the distributor, trying the next");
      call.cancel();
    }, this.#options.welcomeTimeoutMs ?? DEFAULT_WELCOME_TIMEOUT_MS);

    const send = (message: AgentMessage) => {
      if (ended) return;
      lastSent = this.#now();
      call.write(message);
    };

    const onWelcome = (intervalMs: number) => {
      welcomed = true;
      clearTimeout(welcomeTimer);
      this.#connectedTo = address;
      this.#backoff.reset();
      heartbeat = setInterval(() => {
        const now = this.#now();
        if (now - lastReceived > SILENT_INTERVALS * intervalMs) {
          logger.warn({ distributor: address }, "distributor silent, reconnecting");
          call.cancel();
          return;
        }
        if (now - lastSent >= intervalMs)
          send({ kind: { $case: "heartbeat", value: { sentAtUnixMs: now } } });
      }, intervalMs);
      reports = setInterval(
        () => send({ kind: { $case: "healthReport", value: this.health.takeReport() } }),
        this.#settings.health_report_interval ?? DEFAULT_HEALTH_REPORT_INTERVAL_MS,
      );
    };

    return new Promise<boolean>((resolve) => {
      const finish = () => {
        if (ended) return;
        ended = true;
        clearTimeout(welcomeTimer);
        clearInterval(heartbeat);
        clearInterval(reports);
        signal.removeEventListener("abort", onAbort);
        if (this.#connectedTo === address) this.#connectedTo = undefined;
        call.cancel();
        client.close();
        resolve(welcomed);
      };
      const onAbort = () => finish();
      signal.addEventListener("abort", onAbort);

      call.on("data", (message: DistributorMessage) => {
        lastReceived = this.#now();
        const kind = message.kind;
        if (kind?.$case === "welcome") {
          if (welcomed) return;
          if (kind.value.region !== this.#settings.region)
            logger.warn({ distributor: address, region: kind.value.region }, "distributor of another region");
          logger.info({ distributor: address, id: kind.value.distributorId }, "connected to distributor");
          onWelcome(kind.value.heartbeatIntervalMs || DEFAULT_HEARTBEAT_INTERVAL_MS);
        } else if (kind?.$case === "bundleUpdate") {
          const update = kind.value;
          // One update at a time, in the order they came: each answer is for its own push.
          this.#updates = this.#updates.then(async () => {
            const answer = await this.#applier.apply(update, address);
            if (answer.kind?.$case === "nack")
              logger.error({ version: update.version, errors: answer.kind.value.errors }, "bundle refused");
            else logger.info({ version: update.version }, "bundle serving");
            send(answer);
          });
        }
      });
      call.on("error", (error: Error) => {
        logger.warn({ distributor: address, err: error.message }, "distributor stream failed");
        finish();
      });
      call.on("end", finish);
      call.on("close", finish);

      const current = this.#applier.current;
      send({
        kind: {
          $case: "hello",
          value: {
            agentId: this.#settings.agent_id ?? hostname(),
            fleet: this.#settings.fleet,
            region: this.#settings.region,
            labels: { ...this.#settings.labels },
            currentVersion: current?.version ?? 0,
            currentContentSha256: current?.contentSha256 ?? "",
            softwareVersion: this.#options.softwareVersion,
          },
        },
      });
    });
  }
}

/**
 * A ManagedControl for a process's static `control_plane`: the trusted keys read, TLS
 * credentials from its `tls` files. Throws when a key or a TLS file cannot be read.
 */
export async function createManagedControl(
  settings: ControlPlaneConfig,
  target: ConfigTarget,
  logger: Logger,
  softwareVersion: string,
): Promise<ManagedControl> {
  return new ManagedControl({
    settings,
    target,
    // The agent's own recorder, which its engine feeds (a cluster's primary: its workers).
    ...(target.health ? { health: target.health } : {}),
    keyring: await keyringFrom(settings.trusted_keys),
    logger: logger.child({ component: "control" }),
    softwareVersion,
    credentials: await channelCredentials(
      settings.tls && {
        caFile: settings.tls.ca_file,
        certFile: settings.tls.cert_file,
        keyFile: settings.tls.key_file,
      },
    ),
    ...(settings.tls?.server_name === undefined
      ? {}
      : {
          // The name the distributors' certificates carry when it is not the address dialled.
          channelOptions: {
            "grpc.ssl_target_name_override": settings.tls.server_name,
            "grpc.default_authority": settings.tls.server_name,
          },
        }),
  });
}
