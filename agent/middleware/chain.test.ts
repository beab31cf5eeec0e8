import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { MiddlewareChain, Policy } from "../../services/config/index.js";
import { RateLimiterRegistry } from "../resilience/rate-limiter.js";
import { ChainCompileError, type ChainDeps, compileChain } from "./chain.js";
import { applyHeaderEdits, type HeaderBag } from "./header-edits.js";
import { JwksRegistry, jwksKey } from "./jwks-registry.js";
import type { PluginFilter, Rejection, StageResult } from "./middleware.js";
import { context, type JwksServer, sign, signingKey, silentLogger, startJwksServer } from "./test-support.js";

const NOW = Date.UTC(2030, 0, 1);
const BODY = new TextEncoder().encode("no");
const ISSUER = "https://auth.example.com";

function denied(status: number, extra: Partial<Rejection> = {}): Rejection {
  return { status, category: "plugin_denied", ...extra };
}

/** A plugin that records its calls and answers what it is told. */
function plugin(answer: () => StageResult | Promise<StageResult> = () => undefined) {
  const calls: string[] = [];
  const filter: PluginFilter = {
    filter: (ctx) => {
      calls.push(ctx.requestId);
      return answer();
    },
  };
  return { filter, calls };
}

function deps(plugins: Record<string, PluginFilter> = {}, overrides: Partial<ChainDeps> = {}): ChainDeps {
  const policies = new Map<string, Policy>([
    ["strict-policy", { id: "strict-policy", rate_limit: { requests_per_second: 1, burst: 1 } }],
  ]);
  return {
    rateLimiters: new RateLimiterRegistry(() => NOW),
    workers: 1,
    jwks: new JwksRegistry({ logger: silentLogger }),
    plugins: { get: (id) => plugins[id] },
    policies,
    logger: silentLogger,
    now: () => NOW,
    ...overrides,
  };
}

function chain(...stages: MiddlewareChain["stages"]): MiddlewareChain {
  return { id: "api-chain", stages };
}

const pluginStage = (id: string) => ({ type: "plugin" as const, plugin: id });

describe("running a chain", () => {
  it("stays synchronous when no stage waits", () => {
    const a = plugin();
    const b = plugin();
    const compiled = compileChain(
      chain(
        { type: "request_id", config: { header: "x-correlation-id" } },
        pluginStage("a"),
        { type: "header_transform", config: { add: { "x-proxy-version": "1.0" } } },
        pluginStage("b"),
      ),
      deps({ a: a.filter, b: b.filter }),
    );
    const ctx = context();
    const result = compiled.run(ctx);
    expect(result).toBeUndefined();
    expect(result).not.toBeInstanceOf(Promise);
    expect([a.calls, b.calls]).toEqual([["req-1"], ["req-1"]]);
    expect(ctx.upstreamHeaders).toMatchObject({ "x-correlation-id": "req-1", "x-proxy-version": "1.0" });
  });

  it("stops at the first rejection: later stages do not run", () => {
    const deny = plugin(() => denied(403, { body: BODY, headers: { "content-type": "text/plain" } }));
    const later = plugin();
    const compiled = compileChain(
      chain(
        pluginStage("deny"),
        { type: "header_transform", config: { add: { "x-after": "1" } } },
        pluginStage("later"),
      ),
      deps({ deny: deny.filter, later: later.filter }),
    );
    const ctx = context();
    expect(compiled.run(ctx)).toEqual({
      status: 403,
      category: "plugin_denied",
      body: BODY,
      headers: { "content-type": "text/plain" },
    });
    expect(later.calls).toEqual([]);
    expect(ctx.upstreamHeaders).not.toHaveProperty("x-after");
  });

  it("continues after a stage that waits, in order", async () => {
    const order: string[] = [];
    const slow = plugin(async () => {
      await Promise.resolve();
      order.push("slow");
      return undefined;
    });
    const next = plugin(() => {
      order.push("next");
      return denied(451);
    });
    const compiled = compileChain(
      chain(pluginStage("slow"), pluginStage("next")),
      deps({ slow: slow.filter, next: next.filter }),
    );
    const result = compiled.run(context());
    expect(result).toBeInstanceOf(Promise);
    expect(order).toEqual([]);
    expect(await result).toEqual({ status: 451, category: "plugin_denied" });
    expect(order).toEqual(["slow", "next"]);
  });

  it("stops after a stage that waited and then rejected", async () => {
    const slow = plugin(() => Promise.resolve(denied(401)));
    const later = plugin();
    const compiled = compileChain(
      chain(pluginStage("slow"), pluginStage("later")),
      deps({ slow: slow.filter, later: later.filter }),
    );
    expect(await compiled.run(context())).toMatchObject({ status: 401 });
    expect(later.calls).toEqual([]);
  });

  it("fails closed with 503 when a plugin throws, rejects or is missing", async () => {
    const error = vi.fn();
    const logger = { ...silentLogger, error };
    const throwing = plugin(() => {
      throw new Error("boom");
    });
    const rejecting = plugin(() => Promise.reject(new Error("boom")));
    const unavailable = { status: 503, category: "plugin_unavailable" };
    const d = deps({ throwing: throwing.filter, rejecting: rejecting.filter }, { logger });
    expect(compileChain(chain(pluginStage("throwing")), d).run(context())).toEqual(unavailable);
    expect(await compileChain(chain(pluginStage("rejecting")), d).run(context())).toEqual(unavailable);
    expect(compileChain(chain(pluginStage("ghost")), d).run(context())).toEqual(unavailable);
    expect(error.mock.calls.map(([fields]) => fields.event)).toEqual([
      "plugin_failed",
      "plugin_failed",
      "plugin_missing",
    ]);
  });

  it("runs nothing for a chain of markers only", () => {
    const compiled = compileChain(chain({ type: "tracing" }, { type: "access_log" }), deps());
    expect(compiled.run(context())).toBeUndefined();
  });
});

