import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type AccessRecord, accessLine, isoNow } from "./access-log.js";

const record: AccessRecord = {
  timestamp: "2026-11-26T01:30:00.000Z",
  kind: "access",
  request_id: "r-1",
  method: "GET",
  path: '/a"b\\c\n',
  host: "example.com",
  route: "api",
  pool: "p",
  endpoint: undefined,
  status: 200,
  duration_ms: 1.25,
  upstream_duration_ms: undefined,
  retries: 0,
  error: undefined,
  bytes_in: 0,
  bytes_out: 10,
  cache: "hit",
  breaker_state: undefined,
  canary_variant: undefined,
  config_version: "1-abc",
};

describe("accessLine", () => {
  it("is the JSON of the record, one line, fields in the spec's order, absent ones left out", () => {
    const line = accessLine(record);
    expect(line.endsWith("}\n")).toBe(true);
    expect(line.indexOf("\n")).toBe(line.length - 1);
    const parsed = JSON.parse(line) as Record<string, unknown>;
    expect(parsed).toEqual(JSON.parse(JSON.stringify(record)));
    expect(Object.keys(parsed)[0]).toBe("timestamp");
    expect(parsed.path).toBe('/a"b\\c\n');
    expect("endpoint" in parsed).toBe(false);
  });

  it("escapes every string as JSON.stringify does: controls, quotes, backslashes, lone surrogates", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary" }), fc.string({ unit: "grapheme" }), (path, host) => {
        const line = accessLine({ ...record, path, host, error: `${path}\u0001` });
        expect(line.indexOf("\n")).toBe(line.length - 1);
        expect(line).toContain(`"path":${JSON.stringify(path)}`);
        expect(line).toContain(`"host":${JSON.stringify(host)}`);
        expect(JSON.parse(line)).toMatchObject({ path, host, error: `${path}\u0001` });
      }),
    );
  });
});

describe("isoNow", () => {
  it("is the current time in ISO 8601", () => {
    const before = Date.now();
    const at = Date.parse(isoNow());
    expect(at).toBeGreaterThanOrEqual(before);
    expect(at).toBeLessThanOrEqual(Date.now());
  });
});
