import { describe, expect, it } from "vitest";
import type { FilterAllow, FilterDeny, FilterResponse } from "../../proto/coherent/v1/filter.js";
import { applyDecision, MALFORMED } from "./filter-decision.js";

function allow(edits: Partial<FilterAllow>): FilterResponse {
  return {
    decision: { $case: "allow", value: { removeHeaders: [], setHeaders: [], addHeaders: [], ...edits } },
  };
}

function deny(fields: Partial<FilterDeny>): FilterResponse {
  return { decision: { $case: "deny", value: { status: 0, headers: [], body: Buffer.alloc(0), ...fields } } };
}

describe("applyDecision", () => {
  it("applies an allow's edits in order: remove, then set, then add", () => {
    const headers: Record<string, string | string[]> = {
      authorization: "Bearer secret",
      "x-user-id": "spoofed",
      "x-trace": "a",
      accept: "*/*",
    };
    const result = applyDecision(
      allow({
        removeHeaders: ["Authorization"],
        setHeaders: [
          { name: "X-User-Id", value: "42" },
          { name: "x-role", value: "admin" },
          { name: "x-role", value: "ops" },
        ],
        addHeaders: [
          { name: "x-trace", value: "b" },
          { name: "x-user-id", value: "43" },
        ],
      }),
      headers,
    );
    expect(result).toBeUndefined();
    expect(headers).toEqual({
      "x-user-id": ["42", "43"],
      "x-trace": ["a", "b"],
      "x-role": ["admin", "ops"],
      accept: "*/*",
    });
  });

  it("adds to a repeated header without changing the array it was given", () => {
    const cookies = ["a=1", "b=2"];
    const headers: Record<string, string | string[]> = { "set-cookie": cookies };
    applyDecision(allow({ addHeaders: [{ name: "set-cookie", value: "c=3" }] }), headers);
    expect(headers["set-cookie"]).toEqual(["a=1", "b=2", "c=3"]);
    expect(cookies).toEqual(["a=1", "b=2"]);
  });

  it("treats names of Object's own properties as ordinary headers", () => {
    const headers: Record<string, string | string[]> = {};
    applyDecision(allow({ addHeaders: [{ name: "constructor", value: "x" }] }), headers);
    expect(headers).toEqual({ constructor: "x" });
  });

  // Each response also removes x-keep: were anything applied before the check, it would go.
  it.each([
    ["a header name that is not a token", { setHeaders: [{ name: "bad name", value: "x" }] }],
    ["a value with a line break", { addHeaders: [{ name: "x-a", value: "1\r\nx-b: 2" }] }],
    ["a hop-by-hop header", { removeHeaders: ["x-keep", "Connection"] }],
    ["the message framing", { setHeaders: [{ name: "content-length", value: "0" }] }],
    ["the prototype", { addHeaders: [{ name: "__proto__", value: "x" }] }],
  ])("refuses %s and leaves the headers untouched", (_, edits: Partial<FilterAllow>) => {
    const headers: Record<string, string | string[]> = { "x-keep": "1" };
    expect(applyDecision(allow({ removeHeaders: ["x-keep"], ...edits }), headers)).toBe(MALFORMED);
    expect(headers).toEqual({ "x-keep": "1" });
  });

  it("turns a deny into the filter's own answer, 403 when no status is given", () => {
    const body = Buffer.from('{"error":"nope"}');
    const result = applyDecision(
      deny({
        headers: [
          { name: "Content-Type", value: "application/json" },
          { name: "www-authenticate", value: "Bearer" },
          { name: "www-authenticate", value: "Basic" },
        ],
        body,
      }),
      {},
    );
    expect(result).toEqual({
      status: 403,
      category: "plugin_denied",
      headers: { "content-type": "application/json", "www-authenticate": ["Bearer", "Basic"] },
      body,
    });
  });

  it("keeps a deny's explicit status, including a redirect", () => {
    expect(
      applyDecision(deny({ status: 302, headers: [{ name: "location", value: "/login" }] }), {}),
    ).toMatchObject({
      status: 302,
      headers: { location: "/login" },
    });
  });

  it.each([99, 199, 600, 1000])("refuses a deny with status %i", (status) => {
    expect(applyDecision(deny({ status }), {})).toBe(MALFORMED);
  });

  it("refuses a deny that sets the message framing", () => {
    expect(applyDecision(deny({ headers: [{ name: "transfer-encoding", value: "chunked" }] }), {})).toBe(
      MALFORMED,
    );
  });

  it("refuses a response without a decision", () => {
    expect(applyDecision({ decision: undefined }, {})).toBe(MALFORMED);
  });
});
