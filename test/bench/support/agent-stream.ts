/**
 * One simulated agent's AgentDistribution stream on its own HTTP/2 connection, with raw
 * node:http2 and gRPC framing (grpc-frames.ts) instead of grpc-js call objects, so thousands
 * fit in one process: it says Hello, notes the Welcome, and counts as lost on any error or close
 * it did not ask for, or when no Welcome comes in time. The bench's and the scale suite's agents
 * (sim-agents.ts, test/scale/support/churn-agents.ts) add what they do with each message.
 * No side effects on import: both worker modules start their IPC loop when loaded.
 */
import { type ClientHttp2Session, type ClientHttp2Stream, connect, constants } from "node:http2";
import { AgentMessage, DistributorMessage } from "../../../proto/coherent/v1/distribution.js";
import { FrameReader, frame } from "./grpc-frames.js";

export const STREAM_PATH = "/coherent.v1.AgentDistribution/Stream";
const WELCOME_TIMEOUT_MS = 30_000;

export type Hello = Extract<NonNullable<AgentMessage["kind"]>, { $case: "hello" }>["value"];

export abstract class RawAgentStream {
  welcomed = false;
  ended = false;
  lastSentMs = 0;
  /** The heartbeat interval the Welcome asked for; `defaultIntervalMs` until then. */
  intervalMs: number;
  readonly #session: ClientHttp2Session;
  readonly #stream: ClientHttp2Stream;
  readonly #reader = new FrameReader();

  /** `target` is host:port. */
  constructor(target: string, hello: Hello, defaultIntervalMs = 0) {
    this.intervalMs = defaultIntervalMs;
    this.#session = connect(`http://${target}`);
    this.#session.on("error", () => this.#end());
    this.#session.on("close", () => this.#end());
    this.#stream = this.#session.request(
      {
        [constants.HTTP2_HEADER_METHOD]: "POST",
        [constants.HTTP2_HEADER_PATH]: STREAM_PATH,
        [constants.HTTP2_HEADER_CONTENT_TYPE]: "application/grpc",
        te: "trailers",
      },
      { endStream: false },
    );
    // A connection that never gets its Welcome counts as failed rather than stalling the connect.
    const welcomeTimer = setTimeout(() => {
      if (!this.welcomed) this.#end();
    }, WELCOME_TIMEOUT_MS);
    welcomeTimer.unref();
    this.#stream.on("data", (chunk: Buffer) => {
      for (const bytes of this.#reader.push(chunk)) this.#receive(DistributorMessage.decode(bytes));
    });
    // The server's trailers end the response; the stream stays half-open until we end ours.
    this.#stream.on("end", () => this.#end());
    this.#stream.on("error", () => this.#end());
    this.#stream.on("close", () => this.#end());
    this.send({ $case: "hello", value: hello });
  }

  send(kind: AgentMessage["kind"]): void {
    if (this.ended) return;
    this.lastSentMs = Date.now();
    this.#stream.write(frame(AgentMessage.encode({ kind }).finish()));
  }

  /** Leaves as a stopped agent does: the connection goes away, and it does not count as lost. */
  close(): void {
    this.ended = true;
    this.#session.destroy();
  }

  /** Every message from the distributor, the Welcome included (after `welcomed` is set). */
  protected abstract receive(message: DistributorMessage): void;

  /** The stream ended without `close`. */
  protected abstract lost(): void;

  #receive(message: DistributorMessage): void {
    if (message.kind?.$case === "welcome") {
      this.welcomed = true;
      this.intervalMs = message.kind.value.heartbeatIntervalMs || this.intervalMs;
    }
    this.receive(message);
  }

  #end(): void {
    if (this.ended) return;
    this.ended = true;
    this.#session.destroy();
    this.lost();
  }
}
