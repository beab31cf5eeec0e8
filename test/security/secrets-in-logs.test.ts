/**
 * Secrets never reach a log. Real processes — `coherent authority` on PGlite with a webhook
 * whose secret is in a file, `coherent distributor`, a managed agent with an admin token and
 * a JWT-protected route — are driven through the paths that log: bad, revoked and
 * wrong-role API tokens, an event stream opened with ?token=, refused admin calls, a failing
 * webhook, JWTs refused and accepted, proxied requests carrying Authorization and Cookie to
 * an upstream that answers and to one that is down. Then every line every process wrote,
 * stdout and stderr, is searched for each secret, whole and in pieces.
 *
 * `coherent token create` prints the token it made, by design; that one-shot command's
 * output is the only one not searched.
 */

import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeKeyPair } from "../../services/bundle/index.js";
import {
  type AuthorityProcess,
  api,
  createAdminToken,
  type DistributorProcess,
  startAuthorityProcess,
  startDistributorProcess,
} from "../e2e/support/coherent.js";
import { ADMIN_TOKEN, LISTENER, type ManagedAgent, startManagedAgent } from "../e2e/support/managed-agent.js";
import { stopAll, waitUntil } from "../e2e/support/processes.js";
import { request } from "../support/http.js";
import { reportReliability } from "../support/reliability.js";
import { refusedAddress, startUpstream, type Upstream } from "../support/upstream.js";

const FLEET = "edge";
const ISSUER = "https://issuer.secrets.test";
const WEBHOOK_SECRET = "whsec-6c1f0e9a-secret-of-the-hook-4d2b";
const COOKIE_SECRET = "session=sess-9f8e7d6c5b4a-cookie-secret";
const BASIC_SECRET = `Basic ${Buffer.from("alice:pa55-w0rd-basic-secret").toString("base64")}`;

let dir: string;
let authority: AuthorityProcess;
let distributor: DistributorProcess;
let agent: ManagedAgent;
let upstream: Upstream;
let hook: Server;
let hookCalls = 0;
let adminToken: string;
let signingKeyPem: string;
let jwtValid: string;
let jwtForged: string;
let jwtExpired: string;
const issued: Record<string, string> = {};
let requestsSent = 0;
let badInputsTried = 0;
/** The fleet's first config; the second, rolled out, differs only in route order. */
let bundleConfig: { routes: unknown[] } & Record<string, unknown>;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "coherent-secrets-"));
  const keys = await writeKeyPair(join(dir, "keys"));
  signingKeyPem = await readFile(keys.privateFile, "utf8");
  const dataDir = join(dir, "data");
  await mkdir(dataDir);

  // A webhook that always fails, so the controller logs its failures (with whatever it logs).
  hook = createServer((req, res) => {
    hookCalls++;
    req.resume();
    res.writeHead(500).end("no");
  });
  await new Promise<void>((resolve) => hook.listen(0, "127.0.0.1", resolve));
  const hookPort = (hook.address() as { port: number }).port;
  const secretFile = join(dir, "webhook.secret");
  await writeFile(secretFile, `${WEBHOOK_SECRET}\n`);
  const settingsFile = join(dir, "authority.json");
  // JSON is YAML.
  await writeFile(
    settingsFile,
    JSON.stringify({
      controller: {
        tick: "200ms",
        webhooks: [{ fleet: FLEET, url: `http://127.0.0.1:${hookPort}/hook`, secret_file: secretFile }],
      },
    }),
  );

  // The JWT issuer's keys, as a JWKS file the agent reads.
  const issuerKeys = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
  const otherKeys = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
  const jwksFile = join(dir, "jwks.json");
  await writeFile(
    jwksFile,
    JSON.stringify({ keys: [{ ...(await exportJWK(issuerKeys.publicKey)), kid: "k1", alg: "EdDSA" }] }),
  );
  const jwt = (key: Parameters<SignJWT["sign"]>[0], exp: number) =>
    new SignJWT({ sub: "alice", secret_claim: "claim-value" })
      .setProtectedHeader({ alg: "EdDSA", kid: "k1" })
      .setIssuer(ISSUER)
      .setExpirationTime(exp)
      .sign(key);
  const now = Math.floor(Date.now() / 1000);
  jwtValid = await jwt(issuerKeys.privateKey, now + 600);
  jwtForged = await jwt(otherKeys.privateKey, now + 600);
  jwtExpired = await jwt(issuerKeys.privateKey, now - 3600);

  adminToken = await createAdminToken({ dataDir });
  upstream = await startUpstream({ name: "up" });
  // A settings file is where a webhook and its secret file go; debug, so every line a secret could reach is logged.
  authority = await startAuthorityProcess({
    database: { dataDir },
    signingKeyFile: keys.privateFile,
    settingsFile,
    logLevel: "debug",
  });
  distributor = await startDistributorProcess({
    id: "d1",
    region: "eu-west",
    authorities: [authority.feed],
    cacheDir: join(dir, "cache"),
    trustedKeys: [keys.publicFile],
    healthFlush: "500ms",
  });
  expect((await api(authority.url, adminToken, "POST", "/fleets", { name: FLEET })).status).toBe(201);
  for (const role of ["viewer", "operator", "admin"]) {
    const res = await api<{ token: string; id: string }>(authority.url, adminToken, "POST", "/tokens", {
      name: `secrets-${role}`,
      role,
    });
    expect(res.status).toBe(201);
    issued[role] = res.body.token;
  }
  const revoked = await api<{ token: string; id: string }>(authority.url, adminToken, "POST", "/tokens", {
    name: "revoked",
    role: "admin",
  });
  issued.revoked = revoked.body.token;
  expect((await api(authority.url, adminToken, "DELETE", `/tokens/${revoked.body.id}`)).status).toBe(200);

  bundleConfig = {
    listeners: [{ address: LISTENER }],
    middleware: [
      {
        id: "secured",
        stages: [
          { type: "auth", config: { jwt: { issuer: ISSUER, jwks_file: jwksFile } } },
          { type: "access_log" },
        ],
      },
      { id: "logged", stages: [{ type: "access_log" }] },
    ],
    routes: [
      {
        id: "secured",
        path_prefix: "/secure/",
        pool: "up",
        middleware: "secured",
        policy: { timeout: "5s" },
      },
      { id: "down", path_prefix: "/down/", pool: "down", middleware: "logged", policy: { timeout: "1s" } },
      { id: "open", path_prefix: "/", pool: "up", middleware: "logged", policy: { timeout: "5s" } },
    ],
    pools: [
      { id: "up", endpoints: [{ address: upstream.address }] },
      { id: "down", endpoints: [{ address: await refusedAddress() }] },
    ],
  };
  const submitted = await api(authority.url, adminToken, "POST", `/fleets/${FLEET}/bundles`, {
    config: bundleConfig,
  });
  expect(submitted.status, JSON.stringify(submitted.body)).toBe(201);

  const agentDir = join(dir, "agent");
  await mkdir(agentDir);
  agent = await startManagedAgent({
    agentId: "agent-1",
    distributors: [distributor.address],
    trustedKeys: [{ kid: keys.kid, publicFile: keys.publicFile }],
    dir: agentDir,
  });
  await waitUntil(
    "the agent serving",
    async () => ((await agent.servedBy("/ready"))?.status === 200 ? true : undefined),
    60_000,
  );
}, 180_000);

