/**
 * The process under test in the fan-out bench, alone in its child so that its memory and CPU
 * are its own: either a DistributorServer on a MemoryFleetSource, or the baseline, a bare
 * @grpc/grpc-js server on the same method that writes one pre-encoded BundleUpdate to every
 * stream it holds. Driven over IPC by fanout.bench.ts (HostCommand, HostReply); started with
 * --expose-gc so that memory is read after a collection.
 */
import { performance } from "node:perf_hooks";
import { Server, ServerCredentials, type ServerDuplexStream } from "@grpc/grpc-js";
import type { Bundle, FleetState } from "../../../proto/coherent/v1/authority.js";
import {
  AgentDistributionService,
  type AgentMessage,
  DistributorMessage,
} from "../../../proto/coherent/v1/distribution.js";
import { MemoryFleetSource } from "../../../services/distributor/memory-fleet-source.js";
import { createDistributorMetrics } from "../../../services/distributor/metrics.js";
import { DistributorServer } from "../../../services/distributor/server.js";

export type HostMode = "distributor" | "bare";

export type HostCommand =
  | {
      readonly op: "start";
      readonly mode: HostMode;
      readonly heartbeatIntervalMs: number;
      /** Distributor only: what its source holds at start. */
      readonly bundles: readonly Bundle[];
      readonly state: FleetState;
    }
  /**
   * Distributor: puts the bundle (if any) then the state into the source; bare: broadcasts the
   * bundle. Either way the reply comes when `expectAcks` Acks arrived after the command, or at
   * the timeout.
   */
  | {
      readonly op: "push";
      readonly bundle?: Bundle;
      readonly state?: FleetState;
      readonly expectAcks: number;
      readonly timeoutMs: number;
      /** Bare only: broadcast to the first this many streams; all by default. */
      readonly recipients?: number;
    }
  | { readonly op: "memory" }
  | { readonly op: "connected" }
  | { readonly op: "exit" };

export interface HostMemory {
  readonly rss: number;
  readonly heapUsed: number;
  readonly external: number;
}

export type HostReply =
  | { readonly op: "started"; readonly port: number }
  | { readonly op: "pushed"; readonly ms: number; readonly acks: number }
  | { readonly op: "memory"; readonly memory: HostMemory }
  | { readonly op: "connected"; readonly count: number }
  | { readonly op: "exiting" };

interface Host {
  readonly port: number;
  connected(): number;
  /** Starts the push and returns; the Acks that follow are counted by `acked`. */
  push(command: Extract<HostCommand, { op: "push" }>): void;
}

let acks = 0;
let onAck: (() => void) | undefined;
function acked(): void {
  acks++;
  onAck?.();
}

async function startDistributor(command: Extract<HostCommand, { op: "start" }>): Promise<Host> {
  const source = new MemoryFleetSource();
  for (const bundle of command.bundles) source.putBundle(bundle);
  source.putState(command.state);
  const metrics = createDistributorMetrics();
  // Every matched Ack passes this counter: the hook sees them without a change to the server.
  const counter = metrics.acks;
  const inc = counter.inc.bind(counter) as (...args: unknown[]) => void;
  counter.inc = ((...args: unknown[]) => {
    inc(...args);
    acked();
  }) as typeof counter.inc;
  const server = new DistributorServer({
    source,
    sink: { health: () => {}, agentStatus: () => {} },
    distributorId: "bench",
    region: "bench",
    heartbeatIntervalMs: command.heartbeatIntervalMs,
    metrics,
  });
  const port = await server.listen("127.0.0.1:0");
  return {
    port,
    connected: () => server.core.connectedCount(),
    push: (push) => {
      if (push.bundle !== undefined) source.putBundle(push.bundle);
      if (push.state !== undefined) source.putState(push.state);
    },
  };
}

async function startBare(command: Extract<HostCommand, { op: "start" }>): Promise<Host> {
  type Call = ServerDuplexStream<AgentMessage, Buffer>;
  const calls = new Set<Call>();
  // The same method, its responses written as given: the bytes are encoded once, not per agent.
  const service = {
    stream: { ...AgentDistributionService.stream, responseSerialize: (bytes: Buffer): Buffer => bytes },
  };
  const welcome = Buffer.from(
    DistributorMessage.encode({
      kind: {
        $case: "welcome",
        value: { distributorId: "bare", region: "bench", heartbeatIntervalMs: command.heartbeatIntervalMs },
      },
    }).finish(),
  );
  const server = new Server();
  server.addService(service, {
    stream: (call: Call) => {
      call.on("data", (message: AgentMessage) => {
        if (message.kind?.$case === "hello") {
          calls.add(call);
          call.write(welcome);
        } else if (message.kind?.$case === "ack") acked();
      });
      const gone = (): void => {
        calls.delete(call);
      };
      call.on("end", () => {
        gone();
        call.end();
      });
      call.on("error", gone);
      call.on("close", gone);
      call.on("cancelled", gone);
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (error, bound) =>
      error ? reject(error) : resolve(bound),
    ),
  );
  return {
    port,
    connected: () => calls.size,
    push: (push) => {
      if (push.bundle === undefined) return;
      const { fleet, version, contentSha256, signedBundle } = push.bundle;
      const bytes = Buffer.from(
        DistributorMessage.encode({
          kind: {
            $case: "bundleUpdate",
            value: { fleet, version, nonce: "broadcast", contentSha256, signedBundle },
          },
        }).finish(),
      );
      let left = push.recipients ?? calls.size;
      for (const call of calls) {
        if (left-- <= 0) break;
        call.write(bytes);
      }
    },
  };
}

function memory(): HostMemory {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
  const usage = process.memoryUsage();
  return { rss: usage.rss, heapUsed: usage.heapUsed, external: usage.external };
}

let host: Host | undefined;
const reply = (message: HostReply): void => {
  process.send?.(message);
};

process.on("message", (command: HostCommand) => {
  switch (command.op) {
    case "start":
      (command.mode === "bare" ? startBare(command) : startDistributor(command)).then(
        (started) => {
          host = started;
          reply({ op: "started", port: started.port });
        },
        (error: unknown) => {
          console.error(error);
          process.exit(1);
        },
      );
      return;
    case "push": {
      const current = host;
      if (current === undefined) throw new Error("push before start");
      acks = 0;
      const started = performance.now();
      let done = false;
      const finish = (): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        onAck = undefined;
        reply({
          op: "pushed",
          ms: acks >= command.expectAcks ? performance.now() - started : Number.NaN,
          acks,
        });
      };
      const timer = setTimeout(finish, command.timeoutMs);
      onAck = () => {
        if (acks >= command.expectAcks) finish();
      };
      current.push(command);
      if (acks >= command.expectAcks) finish();
      return;
    }
    case "memory":
      reply({ op: "memory", memory: memory() });
      return;
    case "connected":
      reply({ op: "connected", count: host?.connected() ?? 0 });
      return;
    case "exit":
      reply({ op: "exiting" });
      // Exits normally, so that a --cpu-prof profile is written.
      setImmediate(() => process.exit(0));
      return;
  }
});
process.on("disconnect", () => process.exit(0));
