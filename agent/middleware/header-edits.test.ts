import { describe, expect, it } from "vitest";
import { applyHeaderEdits, compileHeaderEdits, type HeaderBag } from "./header-edits.js";

describe("header edits", () => {
  it("removes, then sets, then adds, whatever order the config lists them in", () => {
    const edits = compileHeaderEdits({
      add: { "x-proxy-version": "1.0", "x-both": "added" },
      set: { "x-both": "set" },
      remove: ["x-internal-secret", "x-both"],
    });
    const headers: HeaderBag = { "x-internal-secret": "hunter2", "x-both": "client", accept: "*/*" };
    applyHeaderEdits(headers, edits);
    expect(headers).toEqual({ accept: "*/*", "x-proxy-version": "1.0", "x-both": ["set", "added"] });
  });

  it("adds to existing values and replaces them with set", () => {
    const headers: HeaderBag = { via: "1.1 edge", "cache-control": ["no-store", "private"], "x-n": 3 };
    applyHeaderEdits(
      headers,
      compileHeaderEdits({ add: { via: "1.1 coherent", "cache-control": "no-transform", "x-n": "4" } }),
    );
    expect(headers).toEqual({
      via: ["1.1 edge", "1.1 coherent"],
      "cache-control": ["no-store", "private", "no-transform"],
      "x-n": ["3", "4"],
    });
    applyHeaderEdits(headers, compileHeaderEdits({ set: { via: "1.1 coherent" } }));
    expect(headers.via).toBe("1.1 coherent");
  });

  it("lower-cases names, as Node keeps header names", () => {
    const edits = compileHeaderEdits({ set: { "X-Frame-Options": "DENY" }, remove: ["Server"] });
    const headers: HeaderBag = { server: "nginx" };
    applyHeaderEdits(headers, edits);
    expect(headers).toEqual({ "x-frame-options": "DENY" });
  });

  it("compiles no edits to an empty list", () => {
    expect(compileHeaderEdits(undefined)).toEqual([]);
    expect(compileHeaderEdits({ add: {}, remove: [] })).toEqual([]);
  });
});