afterAll(async () => {
  await stopAll([agent?.process, distributor?.process, authority?.process]);
  await upstream?.close();
  await new Promise<void>((resolve) => (hook ? hook.close(() => resolve()) : resolve()));
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Every secret, whole and in the pieces a careless log might keep (a prefix, the base64 body). */
function needles(): Array<[string, string]> {
  const list: Array<[string, string]> = [];
  const add = (what: string, secret: string) => list.push([what, secret]);
  for (const [name, token] of Object.entries({ bootstrap: adminToken, ...issued })) {
    add(`${name} token`, token);
    const body = token.replace(/^coh_/, "");
    // Any 12 characters of the random part: a truncated token is still most of a token.
    for (let i = 0; i + 12 <= body.length; i += 6)
      add(`${name} token [${i}..${i + 12})`, body.slice(i, i + 12));
  }
  const pemBody = signingKeyPem.split("\n").filter((line) => line !== "" && !line.startsWith("-----"));
  add("signing key PEM", pemBody.join(""));
  for (const line of pemBody) add("a signing key PEM line", line);
  add("agent admin token", ADMIN_TOKEN);
  add("webhook secret", WEBHOOK_SECRET);
  add("webhook secret's middle", WEBHOOK_SECRET.slice(8, 28));
  for (const [name, jwt] of Object.entries({ valid: jwtValid, forged: jwtForged, expired: jwtExpired })) {
    add(`${name} JWT`, jwt);
    add(`${name} JWT signature`, jwt.split(".")[2] as string);
    add(`${name} JWT payload`, jwt.split(".")[1] as string);
  }
  add("cookie value", COOKIE_SECRET.split("=")[1] as string);
  add("basic credentials", BASIC_SECRET.slice("Basic ".length));
  add("basic password", "pa55-w0rd-basic-secret");
  return list;
}

async function through(path: string, headers: Record<string, string>): Promise<number> {
  requestsSent++;
  badInputsTried++;
  const base = (await agent.listenerUrl()) as string;
  const res = await request(`${base}${path}`, { headers });
  await res.drain();
  return res.status;
}

describe("secrets in logs", () => {
  it("exercises the authority's refusals: bad, revoked, tampered and too-weak tokens", async () => {
    const tries: Array<[string, string, string, number]> = [
      ["GET", "/fleets", `${issued.admin}x`, 401],
      ["GET", "/fleets", issued.revoked as string, 401],
      ["GET", "/fleets", (issued.admin as string).slice(0, -4), 401],
      ["POST", "/tokens", issued.viewer as string, 403],
      ["POST", `/fleets/${FLEET}/bundles`, issued.viewer as string, 403],
      ["GET", "/audit/verify", issued.operator as string, 403],
      ["POST", `/fleets/${FLEET}/bundles`, issued.operator as string, 400],
      ["DELETE", "/tokens/no-such-token", issued.admin as string, 404],
    ];
    for (const [method, path, token, status] of tries) {
      requestsSent++;
      badInputsTried++;
      const body = method === "POST" ? { config: "not: [valid" } : undefined;
      expect((await api(authority.url, token, method, path, body)).status, `${method} ${path}`).toBe(status);
    }
    // The event stream takes its token in the URL, the one place a token is in a request line.
    for (const token of [issued.viewer, issued.revoked, "coh_wrong"]) {
      requestsSent++;
      const abort = new AbortController();
      const res = await fetch(`${authority.url}/api/v1/events?token=${token}`, { signal: abort.signal });
      abort.abort();
      expect([200, 401]).toContain(res.status);
    }
  });

  it("exercises the agent's admin API refusals", async () => {
    for (const authorization of [`Bearer ${ADMIN_TOKEN}x`, `Basic ${ADMIN_TOKEN}`, "Bearer nope"]) {
      requestsSent++;
      badInputsTried++;
      const res = await request(`${agent.adminUrl}/api/v2/config/current`, { headers: { authorization } });
      await res.drain();
      expect(res.status).toBe(401);
    }
    const ok = await request(`${agent.adminUrl}/api/v2/config/current`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    await ok.drain();
    expect(ok.status).toBe(200);
  });

  it("exercises JWTs refused and accepted, and credentials proxied to a live and a dead upstream", async () => {
    expect(await through("/secure/a", { authorization: `Bearer ${jwtValid}` })).toBe(200);
    expect(await through("/secure/a", { authorization: `Bearer ${jwtForged}` })).toBe(401);
    expect(await through("/secure/a", { authorization: `Bearer ${jwtExpired}` })).toBe(401);
    expect(await through("/secure/a", { authorization: `Bearer ${jwtValid.slice(0, -3)}` })).toBe(401);
    expect(await through("/open/a", { authorization: BASIC_SECRET, cookie: COOKIE_SECRET })).toBe(200);
    expect(await through("/down/a", { authorization: `Bearer ${jwtValid}`, cookie: COOKIE_SECRET })).toBe(
      502,
    );
    expect(
      await through("/down/b", { authorization: BASIC_SECRET, "proxy-authorization": BASIC_SECRET }),
    ).toBe(502);
    // The upstream did get the credentials: they were forwarded, only never logged.
    expect(upstream.requests.some((r) => r.headers.cookie === COOKIE_SECRET)).toBe(true);
  });

  it("exercises a rollout whose webhook fails", async () => {
    const next = { ...bundleConfig, routes: [...bundleConfig.routes].reverse() };
    const submitted = await api<{ version: number }>(
      authority.url,
      issued.operator as string,
      "POST",
      `/fleets/${FLEET}/bundles`,
      { config: next, message: "a second version, to roll out" },
    );
    expect(submitted.status, JSON.stringify(submitted.body)).toBe(201);
    const rollout = await api(authority.url, issued.operator as string, "POST", `/fleets/${FLEET}/rollouts`, {
      version: submitted.body.version,
    });
    requestsSent += 2;
    expect(rollout.status, JSON.stringify(rollout.body)).toBe(201);
    await waitUntil("the webhook called", () => (hookCalls > 0 ? true : undefined), 20_000);
  });

  it("finds none of the secrets in any line any process wrote", async () => {
    // Let the last lines (health flushes, webhook retries) land before reading.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const logs: Array<[string, string]> = [
      ["authority", authority.process.lines.map((l) => JSON.stringify(l)).join("\n")],
      ["distributor", distributor.process.lines.map((l) => JSON.stringify(l)).join("\n")],
      ["agent", agent.process.lines.map((l) => JSON.stringify(l)).join("\n")],
    ];
    for (const [name, text] of logs) expect(text.length, `${name} logged nothing`).toBeGreaterThan(500);
    // The searches are meaningful: the logs do name what happened, just not the secrets.
    expect(logs[2]?.[1]).toContain("/secure/a");
    const found: string[] = [];
    for (const [name, text] of logs) {
      // JSON escapes "/" and "+" in no way that hides base64, but a line may hold "\n" escapes.
      const plain = text.replaceAll("\\n", "");
      for (const [what, secret] of needles())
        if (plain.includes(secret)) found.push(`${what} in the ${name}'s log`);
    }
    expect(found).toEqual([]);
    reportReliability({
      suite: "security",
      scenario: "secrets never in logs",
      loadHeld: "none",
      faultsInjected: hookCalls,
      badInputsTried,
      requestsSent,
      requestsFailed: 0,
      bundlesLost: 0,
      notes: `${needles().length} secret fragments searched in ${logs.reduce((n, [, t]) => n + t.split("\n").length, 0)} log lines of 3 processes`,
    });
  });
});
