/**
 * Capture of an upstream answer while it streams to the client. The integrator feeds it
 * `begin` when the head arrives, `chunk` for each body chunk it writes, then `end` when the
 * body is complete or `abort` when it is not (upstream reset, client gone, timeout).
 *
 * It buffers only an answer that may be stored and drops it, silently, once it grows past
 * `max_entry_size`. A body shorter or longer than its Content-Length is a truncated answer
 * and not stored. The coalescing leader it was given hears the outcome as soon as it is known
 * — at `begin` for an answer that is not storable — so followers wait no longer than needed.
 * No method throws: a capture that fails stores nothing.
 */
import {
  headerBytes,
  type ResponseHeaders,
  type StoredHeaders,
  single,
  storedHeaders,
} from "./cache-headers.js";
import type { CachePolicy } from "./cache-policy.js";
import type { CacheRequest } from "./cache-request.js";
import type { LeaderTicket } from "./coalescer.js";
import { type Storable, storeDecision } from "./store-decision.js";

/** Where a complete capture goes: the route's CacheStore. */
export interface CaptureSink {
  readonly policy: CachePolicy;
  /** Keeps the entry; false when it was refused. */
  put(
    key: string,
    request: CacheRequest,
    decision: Storable,
    status: number,
    headers: StoredHeaders,
    body: readonly Buffer[],
    size: number,
  ): boolean;
  /** Counts a failure of the cache's own code. */
  failed(): void;
}

const DIGITS = /^\d+$/;

export class Capture {
  readonly #sink: CaptureSink;
  readonly #key: string;
  readonly #request: CacheRequest;
  readonly #now: () => number;
  readonly #leader: LeaderTicket | undefined;
  #capturing = false;
  #finished = false;
  #decision: Storable | undefined;
  #status = 0;
  #headers: StoredHeaders = {};
  #chunks: Buffer[] = [];
  #size = 0;
  #bodyBytes = 0;
  #contentLength: number | undefined;

  constructor(
    sink: CaptureSink,
    key: string,
    request: CacheRequest,
    now: () => number,
    leader?: LeaderTicket,
  ) {
    this.#sink = sink;
    this.#key = key;
    this.#request = request;
    this.#now = now;
    this.#leader = leader;
  }

  /** The answer's head arrived; true when its body will be captured. */
  begin(status: number, headers: ResponseHeaders): boolean {
    if (this.#finished || this.#capturing) return false;
    try {
      const policy = this.#sink.policy;
      const decision = storeDecision(policy, this.#request, status, headers, this.#now());
      if (!decision.store) return this.#finish(false);
      const kept = storedHeaders(headers);
      const length = single(headers["content-length"])?.trim();
      this.#contentLength = length !== undefined && DIGITS.test(length) ? Number(length) : undefined;
      this.#size = headerBytes(kept);
      if (this.#size + (this.#contentLength ?? 0) > policy.maxEntrySize) return this.#finish(false);
      this.#decision = decision;
      this.#status = status;
      this.#headers = kept;
      this.#capturing = true;
      return true;
    } catch {
      this.#sink.failed();
      return this.#finish(false);
    }
  }

  /** A body chunk as written to the client. */
  chunk(buffer: Buffer): void {
    if (!this.#capturing) return;
    this.#size += buffer.byteLength;
    this.#bodyBytes += buffer.byteLength;
    if (this.#size > this.#sink.policy.maxEntrySize) {
      this.#finish(false);
      return;
    }
    try {
      this.#chunks.push(owned(buffer));
    } catch {
      this.#sink.failed();
      this.#finish(false);
    }
  }

  /** The body is complete; true when the answer was stored. */
  end(): boolean {
    if (!this.#capturing) return this.#finish(false);
    try {
      const complete = this.#contentLength === undefined || this.#contentLength === this.#bodyBytes;
      const stored =
        complete &&
        this.#decision !== undefined &&
        this.#sink.put(
          this.#key,
          this.#request,
          this.#decision,
          this.#status,
          this.#headers,
          this.#chunks,
          this.#size,
        );
      return this.#finish(stored);
    } catch {
      this.#sink.failed();
      return this.#finish(false);
    }
  }

  /** The answer will not complete. */
  abort(): void {
    this.#finish(false);
  }

  #finish(stored: boolean): boolean {
    if (this.#finished) return false;
    this.#finished = true;
    this.#capturing = false;
    this.#chunks = [];
    this.#leader?.done(stored);
    return stored;
  }
}

/**
 * A chunk that views a larger allocation (a socket read buffer, Buffer's shared pool) would
 * keep all of it alive and make the entry's size a lie: such chunks are copied.
 */
function owned(buffer: Buffer): Buffer {
  if (buffer.byteOffset === 0 && buffer.byteLength === buffer.buffer.byteLength) return buffer;
  const copy = Buffer.allocUnsafeSlow(buffer.byteLength);
  buffer.copy(copy);
  return copy;
}
