/** Fixtures shared by this folder's tests: fleet states, bundles, and an agent over real gRPC. */
import { type ClientDuplexStream, credentials, type ServiceError } from "@grpc/grpc-js";
import type { AgentStatus, Bundle, FleetState, HealthSample } from "../../proto/coherent/v1/authority.js";
import {
  AgentDistributionClient,
  type AgentMessage,
  type BundleUpdate,
  type DistributorMessage,
  type Hello,
} from "../../proto/coherent/v1/distribution.js";
import { generateSigningKey, type SigningKey, signBundle } from "../bundle/index.js";
import { canonicalConfig, payloadFor } from "../bundle/test-support.js";
import type { HealthSink } from "./fleet-source.js";

/** The BundleUpdate a message carries; fails the test on any other kind. */
export function update(message: DistributorMessage): BundleUpdate {
  if (message.kind?.$case !== "bundleUpdate")
    throw new Error(`expected a BundleUpdate, got ${message.kind?.$case}`);
  return message.kind.value;
}

/** Resolves once `check` holds; fails after `timeoutMs`. */
export async function until(check: () => boolean, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export function fleetState(fields: Partial<FleetState> = {}): FleetState {
  return {
    fleet: "edge",
    stableVersion: 1,
    candidateVersion: 0,
    rolloutId: "",
    candidatePercent: 0,
    generation: 1,
    updatedAtUnixMs: 0,
    ...fields,
  };
}

/** A bundle whose JWS is not signed: enough where nothing verifies it. */
export function fakeBundle(version: number, fleet = "edge"): Bundle {
  return {
    fleet,
    version,
    contentSha256: version.toString(16).padStart(64, "0"),
    signedBundle: Buffer.from(`jws-of-${fleet}-${version}`, "latin1"),
  };
}

export async function newSigningKey(): Promise<SigningKey> {
  return (await generateSigningKey()).key;
}

/** A bundle signed by `key`, as the authority would send it. */
export async function signedBundle(key: SigningKey, version: number, fleet = "edge"): Promise<Bundle> {
  const config = canonicalConfig();
  const payload = payloadFor(config, { fleet, version, parent: version > 1 ? version - 1 : null });
  return {
    fleet,
    version,
    contentSha256: payload.content_sha256,
    signedBundle: Buffer.from(await signBundle(payload, key), "latin1"),
  };
}

export class RecordingSink implements HealthSink {
  readonly samples: HealthSample[] = [];
  readonly statuses: AgentStatus[] = [];

  health(samples: readonly HealthSample[]): void {
    this.samples.push(...samples);
  }

  agentStatus(statuses: readonly AgentStatus[]): void {
    this.statuses.push(...statuses);
  }
}

/** One agent's stream, with its received messages queued for `next`. */
export class TestAgent {
  readonly call: ClientDuplexStream<AgentMessage, DistributorMessage>;
  readonly #queue: DistributorMessage[] = [];
  readonly #waiters: Array<(message: DistributorMessage) => void> = [];
  /** The status the stream ended with. */
  readonly ended: Promise<{ code: number; details: string }>;

  constructor(client: AgentDistributionClient) {
    this.call = client.stream();
    this.call.on("data", (message: DistributorMessage) => {
      const waiter = this.#waiters.shift();
      if (waiter === undefined) this.#queue.push(message);
      else waiter(message);
    });
    this.ended = new Promise((resolve) => {
      this.call.on("status", (s) => resolve({ code: s.code, details: s.details }));
      this.call.on("error", (_error: ServiceError) => {});
    });
  }

  static connect(port: number): { client: AgentDistributionClient; open(): TestAgent } {
    const client = new AgentDistributionClient(`127.0.0.1:${port}`, credentials.createInsecure());
    return { client, open: () => new TestAgent(client) };
  }

  send(message: AgentMessage["kind"]): void {
    this.call.write({ kind: message });
  }

  hello(fields: Partial<Hello> & { agentId: string }): void {
    this.send({
      $case: "hello",
      value: {
        fleet: "edge",
        region: "eu-west",
        labels: {},
        currentVersion: 0,
        currentContentSha256: "",
        softwareVersion: "test",
        ...fields,
      },
    });
  }

  /** The next message other than a Heartbeat; fails after `timeoutMs`. */
  next(timeoutMs = 2_000): Promise<DistributorMessage> {
    const queued = this.#queue.findIndex((m) => m.kind?.$case !== "heartbeat");
    if (queued >= 0) {
      const [message] = this.#queue.splice(0, queued + 1).slice(-1);
      if (message !== undefined) return Promise.resolve(message);
    }
    this.#queue.length = 0;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const index = this.#waiters.indexOf(wait);
        if (index >= 0) this.#waiters.splice(index, 1);
        reject(new Error("no message in time"));
      }, timeoutMs);
      const wait = (message: DistributorMessage): void => {
        if (message.kind?.$case === "heartbeat") {
          this.#waiters.unshift(wait);
          return;
        }
        clearTimeout(timer);
        resolve(message);
      };
      this.#waiters.push(wait);
    });
  }

  /** Resolves true when no non-heartbeat message arrives within `ms`. */
  async silentFor(ms: number): Promise<boolean> {
    try {
      await this.next(ms);
      return false;
    } catch {
      return true;
    }
  }
}
