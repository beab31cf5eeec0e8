import { describe, expect, it } from "vitest";
import { Parent, parentState, sampleNewTrace } from "./tracing-sampling.js";

const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN_ID = "00f067aa0ba902b7";

describe("parentState", () => {
  it("reads the sampled flag of a valid version 00 traceparent", () => {
    expect(parentState(`00-${TRACE_ID}-${SPAN_ID}-01`)).toBe(Parent.Sampled);
    expect(parentState(`00-${TRACE_ID}-${SPAN_ID}-00`)).toBe(Parent.Unsampled);
    // Only the lowest bit is the sampled flag; other bits are reserved.
    expect(parentState(`00-${TRACE_ID}-${SPAN_ID}-03`)).toBe(Parent.Sampled);
    expect(parentState(`00-${TRACE_ID}-${SPAN_ID}-02`)).toBe(Parent.Unsampled);
    expect(parentState(`00-${TRACE_ID}-${SPAN_ID}-0b`)).toBe(Parent.Sampled);
  });

  it("accepts a later version with extra fields after a dash", () => {
    expect(parentState(`01-${TRACE_ID}-${SPAN_ID}-01-extra`)).toBe(Parent.Sampled);
    expect(parentState(`01-${TRACE_ID}-${SPAN_ID}-00`)).toBe(Parent.Unsampled);
  });

  it.each([
    ["no header", undefined],
    ["an array", [`00-${TRACE_ID}-${SPAN_ID}-01`]],
    ["an empty string", ""],
    ["a repeated header joined by node", `00-${TRACE_ID}-${SPAN_ID}-01, 00-${TRACE_ID}-${SPAN_ID}-01`],
    ["version ff", `ff-${TRACE_ID}-${SPAN_ID}-01`],
    ["version 00 with a trailing field", `00-${TRACE_ID}-${SPAN_ID}-01-extra`],
    ["a later version with a tail not led by a dash", `01-${TRACE_ID}-${SPAN_ID}-01x`],
    ["an all-zero trace id", `00-${"0".repeat(32)}-${SPAN_ID}-01`],
    ["an all-zero span id", `00-${TRACE_ID}-${"0".repeat(16)}-01`],
    ["uppercase hex", `00-${TRACE_ID.toUpperCase()}-${SPAN_ID}-01`],
    ["a short trace id", `00-${TRACE_ID.slice(1)}-${SPAN_ID}-01`],
    ["a misplaced dash", `00-${TRACE_ID}${SPAN_ID}--01`],
    ["non-hex flags", `00-${TRACE_ID}-${SPAN_ID}-0g`],
  ])("treats %s as no parent", (_name, value) => {
    expect(parentState(value)).toBe(Parent.Absent);
  });
});

describe("sampleNewTrace", () => {
  const never = () => {
    throw new Error("no draw expected");
  };

  it("samples everything at ratio 1 and nothing at ratio 0 without drawing", () => {
    expect(sampleNewTrace(1, never)).toBe(true);
    expect(sampleNewTrace(0, never)).toBe(false);
  });

  it("samples a draw below the ratio", () => {
    expect(sampleNewTrace(0.25, () => 0.2499)).toBe(true);
    expect(sampleNewTrace(0.25, () => 0.25)).toBe(false);
    expect(sampleNewTrace(0.25, () => 0.9)).toBe(false);
  });
});
