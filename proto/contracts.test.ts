// Contract tests for the generated gRPC code: a real @grpc/grpc-js server implementing both services,
// real generated clients, and every message kind sent through both bidirectional streams. What the
// server decodes must equal what the client encoded, and vice versa.
import {
  type ClientDuplexStream,
  credentials,
  Server,
  ServerCredentials,
  type ServerDuplexStream,
  type StatusObject,
  status,
} from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  AgentState,
  type AuthorityDownstream,
  AuthorityFeedClient,
  type AuthorityFeedServer,
  AuthorityFeedService,
  DistributorUpstream,
  FleetState,
} from "./coherent/v1/authority.js";
import type { LatencyHistogram } from "./coherent/v1/common.js";
import {
  AgentDistributionClient,
  type AgentDistributionServer,
  AgentDistributionService,
  AgentMessage,
  DistributorMessage,
  Hello,
} from "./coherent/v1/distribution.js";

const MAX_SAFE = Number.MAX_SAFE_INTEGER; // 9007199254740991, the largest version we promise to carry
const JWS = "eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIiwidHlwIjoiY29oZXJlbnQtYnVuZGxlK2p3cyJ9.eyJ2IjoxfQ.c2ln";
const SHA = "a".repeat(64);

const histogram: LatencyHistogram = {
  boundsMs: [5, 10, 25, 50, 100.5],
  counts: [10, 20, 5, 3, 1, 2], // bounds + 1, last is overflow
  sumMs: 1234.5,
  count: 41,
};

/**
 * Reads a client stream's messages one at a time. `next` fails after `timeoutMs` instead of hanging the
 * suite, and with the stream's error if it fails; `closed` resolves once the server has ended the call.
 */
