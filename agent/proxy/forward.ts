/**
 * Forwarding one request upstream: pick an endpoint, send, stream the answer back with
 * back-pressure, and retry or hedge where the route's policy and retry budget allow.
 *
 * An Exchange lives for one client request; an Attempt for one try against one endpoint. The
 * Attempt is undici's dispatch handler, so response bytes go from the upstream socket to the
 * client response with no stream in between.
 *
 * Retried: connect failures, resets and 502/503/504 answers — only while nothing has been sent
 * to the client yet, the request body can be sent again (none, or not read yet), the method
 * is idempotent when the policy says so, time is left, and the retry budget has room. The next
 * attempt prefers an endpoint not tried yet, after a backoff with full jitter.
 *
 * Hedged (a route policy with `hedging`, GET and HEAD only): when no answer has arrived after
 * `delay`, another attempt goes to another endpoint, up to `max_hedges`, each taken from the
 * retry budget. The first usable answer wins and the others are cancelled; a failed attempt
 * while another is still out just leaves the field to it.
 *
 * Every attempt's outcome is reported to its pool (passive health, outlier detection): a
 * failure is a connect error, a reset, a timeout or a 5xx; a cancelled attempt reports nothing.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";
import type { Readable } from "node:stream";
import type { Dispatcher } from "undici";
import type { Capture } from "../cache/capture.js";
import { type ErrorAnswer, ProxyError, type ProxyErrorKind } from "../errors.js";
import type { ChildSpan, RequestTrace } from "../observability/tracing.js";
import type { CompiledRoute } from "../snapshot/snapshot.js";
import type { EndpointRuntime, PoolRuntime } from "../upstream/upstream-registry.js";
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
  readonly error: ErrorAnswer | undefined;
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
  /** Stores the answer in the route's cache as it streams to the client (a cache miss). */
  readonly capture?: Capture;
  /** The request's trace: one child span per attempt, the attempt's traceparent upstream. */
  readonly trace?: RequestTrace;
  /** Last edits to the client response's headers (middleware response edits, X-Cache). */
  readonly decorate?: (headers: OutgoingHttpHeaders) => void;
}

export class Exchange {
  #attempts = 0;
  #hedges = 0;
  #tried: Set<number> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #hedgeTimer: NodeJS.Timeout | undefined;
  /** Attempts sent and not over; more than one only while hedging. */
  readonly #out: Attempt[] = [];
  #winner: Attempt | undefined;
  /** Retry-budget tokens this exchange holds; all are given back when it ends. */
  #budgetHeld = 0;
  #done = false;
  #bytesOut = 0;
  #endpoint: EndpointRuntime | undefined;
  #upstreamMs: number | undefined;
  #capture: Capture | undefined;
  readonly #deadline: number;

  constructor(
    private readonly route: CompiledRoute,
    private readonly pool: PoolRuntime,
    private readonly request: ExchangeRequest,
    private readonly res: ClientResponse,
    private readonly requestId: string,
    private readonly onDone: (outcome: ExchangeOutcome) => void,
  ) {
    this.#deadline = performance.now() + route.policy.timeoutMs;
    this.#capture = request.capture;
  }

