import { describe, expect, it } from "vitest";
import { context } from "../test-support.js";
import { compileRequestIdStage } from "./request-id.js";

describe("request_id stage", () => {
  it("leaves X-Request-Id to the engine", () => {
    expect(compileRequestIdStage(undefined)).toBeUndefined();
    expect(compileRequestIdStage({ header: "X-Request-Id" })).toBeUndefined();
  });

  it("honours a well-formed id in another header", () => {
    const hook = compileRequestIdStage({ header: "x-correlation-id" })!;
    const ctx = context({ "x-correlation-id": "abc-123" });
    expect(hook(ctx)).toBeUndefined();
    expect(ctx.upstreamHeaders["x-correlation-id"]).toBe("abc-123");
  });

  it("sends the request's id upstream when that header is missing or malformed", () => {
    const hook = compileRequestIdStage({ header: "x-correlation-id" })!;
    const missing = context();
    hook(missing);
    expect(missing.upstreamHeaders["x-correlation-id"]).toBe("req-1");
    const malformed = context({ "x-correlation-id": "has spaces" });
    hook(malformed);
    expect(malformed.upstreamHeaders["x-correlation-id"]).toBe("req-1");
    const repeated = context({ "x-correlation-id": ["first", "second"] });
    hook(repeated);
    expect(repeated.upstreamHeaders["x-correlation-id"]).toBe("first");
  });
});