describe("compiling a chain", () => {
  it("collects the markers and the response edits of every header_transform, in order", () => {
    const compiled = compileChain(
      chain(
        { type: "tracing" },
        { type: "header_transform", config: { response: { add: { "x-served-by": "coherent" } } } },
        { type: "access_log" },
        { type: "header_transform", config: { add: {}, response: { remove: ["server", "x-served-by"] } } },
      ),
      deps(),
    );
    expect(compiled).toMatchObject({ id: "api-chain", traced: true, accessLogged: true });
    const headers: HeaderBag = { server: "nginx", "content-type": "text/html" };
    applyHeaderEdits(headers, compiled.responseEdits!);
    expect(headers).toEqual({ "content-type": "text/html" });
  });

  it("has no markers or response edits unless its stages say so", () => {
    const compiled = compileChain(chain({ type: "request_id" }), deps());
    expect(compiled).toMatchObject({ traced: false, accessLogged: false, responseEdits: undefined });
  });

  it("names a stage that cannot compile", () => {
    const broken = chain(
      { type: "request_id" },
      { type: "auth", config: { jwt: { issuer: ISSUER, jwks_file: "/nonexistent/jwks.json" } } },
    );
    let thrown: unknown;
    try {
      compileChain(broken, deps());
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ChainCompileError);
    expect(thrown).toMatchObject({ code: "MIDDLEWARE_COMPILE_FAILED", chain: "api-chain", stage: 1 });
    expect((thrown as Error).message).toMatch(/^middleware "api-chain" stages\[1\]: .*ENOENT/);
  });
});

describe("the spec's example chain", () => {
  let server: JwksServer;
  let key: Awaited<ReturnType<typeof signingKey>>;
  beforeAll(async () => {
    key = await signingKey("k1");
    server = await startJwksServer([key.jwk]);
  });
  afterAll(() => server.close());

  function example(): MiddlewareChain {
    return chain(
      { type: "request_id" },
      { type: "auth", config: { jwt: { issuer: ISSUER, audience: "api", jwks_uri: server.jwksUri } } },
      { type: "rate_limit", policy_ref: "strict-policy" },
      {
        type: "header_transform",
        config: { add: { "x-proxy-version": "1.0" }, remove: ["x-internal-secret"] },
      },
      { type: "tracing" },
      { type: "access_log" },
    );
  }

  it("authenticates, limits and transforms, and lists the registry entries it holds", async () => {
    const d = deps();
    const compiled = compileChain(example(), d);
    expect(compiled.rateLimiterKeys).toEqual(["middleware:api-chain:strict-policy:route"]);
    expect(compiled.jwksKeys).toEqual([jwksKey({ uri: server.jwksUri })]);

    expect(compiled.run(context({ "x-internal-secret": "s" }))).toMatchObject({ status: 401 });

    const token = await sign(key, { iss: ISSUER, aud: "api" }, NOW);
    const first = context({ authorization: `Bearer ${token}`, "x-internal-secret": "s" });
    expect(await compiled.run(first)).toBeUndefined();
    expect(first.upstreamHeaders).toMatchObject({ "x-proxy-version": "1.0" });
    expect(first.upstreamHeaders).not.toHaveProperty("x-internal-secret");

    // The token is cached now, so the refusal by the rate limit comes synchronously.
    const second = compiled.run(context({ authorization: `Bearer ${token}` }));
    expect(second).toEqual({ status: 429, category: "rate_limited", headers: { "retry-after": "1" } });
  });
});
