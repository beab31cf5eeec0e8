import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Fastify, { type FastifyInstance } from "fastify";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_PLAN_INPUT, parsePlan } from "../../rollout-controller/plan.js";
import { command, newRollout } from "../../rollout-controller/state-machine.js";
import { writeKeyPair } from "../../services/bundle/index.js";
import { ApiError } from "../errors.js";
import type { AuthorityStore, StoredRollout } from "../store/index.js";
import { bearerAuth } from "./auth.js";
import { registerEventRoutes } from "./event-routes.js";
import {
  DIALECTS,
  dropSchema,
  POSTGRES_URL,
  sampleConfig,
  startTestAuthority,
  type TestAuthority,
  testDatabase,
} from "./test-harness.js";

interface SseEvent {
  readonly event: string;
  readonly data: string;
}

/** A client of one event stream: every event and comment it read, and a way to wait for one. */
interface SseClient {
  readonly status: number;
  readonly body: string;
  readonly events: SseEvent[];
  readonly comments: string[];
  /** Resolves when the server ended the stream. */
  readonly ended: Promise<void>;
  waitFor(match: (event: SseEvent) => boolean, timeoutMs?: number): Promise<SseEvent>;
  close(): void;
}

async function openStream(url: string, headers: Record<string, string> = {}): Promise<SseClient> {
  const abort = new AbortController();
  const response = await fetch(url, { headers, signal: abort.signal });
  const events: SseEvent[] = [];
  const comments: string[] = [];
  const waiters = new Set<() => void>();
  if (!response.headers.get("content-type")?.startsWith("text/event-stream")) {
    return {
      status: response.status,
      body: await response.text(),
      events,
      comments,
      ended: Promise.resolve(),
      waitFor: () => Promise.reject(new Error(`not a stream: ${response.status}`)),
      close: () => undefined,
    };
  }
  const ended = (async () => {
    const decoder = new TextDecoder();
    let buffer = "";
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        for (let end = buffer.indexOf("\n\n"); end !== -1; end = buffer.indexOf("\n\n")) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const fields = block.split("\n");
          comments.push(...fields.filter((f) => f.startsWith(":")).map((f) => f.slice(1).trim()));
          const event = fields.find((f) => f.startsWith("event: "))?.slice(7);
          const data = fields.find((f) => f.startsWith("data: "))?.slice(6);
          if (event !== undefined && data !== undefined) events.push({ event, data });
          for (const wake of waiters) wake();
        }
      }
    } catch {
      // Aborted by close(): the stream is over either way.
    }
  })();
  return {
    status: response.status,
    body: "",
    events,
    comments,
    ended,
    waitFor: (match, timeoutMs = 5_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const found = events.find(match);
          if (!found) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(found);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no matching event in ${timeoutMs} ms; saw ${JSON.stringify(events)}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
    close: () => abort.abort(),
  };
}

/** A pending rollout of `fleet` from version 1 to 2, written as the rollout routes would. */
async function createRollout(store: AuthorityStore, fleet: string, id: string): Promise<StoredRollout> {
  const plan = parsePlan(DEFAULT_PLAN_INPUT);
  if (!plan.ok) throw new Error("the default plan is invalid");
  const rollout = newRollout({
    id,
    fleet,
    candidateVersion: 2,
    stableVersion: 1,
    plan: plan.value,
    now: Date.now(),
  });
  return store.rollouts.create(rollout, "test");
}

async function fleetWithTwoVersions(authority: TestAuthority, fleet: string): Promise<void> {
  expect((await authority.call("POST", "/api/v1/fleets", { body: { name: fleet } })).status).toBe(201);
  for (const routes of [1, 2]) {
    const submitted = await authority.call("POST", `/api/v1/fleets/${fleet}/bundles`, {
      body: { config: sampleConfig(routes) },
    });
    expect(submitted.status).toBe(201);
  }
}

const parsed = (event: SseEvent) => JSON.parse(event.data) as Record<string, unknown>;

describe.each(DIALECTS)("GET /api/v1/events on $name", ({ name, skip }) => {
  const database = testDatabase(name);
  let authority: TestAuthority;
  let viewer: string;
  const open: SseClient[] = [];
  const stream = async (path: string, headers: Record<string, string> = {}) => {
    const client = await openStream(`${authority.url}${path}`, headers);
    open.push(client);
    return client;
  };

  beforeAll(async () => {
    if (skip) return;
    authority = await startTestAuthority({ database });
    viewer = await authority.token("viewer");
    await fleetWithTwoVersions(authority, "edge");
  });
  afterEach(() => {
    for (const client of open.splice(0)) client.close();
  });
  afterAll(async () => {
    await authority?.close();
    await dropSchema(database);
  });

  // Skipped only when COHERENT_TEST_NO_POSTGRES=1 (no Postgres on the machine): the PGlite run still covers it.
  it.skipIf(skip)(
    "refuses a request without a token, with a bad one, and ?token= on other routes",
    async () => {
      expect(await stream("/api/v1/events")).toMatchObject({ status: 401 });
      const bad = await stream("/api/v1/events?token=coh_not-a-real-token");
      expect(bad.status).toBe(401);
      expect(JSON.parse(bad.body)).toMatchObject({ error: "unauthorized" });
      const elsewhere = await authority.call("GET", `/api/v1/fleets?token=${encodeURIComponent(viewer)}`, {
        token: "",
      });
      expect(elsewhere.status).toBe(401);
    },
  );

  // Skipped only when COHERENT_TEST_NO_POSTGRES=1 (no Postgres on the machine): the PGlite run still covers it.
  it.skipIf(skip)(
    "streams a rollout change to a viewer holding the token in the header or in the query",
    async () => {
      const byHeader = await stream("/api/v1/events", { authorization: `Bearer ${viewer}` });
      const byQuery = await stream(`/api/v1/events?token=${encodeURIComponent(viewer)}`);
      expect(byHeader.status).toBe(200);
      expect(byQuery.status).toBe(200);
      await Promise.all([byHeader, byQuery].map((c) => c.waitFor(() => true, 200).catch(() => undefined)));
      const created = await createRollout(authority.handle.store, "edge", `r-edge-${name}`);
      for (const client of [byHeader, byQuery]) {
        const event = await client.waitFor((e) => e.event === "rollout");
        expect(parsed(event)).toMatchObject({
          id: created.id,
          fleet: "edge",
          phase: "pending",
          candidate_version: 2,
          stable_version: 1,
          stages: expect.arrayContaining([expect.objectContaining({ name: "canary", fleet_percent: 1 })]),
        });
      }
      expect(authority.logs()).not.toContain(viewer);
    },
  );
});

