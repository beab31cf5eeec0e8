/**
 * Forwarding one request upstream: pick an endpoint, send, stream the answer back with
 * back-pressure, and retry where the route's policy and retry budget allow.
 *
 * An Exchange lives for one client request; an Attempt for one try against one endpoint. The
 * Attempt is undici's dispatch handler, so response bytes go from the upstream socket to the
 * client response with no stream in between.
 *
 * Retried: connect failures, resets and 502/503/504 answers — only while nothing has been sent
 * to the client yet, the request body can be sent again (none, or not read yet), the method
 * is idempotent when the policy says so, time is left, and the retry budget has room. The next
 * attempt prefers an endpoint not tried yet, after a backoff with full jitter.
 */
import type { IncomingHttpHeaders } from "node:http";
import type { Readable } from "node:stream";
import type { Dispatcher } from "undici";
import { ProxyError, type ProxyErrorKind } from "../errors.js";
import type { CompiledRoute } from "../snapshot/snapshot.js";
import type { EndpointRuntime } from "../upstream/upstream-registry.js";
import { clientResponseHeaders } from "./headers.js";
import { type ClientResponse, respondError } from "./respond.js";

const RETRYABLE_STATUS = new Set([502, 503, 504]);
const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"]);
const CONNECT_ERRORS = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EAI_AGAIN",
  "UND_ERR_CONNECT_TIMEOUT",
]);

/** What the exchange tells the access log and metrics when it is over. */
export interface ExchangeOutcome {
  readonly status: number;
  readonly endpoint: string | undefined;
  readonly upstreamMs: number | undefined;
  readonly retries: number;
  readonly error: ProxyErrorKind | undefined;
  readonly bytesOut: number;
}

export interface ExchangeRequest {
  readonly method: string;
  /** Path and query as sent upstream. */
  readonly path: string;
  readonly headers: Record<string, string | string[]>;
  readonly body: Readable | null;
  /** Whether the body can still be sent again (no body, or none of it read yet). */
  readonly replayable: () => boolean;
  readonly hashKey: string | undefined;
}

export class Exchange {
  #attempts = 0;
  #tried: Set<number> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #current: Attempt | undefined;
  #retryHeld = false;
  #done = false;
  #bytesOut = 0;
  #endpoint: EndpointRuntime | undefined;
  #upstreamMs: number | undefined;
  readonly #deadline: number;

  constructor(
    private readonly route: CompiledRoute,
    private readonly request: ExchangeRequest,
    private readonly res: ClientResponse,
    private readonly requestId: string,
    private readonly onDone: (outcome: ExchangeOutcome) => void,
  ) {
    this.#deadline = performance.now() + route.policy.timeoutMs;
  }

