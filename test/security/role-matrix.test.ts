/**
 * Every route of the authority's operator API × {no token, bad tokens, viewer, operator,
 * admin}: 401 without a live token, 403 for a role below the route's, and never a 500. The
 * matrix is checked against the OpenAPI document at /docs/json, so a new route without a row
 * here fails this file. Also: the event stream's ?token= (and that no other route takes one),
 * and the agent's admin API (/api/v2/*), which answers 401 without its token or with another.
 */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { Agent, request as undiciRequest } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestAuthority, type TestAuthority, testDatabase } from "../../authority/api/test-harness.js";
import { ADMIN_TOKEN as AGENT_ADMIN_TOKEN, type AgentProcess, startAgent } from "../support/agent-process.js";
import { request } from "../support/http.js";
import { reportReliability } from "../support/reliability.js";

type Role = "viewer" | "operator" | "admin";
const ROLES: readonly Role[] = ["viewer", "operator", "admin"];
const FLEET = "edge";

/**
 * "METHOD /openapi/path" → the least role it needs. Kept by hand on purpose: the test below
 * fails when /docs/json lists a route this table does not, or the other way round.
 */
const MATRIX: Readonly<Record<string, Role>> = {
  "POST /api/v1/fleets": "admin",
  "GET /api/v1/fleets": "viewer",
  "GET /api/v1/fleets/{fleet}": "viewer",
  "GET /api/v1/fleets/{fleet}/state": "viewer",
  "POST /api/v1/fleets/{fleet}/promote": "admin",
  "GET /api/v1/agents": "viewer",
  "GET /api/v1/fleets/{fleet}/status": "viewer",
  "POST /api/v1/fleets/{fleet}/bundles": "operator",
  "GET /api/v1/fleets/{fleet}/bundles": "viewer",
  "GET /api/v1/fleets/{fleet}/bundles/{version}": "viewer",
  "GET /api/v1/fleets/{fleet}/bundles/{from}/diff/{to}": "viewer",
  "POST /api/v1/validate": "viewer",
  "GET /api/v1/audit": "viewer",
  "GET /api/v1/audit/verify": "admin",
  "POST /api/v1/tokens": "admin",
  "GET /api/v1/tokens": "admin",
  "DELETE /api/v1/tokens/{id}": "admin",
  "GET /api/v1/events": "viewer",
  "POST /api/v1/fleets/{fleet}/rollouts": "operator",
  "GET /api/v1/rollouts": "viewer",
  "GET /api/v1/rollouts/{id}": "viewer",
  "POST /api/v1/rollouts/{id}/pause": "operator",
  "POST /api/v1/rollouts/{id}/resume": "operator",
  "POST /api/v1/rollouts/{id}/abort": "operator",
  "POST /api/v1/rollouts/{id}/rollback": "operator",
  "POST /api/v1/rollouts/{id}/promote": "operator",
  "GET /api/v1/fleets/{fleet}/plan": "viewer",
  "PUT /api/v1/fleets/{fleet}/plan": "admin",
};

/** Path parameters filled so a request reaches its handler: a real fleet, unknown ids. */
function concrete(path: string): string {
  return path
    .replaceAll("{fleet}", FLEET)
    .replaceAll("{version}", "1")
    .replaceAll("{from}", "1")
    .replaceAll("{to}", "1")
    .replaceAll("{id}", "00000000-0000-4000-8000-000000000000");
}

/** A plausible body, so a permitted request is judged on its handling, not on its shape. */
function bodyFor(method: string, path: string): unknown {
  if (method === "GET" || method === "DELETE") return undefined;
  if (path === "/api/v1/fleets") return { name: `matrix-${Math.random().toString(36).slice(2, 8)}` };
  if (path === "/api/v1/tokens") return { name: "matrix", role: "viewer" };
  if (path.endsWith("/bundles") || path === "/api/v1/validate") return { config: SAMPLE_CONFIG };
  if (path.endsWith("/promote") && path.includes("/fleets/")) return { version: 1 };
  if (path.endsWith("/rollouts")) return { version: 1 };
  if (path.endsWith("/plan")) return { plan: { steps: [] } };
  return {};
}

const SAMPLE_CONFIG = {
  pools: [{ id: "api", endpoints: [{ address: "10.0.0.1:8000" }] }],
  routes: [{ id: "r", path_prefix: "/", pool: "api", policy: { timeout: "5s" } }],
};

let authority: TestAuthority;
let agent: AgentProcess;
const tokens = {} as Record<Role, string>;
let revokedToken: string;
let requestsSent = 0;
let badInputsTried = 0;
let serverErrors = 0;
/** This file's own connections to the authority, so they can all be closed before it is. */
const dispatcher = new Agent();

