import { describe, expect, it } from "vitest";
import type { Policy } from "../../../services/config/index.js";
import { RateLimiterRegistry } from "../../resilience/rate-limiter.js";
import { context } from "../test-support.js";
import { compileRateLimitStage } from "./rate-limit.js";

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

const strict: Policy = { id: "strict", rate_limit: { requests_per_second: 1, burst: 2 } };
const perClient: Policy = {
  id: "per-client",
  rate_limit: { requests_per_second: 1, burst: 1, key: "client_ip" },
};

function deps(registry: RateLimiterRegistry, workers = 1) {
  return { rateLimiters: registry, workers, policies: new Map([strict, perClient].map((p) => [p.id, p])) };
}

describe("rate_limit stage", () => {
  it("lets the burst through, then answers 429 with Retry-After until a token is back", () => {
    const c = clock();
    const { request } = compileRateLimitStage(
      "api",
      { policy_ref: "strict" },
      deps(new RateLimiterRegistry(c.now)),
    );
    expect(request(context())).toBeUndefined();
    expect(request(context())).toBeUndefined();
    expect(request(context())).toEqual({
      status: 429,
      category: "rate_limited",
      headers: { "retry-after": "1" },
    });
    c.advance(999);
    expect(request(context())).toMatchObject({ status: 429 });
    c.advance(1);
    expect(request(context())).toBeUndefined();
  });

  it("keys buckets by the policy's key, or by the stage's key instead", () => {
    const c = clock();
    const registry = new RateLimiterRegistry(c.now);
    const byIp = compileRateLimitStage("api", { policy_ref: "per-client" }, deps(registry)).request;
    expect(byIp(context({}, "192.0.2.1"))).toBeUndefined();
    expect(byIp(context({}, "192.0.2.2"))).toBeUndefined();
    expect(byIp(context({}, "192.0.2.1"))).toMatchObject({ status: 429 });

    const byUser = compileRateLimitStage(
      "api",
      { policy_ref: "per-client", config: { key: "header:x-user" } },
      deps(registry),
    ).request;
    expect(byUser(context({ "x-user": "alice" }, "192.0.2.1"))).toBeUndefined();
    expect(byUser(context({ "x-user": "bob" }, "192.0.2.1"))).toBeUndefined();
    expect(byUser(context({ "x-user": "alice" }, "192.0.2.2"))).toMatchObject({ status: 429 });
  });

  it("keeps its buckets when the chain is compiled again for a new snapshot", () => {
    const c = clock();
    const registry = new RateLimiterRegistry(c.now);
    const before = compileRateLimitStage("api", { policy_ref: "strict" }, deps(registry));
    before.request(context());
    before.request(context());
    const after = compileRateLimitStage("api", { policy_ref: "strict" }, deps(registry));
    expect(after.limiterKey).toBe("middleware:api:strict:route");
    expect(after.request(context())).toMatchObject({ status: 429 });
  });

  it("gives each worker its share", () => {
    const c = clock();
    const { request } = compileRateLimitStage(
      "api",
      { policy_ref: "strict" },
      deps(new RateLimiterRegistry(c.now), 2),
    );
    expect(request(context())).toBeUndefined();
    expect(request(context())).toMatchObject({ status: 429, headers: { "retry-after": "2" } });
  });

  it("refuses to compile against a policy without a rate limit", () => {
    const registry = new RateLimiterRegistry();
    const policies = new Map<string, Policy>([["plain", { id: "plain" }]]);
    expect(() =>
      compileRateLimitStage("api", { policy_ref: "plain" }, { rateLimiters: registry, workers: 1, policies }),
    ).toThrow(/no rate_limit/);
  });
});