  start(): void {
    this.#timer = setTimeout(() => this.#fail(ProxyError.UpstreamTimeout), this.route.policy.timeoutMs);
    this.res.once("close", () => {
      // The client left before the answer was complete: stop the upstream work too.
      if (!this.#done) this.#finish(499, undefined);
    });
    this.#send();
  }

  #send(): void {
    const pool = this.route.pool;
    const index = pool.balancer.pick({ hashKey: this.request.hashKey, exclude: this.#tried });
    if (index < 0) {
      this.#fail(ProxyError.NoHealthyUpstream);
      return;
    }
    const endpoint = pool.endpoints[index] as EndpointRuntime;
    this.#attempts++;
    this.#tried ??= new Set();
    this.#tried.add(index);
    this.#endpoint = endpoint;
    const attempt = new Attempt(this, endpoint);
    this.#current = attempt;
    endpoint.active++;
    endpoint.metrics.requests.inc();
    endpoint.dispatcher.dispatch(
      {
        origin: endpoint.origin,
        path: this.request.path,
        method: this.request.method,
        headers: this.request.headers,
        body: this.request.body,
      },
      attempt,
    );
  }

  /** Response headers arrived. Returns false when this answer will be dropped for a retry. */
  onResponseStart(attempt: Attempt, status: number, headers: IncomingHttpHeaders): boolean {
    if (attempt !== this.#current || this.#done) return false;
    this.#upstreamMs = attempt.elapsedMs();
    attempt.endpoint.metrics.duration.observe(this.#upstreamMs / 1000);
    if (RETRYABLE_STATUS.has(status) && this.#mayRetry()) return false;
    this.res.writeHead(status, clientResponseHeaders(headers, this.requestId));
    return true;
  }

  /** Body bytes for the client. Returns false when the client cannot take more for now. */
  onResponseData(chunk: Buffer, resume: () => void): boolean {
    this.#bytesOut += chunk.length;
    // Both response kinds take a Buffer; their overload sets just do not unify in TypeScript.
    if ((this.res as { write(chunk: Buffer): boolean }).write(chunk)) return true;
    this.res.once("drain", resume);
    return false;
  }

  onResponseEnd(attempt: Attempt, status: number): void {
    if (attempt !== this.#current || this.#done) return;
    if (status < 500) {
      this.route.retryBudget.recordSuccess();
      if (this.#attempts > 1) this.route.metrics.retrySuccess.inc();
    }
    this.res.end();
    this.#finish(status, undefined);
  }

  /** The answer was dropped for a retry (no error), or the attempt failed. */
  onAttemptOver(attempt: Attempt, error: ProxyErrorKind | undefined): void {
    if (attempt !== this.#current || this.#done) return;
    if (error === undefined || (error !== ProxyError.PayloadTooLarge && this.#mayRetry())) {
      this.#retryAfterBackoff();
      return;
    }
    this.#fail(error);
  }

  #mayRetry(): boolean {
    const policy = this.route.policy;
    if (this.res.headersSent || !this.request.replayable()) return false;
    if (policy.idempotentOnly && !IDEMPOTENT.has(this.request.method)) return false;
    if (this.#attempts >= policy.maxAttempts || performance.now() >= this.#deadline) {
      if (policy.maxAttempts > 1) this.route.metrics.retryExhausted.inc();
      return false;
    }
    if (this.#retryHeld) this.route.retryBudget.release();
    this.#retryHeld = this.route.retryBudget.tryAcquire();
    if (!this.#retryHeld) this.route.metrics.retryBudget.inc();
    return this.#retryHeld;
  }

  #retryAfterBackoff(): void {
    const policy = this.route.policy;
    const ceiling = Math.min(policy.backoffMaxMs, policy.backoffBaseMs * 2 ** (this.#attempts - 1));
    const delay = Math.min(Math.random() * ceiling, this.#deadline - performance.now());
    setTimeout(() => {
      if (!this.#done) this.#send();
    }, delay);
  }

  #fail(error: ProxyErrorKind): void {
    if (this.#done) return;
    this.#current?.abort();
    respondError(this.res, error, this.requestId);
    this.#finish(error.status, error);
  }

  #finish(status: number, error: ProxyErrorKind | undefined): void {
    if (this.#done) return;
    this.#done = true;
    clearTimeout(this.#timer);
    if (this.#retryHeld) this.route.retryBudget.release();
    if (status === 499) this.#current?.abort();
    this.onDone({
      status,
      endpoint: this.#endpoint?.address,
      upstreamMs: this.#upstreamMs,
      retries: Math.max(0, this.#attempts - 1),
      error,
      bytesOut: this.#bytesOut,
    });
  }
}

/**
 * One try against one endpoint: undici's handler for the dispatch. It counts itself in the
 * endpoint's in-flight requests from dispatch until it is over, whichever way it ends.
 */
class Attempt implements Dispatcher.DispatchHandler {
  #controller: Dispatcher.DispatchController | undefined;
  #abortRequested = false;
  #status = 0;
  #forwarding = false;
  #over = false;
  readonly #started = performance.now();

  constructor(
    private readonly exchange: Exchange,
    readonly endpoint: EndpointRuntime,
  ) {}

  elapsedMs(): number {
    return performance.now() - this.#started;
  }

  abort(): void {
    if (this.#over) return;
    if (this.#controller) this.#controller.abort(new AttemptAborted());
    else this.#abortRequested = true; // Still queued in undici: abort when it starts.
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#abortRequested) controller.abort(new AttemptAborted());
  }

  onResponseStart(_c: Dispatcher.DispatchController, status: number, headers: IncomingHttpHeaders): void {
    if (status < 200) return; // 1xx informational: the final answer follows.
    this.#status = status;
    this.#forwarding = this.exchange.onResponseStart(this, status, headers);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    // A dropped answer (retry coming) is read to its end, so its connection can be reused.
    if (this.#forwarding && !this.exchange.onResponseData(chunk, () => controller.resume()))
      controller.pause();
  }

  onResponseEnd(): void {
    if (!this.#end()) return;
    if (this.#forwarding) this.exchange.onResponseEnd(this, this.#status);
    else this.exchange.onAttemptOver(this, undefined);
  }

  onResponseError(_c: Dispatcher.DispatchController, error: Error): void {
    if (!this.#end() || error instanceof AttemptAborted) return;
    this.exchange.onAttemptOver(this, this.#forwarding ? ProxyError.UpstreamReset : classify(error));
  }

  /** Marks the attempt over; false when it already was. */
  #end(): boolean {
    if (this.#over) return false;
    this.#over = true;
    this.endpoint.active--;
    return true;
  }
}

class AttemptAborted extends Error {
  constructor() {
    super("attempt aborted by the proxy");
  }
}

function classify(error: Error & { code?: string }): ProxyErrorKind {
  if (error.code === "COHERENT_BODY_TOO_LARGE") return ProxyError.PayloadTooLarge;
  if (error.code !== undefined && CONNECT_ERRORS.has(error.code)) return ProxyError.UpstreamConnectFailed;
  return ProxyError.UpstreamReset;
}
