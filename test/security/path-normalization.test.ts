/**
 * The route the agent picks and the path the upstream receives name the same resource
 * (agent/router/normalize-path.ts): a request can never reach a route's pool while that
 * pool's upstream sees a path outside the route's prefix — /public/../admin is /admin for the
 * router and for the upstream alike, and goes to the admin pool. Raw request targets go over
 * node:net, since an HTTP client would normalize them before sending.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { normalizePath } from "../../agent/router/normalize-path.js";
import { type AgentProcess, startAgent } from "../support/agent-process.js";
import { rawHttp } from "../support/http.js";
import { reportReliability } from "../support/reliability.js";
import { startUpstream, type Upstream } from "../support/upstream.js";

const LISTENER = "127.0.0.1:0";
type PoolName = "admin" | "public" | "other";

let agent: AgentProcess;
let upstreams: Record<PoolName, Upstream>;
let port: number;
let requestsSent = 0;
let badInputsTried = 0;

beforeAll(async () => {
  const [admin, pub, other] = await Promise.all([
    startUpstream({ name: "admin" }),
    startUpstream({ name: "public" }),
    startUpstream({ name: "other" }),
  ]);
  upstreams = { admin, public: pub, other };
  agent = await startAgent({
    config: `listeners:
  - address: "${LISTENER}"
routes:
  - id: admin
    path_prefix: /admin/
    pool: admin
  - id: public
    path_prefix: /public/
    pool: public
  - id: other
    path_prefix: /
    pool: other
pools:
  - id: admin
    endpoints: [{address: "${admin.address}"}]
  - id: public
    endpoints: [{address: "${pub.address}"}]
  - id: other
    endpoints: [{address: "${other.address}"}]
`,
  });
  port = await agent.port(LISTENER);
}, 60_000);

afterAll(async () => {
  await agent?.stop("SIGKILL");
  await Promise.all(Object.values(upstreams ?? {}).map((u) => u.close()));
});

/**
 * The pool a path belongs to by the config above. Prefixes are plain string prefixes (the
 * router's contract, as Envoy's), so the routes name the directories: /admin/ and /public/.
 */
function poolOf(path: string): PoolName {
  for (const prefix of ["admin", "public"] as const) {
    if (path.startsWith(`/${prefix}/`)) return prefix;
  }
  return "other";
}

interface Outcome {
  readonly status: number | undefined;
  /** The upstream that answered, from its x-upstream header. */
  readonly pool: string | undefined;
  /** The request target the upstream received, from its echo. */
  readonly upstreamPath: string | undefined;
}