beforeAll(async () => {
  // One after the other: on a busy machine the agent's start through tsx is slow enough alone.
  agent = await startAgent({
    config: `listeners:\n  - address: "127.0.0.1:0"\nroutes:\n  - id: r\n    pool: p\npools:\n  - id: p\n    endpoints: [{address: "127.0.0.1:9"}]\n`,
  });
  authority = await startTestAuthority({ database: testDatabase("pglite") });
  expect((await authority.call("POST", "/api/v1/fleets", { body: { name: FLEET } })).status).toBe(201);
  for (const role of ROLES) tokens[role] = await authority.token(role);
  const revoked = await authority.call("POST", "/api/v1/tokens", { body: { name: "gone", role: "admin" } });
  revokedToken = (revoked.body as { token: string }).token;
  const revokedId = (revoked.body as { id: string }).id;
  expect((await authority.call("DELETE", `/api/v1/tokens/${revokedId}`)).status).toBe(200);
}, 60_000);

afterAll(async () => {
  // First: the authority's close waits on idle keep-alive connections once an event stream was served.
  await dispatcher.destroy();
  await authority?.close();
  await agent?.stop("SIGKILL");
});

async function call(
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: unknown,
): Promise<{ status: number; body: unknown }> {
  requestsSent++;
  const abort = new AbortController();
  const response = await undiciRequest(`${authority.url}${path}`, {
    method: method as "GET",
    dispatcher,
    headers: { ...headers, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.any([abort.signal, AbortSignal.timeout(10_000)]),
  });
  // The event stream never ends: its status and headers are the answer.
  if (String(response.headers["content-type"]).startsWith("text/event-stream")) {
    response.body.on("error", () => {});
    abort.abort();
    return { status: response.statusCode, body: undefined };
  }
  const text = await response.body.text();
  if (response.statusCode >= 500) serverErrors++;
  return { status: response.statusCode, body: text === "" ? undefined : JSON.parse(text) };
}

/** Headers that carry no live token: each must be 401. */
function badCredentials(): Array<[string, Record<string, string>]> {
  return [
    ["no Authorization header", {}],
    ["an unknown coh_ token", { authorization: "Bearer coh_0000000000000000000000000000000000000000" }],
    ["a revoked admin token", { authorization: `Bearer ${revokedToken}` }],
    ["the admin token under Basic", { authorization: `Basic ${tokens.admin}` }],
    ["an empty Bearer", { authorization: "Bearer " }],
    ["the admin token with a byte changed", { authorization: `Bearer ${tokens.admin.slice(0, -1)}x` }],
    ["the admin token and another after it", { authorization: `Bearer ${tokens.admin} ${tokens.admin}` }],
    ["the admin token in ?token= of an ordinary route", {}],
  ];
}

async function auditLength(): Promise<number> {
  const res = await authority.call("GET", "/api/v1/audit?limit=1000");
  return (res.body as { entries: unknown[] }).entries.length;
}

describe("the authority API's role matrix", () => {
  it("covers every /api/v1 route of /docs/json, and no route hides from it", async () => {
    const docs = await authority.call("GET", "/docs/json", { token: "" });
    expect(docs.status).toBe(200);
    const documented: string[] = [];
    for (const [path, operations] of Object.entries((docs.body as { paths: Record<string, object> }).paths)) {
      if (!path.startsWith("/api/v1/")) continue;
      for (const method of Object.keys(operations)) documented.push(`${method.toUpperCase()} ${path}`);
    }
    expect(documented.sort()).toEqual(Object.keys(MATRIX).sort());
    // A route left out of the document would be left out of this matrix too.
    const dir = join(import.meta.dirname, "..", "..", "authority", "api");
    for (const file of (await readdir(dir)).filter((f) => f.endsWith("-routes.ts"))) {
      expect(await readFile(join(dir, file), "utf8"), file).not.toMatch(/hide:\s*true/);
    }
  });

  it("answers 401 to every route without a live token, before anything is written", async () => {
    const before = await auditLength();
    for (const [operation] of Object.entries(MATRIX)) {
      const [method, template] = operation.split(" ") as [string, string];
      const path = concrete(template);
      for (const [what, headers] of badCredentials()) {
        badInputsTried++;
        const target =
          what.includes("?token=") && template !== "/api/v1/events" ? `${path}?token=${tokens.admin}` : path;
        const res = await call(method, target, headers, bodyFor(method, template));
        expect(res.status, `${operation} with ${what}`).toBe(401);
        expect(res.body, `${operation} with ${what}`).toMatchObject({ error: "unauthorized" });
      }
    }
    expect(await auditLength()).toBe(before);
  });

  it("answers 403 naming the role needed to every token below a route's role, before anything is written", async () => {
    const before = await auditLength();
    for (const [operation, required] of Object.entries(MATRIX)) {
      const [method, template] = operation.split(" ") as [string, string];
      for (const role of ROLES.slice(0, ROLES.indexOf(required))) {
        badInputsTried++;
        const res = await call(
          method,
          concrete(template),
          { authorization: `Bearer ${tokens[role]}` },
          bodyFor(method, template),
        );
        expect(res.status, `${operation} as ${role}`).toBe(403);
        expect(res.body, `${operation} as ${role}`).toMatchObject({
          error: "forbidden",
          required_role: required,
        });
      }
    }
    expect(await auditLength()).toBe(before);
  });

  it("lets every role at or above a route's through, and never answers 500", async () => {
    for (const [operation, required] of Object.entries(MATRIX)) {
      const [method, template] = operation.split(" ") as [string, string];
      for (const role of ROLES.slice(ROLES.indexOf(required))) {
        const res = await call(
          method,
          concrete(template),
          { authorization: `Bearer ${tokens[role]}` },
          bodyFor(method, template),
        );
        expect([401, 403], `${operation} as ${role}: ${JSON.stringify(res.body)}`).not.toContain(res.status);
        expect(res.status, `${operation} as ${role}: ${JSON.stringify(res.body)}`).toBeLessThan(500);
      }
    }
    expect(serverErrors).toBe(0);
  });

  it("takes the event stream's token from ?token=, and only a live one", async () => {
    const events = "/api/v1/events";
    expect((await call("GET", events, {})).status).toBe(401);
    expect((await call("GET", `${events}?token=coh_nope`, {})).status).toBe(401);
    expect((await call("GET", `${events}?token=${revokedToken}`, {})).status).toBe(401);
    expect((await call("GET", `${events}?token=`, {})).status).toBe(401);
    expect((await call("GET", `${events}?token=${tokens.viewer}`, {})).status).toBe(200);
    // A bad header is not rescued by a good ?token=, nor the other way round: the header wins.
    expect(
      (await call("GET", `${events}?token=${tokens.viewer}`, { authorization: "Bearer coh_nope" })).status,
    ).toBe(401);
    badInputsTried += 5;
  });
});

describe("the agent's admin API", () => {
  const routes: ReadonlyArray<[string, string]> = [
    ["GET", "/api/v2/config/current"],
    ["POST", "/api/v2/config/validate"],
    ["POST", "/api/v2/config/diff"],
    ["POST", "/api/v2/config/apply"],
    ["POST", "/api/v2/config/rollback"],
    ["GET", "/api/v2/pools/p/health"],
    ["GET", "/api/v2/breakers"],
    ["GET", "/api/v2/traffic/canary"],
    ["GET", "/api/v2/limits"],
    ["GET", "/api/v2/listeners"],
  ];
  const wrong: ReadonlyArray<[string, Record<string, string>]> = [
    ["no token", {}],
    ["another token", { authorization: "Bearer not-the-admin-token-0000000" }],
    ["the token with a byte changed", { authorization: `Bearer ${AGENT_ADMIN_TOKEN.slice(0, -1)}x` }],
    ["a prefix of the token", { authorization: `Bearer ${AGENT_ADMIN_TOKEN.slice(0, 8)}` }],
    ["the token with a suffix", { authorization: `Bearer ${AGENT_ADMIN_TOKEN}x` }],
    ["the token under Basic", { authorization: `Basic ${AGENT_ADMIN_TOKEN}` }],
    ["the token after a malformed scheme", { authorization: `bearer-${AGENT_ADMIN_TOKEN}` }],
  ];

  it("answers 401 to every /api/v2 route without its token or with another, and changes nothing", async () => {
    const before = await agent.admin("GET", "/api/v2/config/current");
    for (const [method, path] of routes) {
      for (const [what, headers] of wrong) {
        badInputsTried++;
        requestsSent++;
        const body = method === "POST" ? JSON.stringify({ config: {}, version: "1" }) : undefined;
        const res = await request(`${agent.adminUrl}${path}`, {
          method,
          headers: { ...headers, ...(body === undefined ? {} : { "content-type": "application/json" }) },
          ...(body === undefined ? {} : { body }),
        });
        const text = await res.text();
        expect(res.status, `${method} ${path} with ${what}: ${text}`).toBe(401);
        expect(res.headers["www-authenticate"]).toContain("Bearer");
      }
    }
    expect(await agent.admin("GET", "/api/v2/config/current")).toEqual(before);
  });

  it("answers with the token", async () => {
    const res = await agent.admin("GET", "/api/v2/listeners");
    expect(res.status).toBe(200);
  });

  afterAll(() => {
    reportReliability({
      suite: "security",
      scenario: "role matrix of the authority and agent admin APIs",
      loadHeld: "none",
      faultsInjected: 0,
      badInputsTried,
      requestsSent,
      requestsFailed: serverErrors,
      bundlesLost: 0,
      notes: `${Object.keys(MATRIX).length} authority routes x 5 credentials, ${routes.length} agent admin routes`,
    });
  });
});
