/**
 * The sampling decision, taken before any span, id or context exists, so that a request that is
 * not sampled costs a header read and at most one random draw.
 *
 * Parent-based: a valid incoming `traceparent` decides by its sampled flag. Without one (or with
 * a malformed one, which W3C Trace Context says to treat as absent) a new trace is sampled with
 * probability `ratio`. A trace that starts here has no upstream decision to agree with, so one
 * draw per request samples the same share as a trace-id ratio sampler would.
 */

export const Parent = {
  /** No traceparent, or one that is not valid: this request starts a trace. */
  Absent: 0,
  Sampled: 1,
  Unsampled: 2,
} as const;

export type ParentState = (typeof Parent)[keyof typeof Parent];

const DASH = 0x2d;
/** version "00": exactly 2 + 1 + 32 + 1 + 16 + 1 + 2 characters. */
const V00_LENGTH = 55;

/**
 * What an incoming `traceparent` header asks for. Node joins a repeated header with ", ", which
 * makes it invalid, as the specification wants for a repeated traceparent.
 */
export function parentState(traceparent: string | string[] | undefined): ParentState {
  if (typeof traceparent !== "string" || traceparent.length < V00_LENGTH) return Parent.Absent;
  const v0 = hexValue(traceparent.charCodeAt(0));
  const v1 = hexValue(traceparent.charCodeAt(1));
  if (v0 < 0 || v1 < 0 || (v0 === 15 && v1 === 15)) return Parent.Absent;
  // A later version may append fields after a dash; version 00 may not.
  const tailValid =
    v0 === 0 && v1 === 0
      ? traceparent.length === V00_LENGTH
      : traceparent.length === V00_LENGTH || traceparent.charCodeAt(V00_LENGTH) === DASH;
  if (!tailValid) return Parent.Absent;
  if (traceparent.charCodeAt(2) !== DASH || traceparent.charCodeAt(35) !== DASH) return Parent.Absent;
  if (traceparent.charCodeAt(52) !== DASH) return Parent.Absent;
  if (!isNonZeroHex(traceparent, 3, 35) || !isNonZeroHex(traceparent, 36, 52)) return Parent.Absent;
  const flagsHigh = hexValue(traceparent.charCodeAt(53));
  const flagsLow = hexValue(traceparent.charCodeAt(54));
  if (flagsHigh < 0 || flagsLow < 0) return Parent.Absent;
  return (flagsLow & 1) === 1 ? Parent.Sampled : Parent.Unsampled;
}

/** Whether a trace that starts here is sampled; `random` returns [0, 1) like Math.random. */
export function sampleNewTrace(ratio: number, random: () => number): boolean {
  if (ratio >= 1) return true;
  return ratio > 0 && random() < ratio;
}

/** Lowercase hex only: W3C Trace Context rejects uppercase ids. */
function hexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  if (code >= 0x61 && code <= 0x66) return code - 0x57;
  return -1;
}

/** An all-zero trace or span id is invalid. */
function isNonZeroHex(value: string, start: number, end: number): boolean {
  let nonZero = false;
  for (let i = start; i < end; i++) {
    const digit = hexValue(value.charCodeAt(i));
    if (digit < 0) return false;
    if (digit !== 0) nonZero = true;
  }
  return nonZero;
}