  start(): void {
    this.#timer = setTimeout(() => this.#fail(ProxyError.UpstreamTimeout, true), this.route.policy.timeoutMs);
    this.res.once("close", () => {
      // The client left before the answer was complete: stop the upstream work too.
      if (!this.#done) this.#finish(499, undefined);
    });
    if (!this.#send()) {
      this.#fail(ProxyError.NoHealthyUpstream);
      return;
    }
    const hedging = this.route.policy.hedging;
    if (hedging && (this.request.method === "GET" || this.request.method === "HEAD")) {
      this.#hedgeTimer = setTimeout(() => this.#hedge(), hedging.delayMs);
    }
  }

  /** Sends one attempt; false when no endpoint can take it. */
  #send(): boolean {
    const pool = this.pool;
    let index = pool.balancer.pick({ hashKey: this.request.hashKey, exclude: this.#tried });
    if (index < 0) index = pool.trickle();
    if (index < 0) return false;
    const endpoint = pool.endpoints[index] as EndpointRuntime;
    this.#attempts++;
    this.#tried ??= new Set();
    this.#tried.add(index);
    this.#endpoint = endpoint;
    const trace = this.request.trace;
    const span = trace?.child("attempt", {
      "coherent.endpoint": endpoint.address,
      "http.request.resend_count": this.#attempts - 1,
    });
    if (trace) trace.inject(this.request.headers);
    const attempt = new Attempt(this, endpoint, index, span);
    this.#out.push(attempt);
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
    return true;
  }

  #hedge(): void {
    this.#hedgeTimer = undefined;
    const hedging = this.route.policy.hedging;
    if (!hedging || this.#done || this.#winner || this.#hedges >= hedging.maxHedges) return;
    if (!this.route.retryBudget.tryAcquire()) {
      this.route.metrics.retryBudget.inc();
      return;
    }
    this.#budgetHeld++;
    this.#hedges++;
    if (!this.#send()) return;
    if (this.#hedges < hedging.maxHedges) this.#hedgeTimer = setTimeout(() => this.#hedge(), hedging.delayMs);
  }

  /** Response headers arrived. Returns false when this answer will not reach the client. */
  onResponseStart(attempt: Attempt, status: number, headers: IncomingHttpHeaders): boolean {
    if (this.#done || this.#winner) {
      attempt.abort();
      return false;
    }
    const upstreamMs = attempt.elapsedMs();
    attempt.endpoint.metrics.duration.observe(upstreamMs / 1000);
    this.pool.reportOutcome(attempt.index, status < 500);
    // A retryable answer is dropped when another attempt may still do better: a hedge that is
    // out, or a retry.
    if (RETRYABLE_STATUS.has(status)) {
      if (this.#out.length > 1) return false;
      if (this.#mayRetry()) {
        attempt.retryGranted = true;
        return false;
      }
    }
    this.#winner = attempt;
    this.#endpoint = attempt.endpoint;
    this.#upstreamMs = upstreamMs;
    this.#cancelOthers(attempt);
    const out = clientResponseHeaders(headers, this.requestId);
    this.request.decorate?.(out);
    if (this.request.capture && !this.request.capture.begin(status, headers)) this.#dropCapture();
    this.res.writeHead(status, out);
    return true;
  }

  /** Body bytes for the client. Returns false when the client cannot take more for now. */
  onResponseData(chunk: Buffer, resume: () => void): boolean {
    this.#bytesOut += chunk.length;
    this.#capture?.chunk(chunk);
    // Both response kinds take a Buffer; their overload sets just do not unify in TypeScript.
    if ((this.res as { write(chunk: Buffer): boolean }).write(chunk)) return true;
    this.res.once("drain", resume);
    return false;
  }

  onResponseEnd(attempt: Attempt, status: number): void {
    this.#remove(attempt);
    if (attempt !== this.#winner || this.#done) return;
    if (status < 500) {
      this.route.retryBudget.recordSuccess();
      if (this.#attempts > 1) this.route.metrics.retrySuccess.inc();
    }
    this.#capture?.end();
    this.#capture = undefined;
    this.res.end();
    this.#finish(status, undefined);
  }

  /** The answer was dropped (no error), or the attempt failed. */
  onAttemptOver(attempt: Attempt, error: ProxyErrorKind | undefined): void {
    this.#remove(attempt);
    if (error !== undefined && error !== ProxyError.PayloadTooLarge)
      this.pool.reportOutcome(attempt.index, false);
    if (this.#done) return;
    if (attempt === this.#winner) {
      // The answer broke after its head went to the client: nothing can be retried.
      this.#fail(error ?? ProxyError.UpstreamReset);
      return;
    }
    if (this.#winner || this.#out.length > 0) return; // Another attempt carries the request.
    // An answer dropped for a hedge that then failed too cannot be given back: with no retry
    // left, the client gets a 502.
    const last = error ?? ProxyError.UpstreamReset;
    if (attempt.retryGranted || (last !== ProxyError.PayloadTooLarge && this.#mayRetry())) {
      this.#retryAfterBackoff(last);
      return;
    }
    this.#fail(last);
  }

  #mayRetry(): boolean {
    const policy = this.route.policy;
    if (this.res.headersSent || !this.request.replayable()) return false;
    if (policy.idempotentOnly && !IDEMPOTENT.has(this.request.method)) return false;
    if (this.#attempts >= policy.maxAttempts || performance.now() >= this.#deadline) {
      if (policy.maxAttempts > 1) this.route.metrics.retryExhausted.inc();
      return false;
    }
    // Nothing is out when a retry is decided, so tokens held for earlier tries are spent.
    this.#releaseBudget();
    if (!this.route.retryBudget.tryAcquire()) {
      this.route.metrics.retryBudget.inc();
      return false;
    }
    this.#budgetHeld = 1;
    return true;
  }

  #retryAfterBackoff(lastError: ProxyErrorKind): void {
    const policy = this.route.policy;
    const ceiling = Math.min(policy.backoffMaxMs, policy.backoffBaseMs * 2 ** (this.#attempts - 1));
    const delay = Math.min(Math.random() * ceiling, this.#deadline - performance.now());
    setTimeout(() => {
      if (!this.#done && !this.#send()) this.#fail(lastError);
    }, delay);
  }

  #remove(attempt: Attempt): void {
    const out = this.#out;
    if (out.length === 1 && out[0] === attempt) out.pop();
    else {
      const i = out.indexOf(attempt);
      if (i >= 0) out.splice(i, 1);
    }
  }

  #cancelOthers(keep: Attempt | undefined): void {
    if (this.#out.length === 0 || (this.#out.length === 1 && this.#out[0] === keep)) return;
    for (const attempt of [...this.#out]) if (attempt !== keep) attempt.abort();
  }

  #releaseBudget(): void {
    for (; this.#budgetHeld > 0; this.#budgetHeld--) this.route.retryBudget.release();
  }

  /** `timedOut`: the attempts still out count as failures of their endpoints. */
  #fail(error: ProxyErrorKind, timedOut = false): void {
    if (this.#done) return;
    if (timedOut) for (const attempt of this.#out) this.pool.reportOutcome(attempt.index, false);
    this.#cancelOthers(undefined);
    respondError(this.res, error, this.requestId);
    this.#finish(error.status, error);
  }

  #dropCapture(): void {
    this.#capture?.abort();
    this.#capture = undefined;
  }

  #finish(status: number, error: ProxyErrorKind | undefined): void {
    if (this.#done) return;
    this.#done = true;
    this.#dropCapture();
    clearTimeout(this.#timer);
    clearTimeout(this.#hedgeTimer);
    this.#releaseBudget();
    if (status === 499) this.#cancelOthers(undefined);
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
  /** Its answer was dropped because a retry was granted. */
  retryGranted = false;

  constructor(
    private readonly exchange: Exchange,
    readonly endpoint: EndpointRuntime,
    readonly index: number,
    private readonly span: ChildSpan | undefined,
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
    this.span?.setAttribute("http.response.status_code", status);
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
    if (!this.#end(error) || error instanceof AttemptAborted) return;
    this.exchange.onAttemptOver(this, this.#forwarding ? ProxyError.UpstreamReset : classify(error));
  }

  /** Marks the attempt over; false when it already was. */
  #end(error?: Error): boolean {
    if (this.#over) return false;
    this.#over = true;
    this.endpoint.active--;
    this.span?.end(error ?? (this.#status >= 500 ? { category: `status_${this.#status}` } : undefined));
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
