/**
 * One JSON line per request, with the spec's fields (`timestamp` first) and `kind: "access"`
 * to tell them from the process log on the same stdout, written through pino's asynchronous
 * destination so the request path never waits on stdout.
 */
import type { DestinationStream } from "pino";

export interface AccessRecord {
  readonly timestamp: string;
  readonly kind: "access";
  readonly request_id: string;
  readonly method: string;
  readonly path: string;
  readonly host: string;
  readonly route: string | undefined;
  readonly pool: string | undefined;
  readonly endpoint: string | undefined;
  readonly status: number;
  readonly duration_ms: number;
  readonly upstream_duration_ms: number | undefined;
  readonly retries: number;
  readonly error: string | undefined;
  readonly bytes_in: number;
  readonly bytes_out: number;
  /** hit, miss or bypass, on routes with a cache. */
  readonly cache: string | undefined;
  /** The pool's circuit breaker, when it has one. */
  readonly breaker_state: string | undefined;
  /** stable, canary or cohort, on routes with a traffic plan. */
  readonly canary_variant: string | undefined;
  readonly config_version: string | undefined;
}

export interface AccessLog {
  write(record: AccessRecord): void;
  /** Hands every gathered line to the destination now (at exit). */
  flush(): void;
}

/** Records are written once this many are gathered, or FLUSH_INTERVAL_MS after the first. */
const FLUSH_RECORDS = 64;
const FLUSH_INTERVAL_MS = 50;

/**
 * Access lines on `destination` (shared with the process log, so lines never interleave).
 * Records are gathered and turned into text together, 64 at a time or 50 ms after the first:
 * text built as requests end lived across garbage collections as thousands of small string
 * pieces, which cost more than the formatting itself (measured: about 6 µs per request in the
 * cache-hit path); records built into one batch of text at once are cheap to keep and write.
 */
export function createAccessLog(destination: DestinationStream): AccessLog {
  let pending: AccessRecord[] = [];
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    clearTimeout(timer);
    timer = undefined;
    if (pending.length === 0) return;
    const batch = pending;
    pending = [];
    let text = "";
    for (const record of batch) text += accessLine(record);
    destination.write(text);
  };
  return {
    write: (record) => {
      pending.push(record);
      if (pending.length >= FLUSH_RECORDS) flush();
      else if (timer === undefined) timer = setTimeout(flush, FLUSH_INTERVAL_MS).unref();
    },
    flush,
  };
}

/**
 * One record as a JSON line, fields in the spec's order, absent ones left out. Written out
 * field by field, with strings quoted as they are unless they hold a character JSON must
 * escape: a loop over the field names with JSON.stringify of every string cost 1.8 µs per
 * line, this 0.6 µs, on the path of every request.
 */
export function accessLine(r: AccessRecord): string {
  let line = `{"timestamp":"${r.timestamp}","kind":"access","request_id":${quote(r.request_id)},"method":${quote(r.method)},"path":${quote(r.path)},"host":${quote(r.host)}`;
  if (r.route !== undefined) line += `,"route":${quote(r.route)}`;
  if (r.pool !== undefined) line += `,"pool":${quote(r.pool)}`;
  if (r.endpoint !== undefined) line += `,"endpoint":${quote(r.endpoint)}`;
  line += `,"status":${r.status},"duration_ms":${r.duration_ms}`;
  if (r.upstream_duration_ms !== undefined) line += `,"upstream_duration_ms":${r.upstream_duration_ms}`;
  line += `,"retries":${r.retries}`;
  if (r.error !== undefined) line += `,"error":${quote(r.error)}`;
  line += `,"bytes_in":${r.bytes_in},"bytes_out":${r.bytes_out}`;
  if (r.cache !== undefined) line += `,"cache":${quote(r.cache)}`;
  if (r.breaker_state !== undefined) line += `,"breaker_state":${quote(r.breaker_state)}`;
  if (r.canary_variant !== undefined) line += `,"canary_variant":${quote(r.canary_variant)}`;
  if (r.config_version !== undefined) line += `,"config_version":${quote(r.config_version)}`;
  return `${line}}\n`;
}

/** What JSON.stringify would escape or rewrite: controls, quote, backslash, surrogates. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what JSON escapes
const NEEDS_ESCAPE = /[\u0000-\u001f"\\\ud800-\udfff]/;

function quote(value: string): string {
  return NEEDS_ESCAPE.test(value) ? JSON.stringify(value) : `"${value}"`;
}

let lastMs = 0;
let lastIso = "";

/** The current time as ISO 8601, formatted at most once per millisecond. */
export function isoNow(): string {
  const now = Date.now();
  if (now !== lastMs) {
    lastMs = now;
    lastIso = new Date(now).toISOString();
  }
  return lastIso;
}