function inbox<Req, T>(stream: ClientDuplexStream<Req, T>) {
  const buffered: T[] = [];
  const waiting: Array<{ resolve: (message: T) => void; reject: (err: Error) => void }> = [];
  let failure: Error | undefined;
  stream.on("data", (message: T) => {
    const waiter = waiting.shift();
    if (waiter) waiter.resolve(message);
    else buffered.push(message);
  });
  stream.on("error", (err: Error) => {
    failure = err;
    for (const waiter of waiting.splice(0)) waiter.reject(err);
  });
  const closed = new Promise<StatusObject>((resolve) => stream.on("status", resolve));
  return {
    closed,
    next(timeoutMs = 5_000): Promise<T> {
      if (buffered.length > 0) return Promise.resolve(buffered.shift() as T);
      if (failure) return Promise.reject(failure);
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no message within ${timeoutMs} ms`)), timeoutMs);
        waiting.push({
          resolve: (m) => {
            clearTimeout(timer);
            resolve(m);
          },
          reject: (err) => {
            clearTimeout(timer);
            reject(err);
          },
        });
      });
    },
  };
}

// What each fake server decoded, in arrival order.
const agentMessagesSeen: AgentMessage[] = [];
const upstreamSeen: DistributorUpstream[] = [];

// Fake distributor: answers Hello with Welcome + BundleUpdate derived from the Hello (so the reply
// proves the Hello was decoded), echoes each Heartbeat back (a sync point: everything the agent sent
// before it has arrived), and records every message.
const distributor: AgentDistributionServer = {
  stream(call: ServerDuplexStream<AgentMessage, DistributorMessage>) {
    call.on("data", (message: AgentMessage) => {
      agentMessagesSeen.push(message);
      const kind = message.kind;
      if (kind?.$case === "hello") {
        call.write({
          kind: {
            $case: "welcome",
            value: { distributorId: "dist-1", region: kind.value.region, heartbeatIntervalMs: 5_000 },
          },
        });
        call.write({
          kind: {
            $case: "bundleUpdate",
            value: {
              fleet: kind.value.fleet,
              version: kind.value.currentVersion + 1,
              nonce: "n-1",
              contentSha256: SHA,
              signedBundle: Buffer.from(JWS, "ascii"),
            },
          },
        });
      } else if (kind?.$case === "heartbeat") {
        call.write({ kind: { $case: "heartbeat", value: kind.value } });
      }
    });
    call.on("end", () => call.end());
  },
};

// Fake authority: answers Subscribe with a catch-up (Bundle, FleetState, SyncComplete) for the first
// known fleet, echoes Heartbeats, and records every message.
const authority: AuthorityFeedServer = {
  subscribe(call: ServerDuplexStream<DistributorUpstream, AuthorityDownstream>) {
    call.on("data", (message: DistributorUpstream) => {
      upstreamSeen.push(message);
      const kind = message.kind;
      if (kind?.$case === "subscribe") {
        const known = kind.value.knownFleets[0];
        const fleet = known?.fleet ?? "";
        const version = (known?.latestBundleVersion ?? 0) + 1;
        call.write({
          kind: {
            $case: "bundle",
            value: { fleet, version, contentSha256: SHA, signedBundle: Buffer.from(JWS, "ascii") },
          },
        });
        call.write({
          kind: {
            $case: "fleetState",
            value: {
              fleet,
              stableVersion: version - 1,
              candidateVersion: version,
              rolloutId: "r-42",
              candidatePercent: 0.5,
              generation: (known?.fleetStateGeneration ?? 0) + 1,
              updatedAtUnixMs: 1_700_000_000_123,
            },
          },
        });
        call.write({ kind: { $case: "syncComplete", value: {} } });
      } else if (kind?.$case === "heartbeat") {
        call.write({ kind: { $case: "heartbeat", value: kind.value } });
      }
    });
    call.on("end", () => call.end());
  },
};

let server: Server;
let agentClient: AgentDistributionClient;
let feedClient: AuthorityFeedClient;
const calls: Array<{ cancel(): void }> = [];

beforeAll(async () => {
  server = new Server();
  server.addService(AgentDistributionService, distributor);
  server.addService(AuthorityFeedService, authority);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  agentClient = new AgentDistributionClient(`127.0.0.1:${port}`, credentials.createInsecure());
  feedClient = new AuthorityFeedClient(`127.0.0.1:${port}`, credentials.createInsecure());
});

afterAll(async () => {
  for (const call of calls) call.cancel();
  agentClient?.close();
  feedClient?.close();
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, 2_000);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
});

describe("AgentDistribution.Stream", () => {
  it("carries every agent and distributor message kind with its values intact", async () => {
    const call = agentClient.stream();
    calls.push(call);
    const replies = inbox(call);

    const hello = AgentMessage.fromPartial({
      kind: {
        $case: "hello",
        value: {
          agentId: "agent-7",
          fleet: "edge",
          region: "eu-west",
          labels: { zone: "eu-west-1a", host: "proxy-7" },
          currentVersion: 41,
          currentContentSha256: SHA,
          softwareVersion: "0.1.0",
        },
      },
    });
    call.write(hello);

    expect(await replies.next()).toEqual(
      DistributorMessage.fromPartial({
        kind: {
          $case: "welcome",
          value: { distributorId: "dist-1", region: "eu-west", heartbeatIntervalMs: 5_000 },
        },
      }),
    );
    const update = await replies.next();
    expect(update.kind?.$case).toBe("bundleUpdate");
    if (update.kind?.$case !== "bundleUpdate") return;
    expect(update.kind.value).toEqual({
      fleet: "edge",
      version: 42,
      nonce: "n-1",
      contentSha256: SHA,
      signedBundle: Buffer.from(JWS, "ascii"),
    });
    expect(Buffer.isBuffer(update.kind.value.signedBundle)).toBe(true);
    expect(update.kind.value.signedBundle.toString("ascii")).toBe(JWS);

    const rest = [
      AgentMessage.fromPartial({
        kind: { $case: "ack", value: { version: 42, nonce: "n-1", contentSha256: SHA } },
      }),
      AgentMessage.fromPartial({
        kind: {
          $case: "nack",
          value: {
            version: MAX_SAFE,
            nonce: "n-2",
            errors: [
              { path: "routes[2].pool", message: 'unknown pool "x"', code: "unknown_reference" },
              { path: "", message: "signature by unknown key k9", code: "bad_signature" },
            ],
          },
        },
      }),
      AgentMessage.fromPartial({
        kind: {
          $case: "healthReport",
          value: {
            windowStartUnixMs: 1_700_000_000_000,
            windowEndUnixMs: 1_700_000_005_000,
            versions: [
              { version: 41, requests: 3, errors5xx: 0, latency: histogram },
              { version: 42, requests: 41, errors5xx: 2, latency: histogram },
            ],
          },
        },
      }),
      AgentMessage.fromPartial({ kind: { $case: "heartbeat", value: { sentAtUnixMs: 1_700_000_005_001 } } }),
    ];
    for (const message of rest) call.write(message);

    // The echoed Heartbeat arrives after the server has seen everything sent before it.
    expect(await replies.next()).toEqual({
      kind: { $case: "heartbeat", value: { sentAtUnixMs: 1_700_000_005_001 } },
    });
    expect(agentMessagesSeen).toEqual([hello, ...rest]);
    expect(agentMessagesSeen.map((m) => m.kind?.$case)).toEqual([
      "hello",
      "ack",
      "nack",
      "healthReport",
      "heartbeat",
    ]);
    call.end();
    // The server ends its side in turn: the call completes cleanly.
    expect((await replies.closed).code).toBe(status.OK);
  });
});

describe("AuthorityFeed.Subscribe", () => {
  it("carries every distributor and authority message kind with its values intact", async () => {
    const call = feedClient.subscribe();
    calls.push(call);
    const replies = inbox(call);

    const subscribe = DistributorUpstream.fromPartial({
      kind: {
        $case: "subscribe",
        value: {
          distributorId: "dist-1",
          region: "eu-west",
          knownFleets: [
            { fleet: "edge", latestBundleVersion: 41, fleetStateGeneration: 7 },
            { fleet: "api", latestBundleVersion: 3, fleetStateGeneration: 1 },
          ],
        },
      },
    });
    call.write(subscribe);

    const bundle = await replies.next();
    expect(bundle).toEqual({
      kind: {
        $case: "bundle",
        value: { fleet: "edge", version: 42, contentSha256: SHA, signedBundle: Buffer.from(JWS, "ascii") },
      },
    });
    expect(await replies.next()).toEqual({
      kind: {
        $case: "fleetState",
        value: {
          fleet: "edge",
          stableVersion: 41,
          candidateVersion: 42,
          rolloutId: "r-42",
          candidatePercent: 0.5,
          generation: 8,
          updatedAtUnixMs: 1_700_000_000_123,
        },
      },
    });
    expect(await replies.next()).toEqual({ kind: { $case: "syncComplete", value: {} } });

    const rest = [
      DistributorUpstream.fromPartial({
        kind: {
          $case: "agentStatusBatch",
          value: {
            statuses: [
              {
                agentId: "agent-7",
                fleet: "edge",
                region: "eu-west",
                distributorId: "dist-1",
                runningVersion: 41,
                desiredVersion: 42,
                state: AgentState.AGENT_STATE_NACKED,
                nackErrors: [
                  { path: "routes[2].pool", message: 'unknown pool "x"', code: "unknown_reference" },
                  { path: "tls.cert", message: "expired", code: "invalid_value" },
                ],
                nackVersion: 42,
                lastSeenUnixMs: 1_700_000_004_999,
                labels: { zone: "eu-west-1a" },
                connected: true,
              },
              {
                agentId: "agent-8",
                fleet: "edge",
                region: "eu-west",
                distributorId: "dist-1",
                runningVersion: 42,
                desiredVersion: 42,
                state: AgentState.AGENT_STATE_ACKED,
                lastSeenUnixMs: 1_700_000_005_000,
                connected: false,
              },
            ],
          },
        },
      }),
      DistributorUpstream.fromPartial({
        kind: {
          $case: "healthBatch",
          value: {
            samples: [
              {
                fleet: "edge",
                version: 42,
                region: "eu-west",
                windowStartUnixMs: 1_700_000_000_000,
                windowEndUnixMs: 1_700_000_005_000,
                requests: 82,
                errors5xx: 4,
                latency: histogram,
                agents: 2,
              },
            ],
          },
        },
      }),
      DistributorUpstream.fromPartial({
        kind: { $case: "heartbeat", value: { sentAtUnixMs: 1_700_000_005_002 } },
      }),
    ];
    for (const message of rest) call.write(message);

    expect(await replies.next()).toEqual({
      kind: { $case: "heartbeat", value: { sentAtUnixMs: 1_700_000_005_002 } },
    });
    expect(upstreamSeen).toEqual([subscribe, ...rest]);
    expect(upstreamSeen.map((m) => m.kind?.$case)).toEqual([
      "subscribe",
      "agentStatusBatch",
      "healthBatch",
      "heartbeat",
    ]);
    call.end();
    // The server ends its side in turn: the call completes cleanly.
    expect((await replies.closed).code).toBe(status.OK);
  });
});

describe("generated encode/decode", () => {
  it("preserves uint64 values up to Number.MAX_SAFE_INTEGER", () => {
    const hello = Hello.fromPartial({ agentId: "a", currentVersion: MAX_SAFE });
    expect(Hello.decode(Hello.encode(hello).finish()).currentVersion).toBe(9007199254740991);

    const state = FleetState.fromPartial({
      fleet: "edge",
      stableVersion: MAX_SAFE,
      generation: MAX_SAFE - 1,
    });
    expect(FleetState.decode(FleetState.encode(state).finish())).toEqual(state);
  });

  it("refuses to decode a uint64 beyond 2^53 - 1 rather than round it", () => {
    const bytes = Hello.encode(Hello.fromPartial({ currentVersion: 2 ** 53 })).finish();
    expect(() => Hello.decode(bytes)).toThrow(/MAX_SAFE_INTEGER/);
  });

  it("decodes a message with no oneof case set (e.g. a kind from a newer peer) as kind undefined", () => {
    // Field 99 is unknown to this version of the contract.
    const unknownKind = Uint8Array.from([0x9a, 0x06, 0x00]);
    expect(AgentMessage.decode(unknownKind).kind).toBeUndefined();
  });
});