// Two replicas need a database two processes' connections share: Postgres only, skipped without it.
describe.skipIf(POSTGRES_URL === undefined)("GET /api/v1/events across two replicas on one Postgres", () => {
  const database = testDatabase("postgres");
  let keyDir: string;
  let a: TestAuthority;
  let b: TestAuthority;

  beforeAll(async () => {
    keyDir = await mkdtemp(join(tmpdir(), "coherent-events-"));
    const { privateFile } = await writeKeyPair(keyDir);
    a = await startTestAuthority({ database, keyFile: privateFile });
    b = await startTestAuthority({ database, keyFile: privateFile, bootstrap: false });
    await fleetWithTwoVersions(a, "web");
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await dropSchema(database);
    await rm(keyDir, { recursive: true, force: true });
  });

  it("brings a change made through the other replica's store to both of this one's subscribers", async () => {
    const viewer = await a.token("viewer");
    const first = await openStream(`${a.url}/api/v1/events`, { authorization: `Bearer ${viewer}` });
    const second = await openStream(`${a.url}/api/v1/events?token=${encodeURIComponent(viewer)}`);
    try {
      const created = await createRollout(b.handle.store, "web", "r-web-replicas");
      const promoted = await b.handle.store.rollouts.save(
        created,
        command(created, { kind: "promote", full: false }, "test", Date.now()),
        "test",
      );
      expect(promoted).toMatchObject({ phase: "running", stage: 0 });
      for (const client of [first, second]) {
        const event = await client.waitFor((e) => e.event === "rollout" && parsed(e).phase === "running");
        expect(parsed(event)).toMatchObject({ id: created.id, stage: { index: 0, name: "canary" } });
      }
      const state = await b.call("POST", "/api/v1/fleets/web/promote", {
        token: a.adminToken,
        body: { version: 2 },
      });
      expect(state.status).toBe(200);
      for (const client of [first, second]) {
        const event = await client.waitFor((e) => e.event === "fleet_state");
        expect(parsed(event)).toMatchObject({ fleet: "web", generation: expect.any(Number) });
      }
    } finally {
      first.close();
      second.close();
    }
  });
});

describe("GET /api/v1/events limits", () => {
  let authority: TestAuthority;
  let app: FastifyInstance;
  let url: string;

  beforeAll(async () => {
    authority = await startTestAuthority({ database: testDatabase("pglite") });
    app = Fastify();
    app.decorateRequest("principal", undefined);
    app.setErrorHandler((error, _req, reply) =>
      error instanceof ApiError ? reply.code(error.status).send(error.toJSON()) : reply.send(error),
    );
    await app.register(
      async (api) => {
        api.addHook("onRequest", bearerAuth(authority.handle.store));
        registerEventRoutes(api, authority.handle.store, { maxStreams: 2, heartbeatMs: 50 });
      },
      { prefix: "/api/v1" },
    );
    url = `${await app.listen({ host: "127.0.0.1", port: 0 })}/api/v1/events`;
  });
  afterAll(async () => {
    await app?.close();
    await authority?.close();
  });

  it("holds at most maxStreams at once, 503 too_many_streams beyond, a slot freed by a closed one", async () => {
    const auth = { authorization: `Bearer ${authority.adminToken}` };
    const first = await openStream(url, auth);
    const second = await openStream(url, auth);
    expect([first.status, second.status]).toEqual([200, 200]);
    const third = await openStream(url, auth);
    expect(third.status).toBe(503);
    expect(JSON.parse(third.body)).toMatchObject({ error: "too_many_streams" });

    second.close();
    await second.ended;
    let fourth = await openStream(url, auth);
    // The server hears of the close a moment after the client made it.
    for (let tries = 0; fourth.status === 503 && tries < 50; tries += 1) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      fourth = await openStream(url, auth);
    }
    expect(fourth.status).toBe(200);

    await expect
      .poll(() => first.comments.filter((c) => c === "heartbeat").length, { timeout: 2_000 })
      .toBeGreaterThan(1);

    // Closing the server ends the open streams rather than waiting on them.
    const started = Date.now();
    const closed = app.close();
    await Promise.all([first.ended, fourth.ended]);
    expect(Date.now() - started).toBeLessThan(2_000);
    await closed;
  });
});