async function send(target: string): Promise<Outcome> {
  requestsSent++;
  const res = await rawHttp(port, `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, {
    timeoutMs: 3_000,
  });
  const pool = /\r\nx-upstream: ([^\r]+)\r\n/i.exec(res.text)?.[1];
  const bodyStart = res.text.indexOf("\r\n\r\n");
  let upstreamPath: string | undefined;
  if (pool !== undefined && bodyStart >= 0) {
    upstreamPath = (JSON.parse(res.text.slice(bodyStart + 4)) as { path: string }).path;
  }
  return { status: res.status, pool, upstreamPath };
}

/** Either refused with 400, or forwarded to the pool its normalized path belongs to, with that path. */
function expectConsistent(target: string, outcome: Outcome): void {
  const normalized = normalizePath(target);
  if (normalized === undefined) {
    expect(outcome.status, target).toBe(400);
    expect(outcome.pool, target).toBeUndefined();
    return;
  }
  const sent = normalized.query === "" ? normalized.path : `${normalized.path}?${normalized.query}`;
  expect(outcome, target).toEqual({ status: 200, pool: poolOf(normalized.path), upstreamPath: sent });
}

/** [raw target, pool, path the upstream must receive] — or 400 for a refused target. */
const cases: ReadonlyArray<readonly [string, PoolName | 400, string?]> = [
  ["//admin/x", "admin", "/admin/x"],
  ["/public/../admin/x", "admin", "/admin/x"],
  ["/public/%2e%2e/admin/x", "admin", "/admin/x"],
  ["/public/%2E%2E/admin/x", "admin", "/admin/x"],
  ["/%2e%2e/admin/x", "admin", "/admin/x"],
  ["/public//..//admin/x", "admin", "/admin/x"],
  ["/./admin/x", "admin", "/admin/x"],
  ["/%61dmin/x", "admin", "/admin/x"],
  ["/admin/x/../../public/y", "public", "/public/y"],
  // An encoded slash is never a separator: one segment, outside /public, kept encoded.
  ["/public/%2E%2E%2Fadmin/x", "public", "/public/..%2Fadmin/x"],
  ["/public%2F..%2Fadmin", "other", "/public%2F..%2Fadmin"],
  ["/admin%2fx", "other", "/admin%2Fx"],
  ["/public/%252e%252e/admin", "public", "/public/%252e%252e/admin"],
  ["/public/./x", "public", "/public/x"],
  ["/public/x/..", "public", "/public/"],
  ["/public/..", "other", "/"],
  ["/admin/.", "admin", "/admin/"],
  // Trailing dots name another segment here; they are not stripped.
  ["/admin./x", "other", "/admin./x"],
  ["/admin../x", "other", "/admin../x"],
  ["/public/..;/admin/x", "public", "/public/..;/admin/x"],
  ["/public/a?next=/../admin", "public", "/public/a?next=/../admin"],
  ["/public/a#/../../admin", "public", "/public/a"],
  ["/public\\..\\admin", 400],
  ["/public/%5c..%5cadmin", "public", "/public/%5C..%5Cadmin"],
  ["/public/%00/x", 400],
  ["/public/%zz", 400],
  ["/public/%4", 400],
];

describe("path normalization between router and upstream", () => {
  it.each(cases.map(([target, pool, path]) => ({ target, pool, path })))(
    "$target goes to $pool as $path",
    async ({ target, pool, path }) => {
      badInputsTried++;
      const outcome = await send(target);
      if (pool === 400) {
        expect(outcome.status).toBe(400);
        expect(outcome.pool).toBeUndefined();
      } else {
        expect(outcome).toEqual({ status: 200, pool, upstreamPath: path });
      }
      expectConsistent(target, outcome);
    },
  );

  it("keeps router and upstream consistent for generated paths of dot, slash and escape segments", async () => {
    const segment = fc.constantFrom(
      "admin",
      "public",
      "x",
      "",
      ".",
      "..",
      "%2e",
      "%2E%2e",
      "%2f",
      "%2F..",
      "..%2f",
      "\\",
      "..;",
      "admin.",
      "%61dmin",
      "%25",
      "%",
    );
    await fc.assert(
      fc.asyncProperty(fc.array(segment, { minLength: 1, maxLength: 6 }), async (segments) => {
        badInputsTried++;
        const target = `/${segments.join("/")}`;
        expectConsistent(target, await send(target));
      }),
      { numRuns: 120, seed: 20261126, interruptAfterTimeLimit: 30_000 },
    );
  }, 60_000);

  it("never lets the admin or public upstream see a path outside its prefix", () => {
    for (const name of ["admin", "public"] as const) {
      const outside = upstreams[name].requests.filter((r) => poolOf(r.path.split("?")[0] as string) !== name);
      expect(outside.map((r) => r.path)).toEqual([]);
    }
    expect(upstreams.admin.requests.length).toBeGreaterThan(0);
  });

  afterAll(() => {
    reportReliability({
      suite: "security",
      scenario: "path normalization between router and upstream",
      loadHeld: "none",
      faultsInjected: 0,
      badInputsTried,
      requestsSent,
      requestsFailed: 0,
      bundlesLost: 0,
      notes: "every forwarded path was the router's own normalized path, in the pool of its prefix",
    });
  });
});
