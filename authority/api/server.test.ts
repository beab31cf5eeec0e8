import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Keyring, verifyBundle } from "../../services/bundle/index.js";
import {
  DIALECTS,
  type DialectName,
  dropSchema,
  sampleConfig,
  startTestAuthority,
  type TestAuthority,
  testDatabase,
} from "./test-harness.js";

interface Issue {
  path: string;
  code: string;
  message: string;
}

const asRecord = (body: unknown) => body as Record<string, unknown>;

for (const { name, skip } of DIALECTS) {
  // Skipped only when COHERENT_TEST_NO_POSTGRES=1 (no Postgres on the machine): the PGlite run still covers it.
  describe.skipIf(skip)(`the authority API on ${name}`, () => {
    const database = testDatabase(name as DialectName);
    let authority: TestAuthority;
    let viewer: string;
    let operator: string;

    beforeAll(async () => {
      authority = await startTestAuthority({ database });
      viewer = await authority.token("viewer");
      operator = await authority.token("operator");
      expect((await authority.call("POST", "/api/v1/fleets", { body: { name: "edge" } })).status).toBe(201);
    });

    afterAll(async () => {
      await authority?.close();
      await dropSchema(database);
    });

    async function fleet(fleetName: string): Promise<void> {
      expect((await authority.call("POST", "/api/v1/fleets", { body: { name: fleetName } })).status).toBe(
        201,
      );
    }

    /** What "nothing written" is checked against: the fleet's versions and the audit chain's length. */
    async function writtenState(fleetName: string) {
      const bundles = await authority.handle.store.listBundles(fleetName, { limit: 1000 });
      const audit = await authority.handle.store.verifyAudit();
      return { versions: bundles.map((b) => b.version), auditEntries: audit.entries };
    }

    it("answers /ready and /metrics without a token: the database reachable, requests by route template", async () => {
      expect(await authority.call("GET", "/ready", { token: "" })).toMatchObject({
        status: 200,
        body: { status: "ready" },
      });
      expect((await authority.call("GET", "/api/v1/fleets/edge", { token: viewer })).status).toBe(200);
      const response = await fetch(`${authority.handle.url}/metrics`);
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toContain("text/plain");
      const text = await response.text();
      expect(text).toContain("coherent_authority_database_up 1");
      expect(text).toContain("coherent_authority_feed_sessions 0");
      expect(text).toMatch(
        /coherent_authority_requests_total\{method="GET",route="\/api\/v1\/fleets\/:fleet",status="200"\} [1-9]/,
      );
      expect(text).toContain("process_cpu_seconds_total");
      // Label values come from route templates, never from what a client sent.
      await authority.call("GET", "/no/such/path/9f1c", { token: "" });
      expect(await (await fetch(`${authority.handle.url}/metrics`)).text()).not.toContain("9f1c");
    });

    it("serves /healthz without a token and its OpenAPI document at /docs/json", async () => {
      expect(await authority.call("GET", "/healthz", { token: "" })).toMatchObject({
        status: 200,
        body: { status: "ok" },
      });
      const docs = await authority.call("GET", "/docs/json", { token: "" });
      expect(docs.status).toBe(200);
      const paths = Object.keys(asRecord(asRecord(docs.body).paths));
      expect(paths).toEqual(
        expect.arrayContaining([
          "/api/v1/fleets",
          "/api/v1/fleets/{fleet}/bundles",
          "/api/v1/fleets/{fleet}/bundles/{version}",
          "/api/v1/fleets/{fleet}/bundles/{from}/diff/{to}",
          "/api/v1/validate",
          "/api/v1/audit",
          "/api/v1/audit/verify",
          "/api/v1/tokens",
          "/api/v1/tokens/{id}",
        ]),
      );
      expect(asRecord(docs.body).openapi).toMatch(/^3\./);
    });

    it("answers 401 without a token, with an unknown one and with a malformed header", async () => {
      const attempts: Array<Record<string, string>> = [
        {},
        { authorization: "Bearer coh_not-a-real-token" },
        { authorization: "Basic eDp5" },
      ];
      for (const headers of attempts) {
        const res = await authority.call("GET", "/api/v1/fleets", { token: "", headers });
        expect(res.status).toBe(401);
        expect(res.body).toMatchObject({ error: "unauthorized" });
        expect(res.headers["www-authenticate"]).toBe('Bearer realm="coherent"');
      }
    });

    it("enforces viewer < operator < admin on every kind of route", async () => {
      await fleet("roles");
      const submit = { body: { config: sampleConfig() } };
      const matrix: Array<[string, string, { body?: unknown }, Record<string, number>]> = [
        ["GET", "/api/v1/fleets", {}, { viewer: 200, operator: 200, admin: 200 }],
        ["GET", "/api/v1/fleets/roles/bundles", {}, { viewer: 200, operator: 200, admin: 200 }],
        ["GET", "/api/v1/audit", {}, { viewer: 200, operator: 200, admin: 200 }],
        [
          "POST",
          "/api/v1/validate",
          { body: { config: sampleConfig() } },
          { viewer: 200, operator: 200, admin: 200 },
        ],
        ["POST", "/api/v1/fleets/roles/bundles", submit, { viewer: 403, operator: 201, admin: 200 }],
        [
          "POST",
          "/api/v1/fleets",
          { body: { name: "roles-new" } },
          { viewer: 403, operator: 403, admin: 201 },
        ],
        ["GET", "/api/v1/tokens", {}, { viewer: 403, operator: 403, admin: 200 }],
        ["GET", "/api/v1/audit/verify", {}, { viewer: 403, operator: 403, admin: 200 }],
      ];
      const tokens: Record<string, string> = { viewer, operator, admin: authority.adminToken };
      for (const [method, path, options, expected] of matrix) {
        for (const role of ["viewer", "operator", "admin"]) {
          const res = await authority.call(method, path, { ...options, token: tokens[role] as string });
          expect({ method, path, role, status: res.status }).toEqual({
            method,
            path,
            role,
            status: expected[role],
          });
          if (res.status === 403) {
            expect(res.body).toMatchObject({
              error: "forbidden",
              required_role: path.includes("bundles") ? "operator" : "admin",
            });
          }
        }
      }
      expect(
        (
          await authority.call("POST", "/api/v1/tokens", {
            token: operator,
            body: { name: "x", role: "admin" },
          })
        ).body,
      ).toMatchObject({
        error: "forbidden",
        required_role: "admin",
      });
    });

    it("creates fleets once, with plain names, and knows which fleets exist", async () => {
      await fleet("fleets-a");
      expect(await authority.call("POST", "/api/v1/fleets", { body: { name: "fleets-a" } })).toMatchObject({
        status: 409,
        body: { error: "fleet_exists" },
      });
      expect(
        await authority.call("POST", "/api/v1/fleets", { body: { name: "bad name/../x" } }),
      ).toMatchObject({
        status: 400,
        body: { error: "bad_request" },
      });
      expect(await authority.call("GET", "/api/v1/fleets/fleets-a", { token: viewer })).toMatchObject({
        status: 200,
        body: { name: "fleets-a", description: null },
      });
      expect(await authority.call("GET", "/api/v1/fleets/nope", { token: viewer })).toMatchObject({
        status: 404,
        body: { error: "unknown_fleet" },
      });
      const list = await authority.call("GET", "/api/v1/fleets", { token: viewer });
      expect((asRecord(list.body).fleets as Array<{ name: string }>).map((f) => f.name)).toContain(
        "fleets-a",
      );
    });

    it("signs and stores versions 1, 2… and answers an identical resubmit with unchanged", async () => {
      await fleet("submit");
      const first = await authority.call("POST", "/api/v1/fleets/submit/bundles", {
        token: operator,
        body: { config: sampleConfig(2), message: "first" },
      });
      expect(first).toMatchObject({
        status: 201,
        body: { status: "created", fleet: "submit", version: 1, parent: null },
      });
      expect(asRecord(first.body).content_sha256).toMatch(/^[0-9a-f]{64}$/);

      // The same meaning written as YAML text, with other key order and units: the same content.
      const yaml = [
        "routes:",
        "  - id: route-0",
        "    pool: api",
        "    path_prefix: /r0",
        "    policy: { timeout: 5000ms }",
        "  - id: route-1",
        "    path_prefix: /r1",
        "    policy: { timeout: 5s }",
        "    pool: api",
        "pools:",
        "  - id: api",
        "    endpoints: [{ address: '10.0.0.1:8000' }]",
      ].join("\n");
      expect(
        await authority.call("POST", "/api/v1/fleets/submit/bundles", {
          token: operator,
          body: { config_text: yaml },
        }),
      ).toMatchObject({
        status: 200,
        body: { status: "unchanged", version: 1, content_sha256: asRecord(first.body).content_sha256 },
      });

      const second = await authority.call("POST", "/api/v1/fleets/submit/bundles", {
        token: operator,
        body: { config: sampleConfig(3) },
      });
      expect(second).toMatchObject({ status: 201, body: { status: "created", version: 2, parent: 1 } });
    });

    it("lists, shows and diffs bundles; the shown JWS verifies with the authority's key", async () => {
      await fleet("read");
      for (const routes of [1, 2, 3]) {
        await authority.call("POST", "/api/v1/fleets/read/bundles", {
          token: operator,
          body: { config: sampleConfig(routes), message: `${routes} routes` },
        });
      }
      const list = await authority.call("GET", "/api/v1/fleets/read/bundles", { token: viewer });
      expect(list.status).toBe(200);
      const bundles = asRecord(list.body).bundles as Array<Record<string, unknown>>;
      expect(bundles.map((b) => b.version)).toEqual([3, 2, 1]);
      expect(bundles[0]).toMatchObject({ message: "3 routes", created_by: "token:operator-1", parent: 2 });
      expect(bundles[0]).not.toHaveProperty("jws");

      const page = await authority.call("GET", "/api/v1/fleets/read/bundles?limit=1&before=3", {
        token: viewer,
      });
      expect((asRecord(page.body).bundles as Array<{ version: number }>).map((b) => b.version)).toEqual([2]);

      const shown = await authority.call("GET", "/api/v1/fleets/read/bundles/2", { token: viewer });
      expect(shown).toMatchObject({
        status: 200,
        body: { version: 2, config: { routes: [{ id: "route-0" }, { id: "route-1" }] } },
      });
      const keyring = await Keyring.from([{ pem: authority.publicPem }]);
      const payload = await verifyBundle(asRecord(shown.body).jws as string, {
        keyring,
        fleet: "read",
        floor: 1,
      });
      expect(payload).toMatchObject({ fleet: "read", version: 2, parent: 1, created_by: "token:operator-1" });
      expect(payload.config).toEqual(asRecord(shown.body).config);

      const diff = await authority.call("GET", "/api/v1/fleets/read/bundles/1/diff/3", { token: viewer });
      expect(diff.status).toBe(200);
      const changes = asRecord(diff.body).changes as Array<Record<string, unknown>>;
      expect(changes.map((c) => [c.kind, c.path])).toEqual([
        ["added", "routes[route-1]"],
        ["added", "routes[route-2]"],
      ]);
      expect(changes[0]?.description).toContain("routes[route-1]: added");
      expect(
        (await authority.call("GET", "/api/v1/fleets/read/bundles/3/diff/3", { token: viewer })).body,
      ).toMatchObject({ changes: [] });

      expect(await authority.call("GET", "/api/v1/fleets/read/bundles/9", { token: viewer })).toMatchObject({
        status: 404,
        body: { error: "unknown_version" },
      });
      expect(
        await authority.call("GET", "/api/v1/fleets/read/bundles/1/diff/9", { token: viewer }),
      ).toMatchObject({
        status: 404,
        body: { error: "unknown_version" },
      });
      expect(await authority.call("GET", "/api/v1/fleets/nope/bundles/1", { token: viewer })).toMatchObject({
        status: 404,
        body: { error: "unknown_fleet" },
      });
      expect(
        await authority.call("GET", "/api/v1/fleets/read/bundles/zero", { token: viewer }),
      ).toMatchObject({
        status: 400,
        body: { error: "bad_request" },
      });
    });

    it("refuses bad input with a clear error and writes nothing", async () => {
      await fleet("bad");
      await authority.call("POST", "/api/v1/fleets/bad/bundles", {
        token: operator,
        body: { config: sampleConfig() },
      });
      const before = await writtenState("bad");
      const submit = (options: { body?: unknown; headers?: Record<string, string> }) =>
        authority.call("POST", "/api/v1/fleets/bad/bundles", { token: operator, ...options });

      const yaml = await submit({ body: { config_text: "routes:\n  - id: a\n    pool: [unclosed\n" } });
      expect(yaml).toMatchObject({ status: 422, body: { error: "validation_failed" } });
      expect((asRecord(yaml.body).errors as Issue[])[0]).toMatchObject({
        code: "config_syntax",
        line: expect.any(Number),
      });

      const schema = await submit({
        body: {
          config: {
            pools: [{ id: "p", endpoints: [] }],
            routes: [
              { id: "a", path: "/a", pool: "missing", policy: { timeout: "soon" } },
              { id: "b", path: "/b", pool: "p", policy: { timeout: "1s" }, colour: "red" },
            ],
          },
        },
      });
      expect(schema.status).toBe(422);
      const paths = (asRecord(schema.body).errors as Issue[]).map((e) => e.path).sort();
      expect(paths).toEqual([
        "pools[0].endpoints",
        "routes[0].policy.timeout",
        "routes[0].pool",
        "routes[1].colour",
      ]);

      const governance = await submit({
        body: { config: { ...sampleConfig(), routes: [{ id: "slow", path: "/slow", pool: "api" }] } },
      });
      expect(governance).toMatchObject({
        status: 422,
        body: { errors: [{ code: "route_timeout_required", path: "routes[0].policy.timeout" }] },
      });

      const huge = await submit({ body: { config_text: `# ${"x".repeat(1024 * 1024)}` } });
      expect(huge).toMatchObject({ status: 413, body: { error: "body_too_large" } });

      expect(await submit({ body: { config: sampleConfig(), config_text: "x: 1" } })).toMatchObject({
        status: 400,
        body: { error: "bad_request" },
      });
      expect(await submit({ body: {} })).toMatchObject({ status: 400, body: { error: "bad_request" } });
      expect(await submit({ body: "{not json" })).toMatchObject({
        status: 400,
        body: { error: "bad_request" },
      });
      expect(await submit({ body: { config: "routes: []" } })).toMatchObject({
        status: 400,
        body: { error: "bad_request" },
      });
      expect(
        await submit({ body: "routes: []", headers: { "content-type": "application/yaml" } }),
      ).toMatchObject({ status: 415, body: { error: "unsupported_media_type" } });
      expect(
        await authority.call("POST", "/api/v1/fleets/nope/bundles", {
          token: operator,
          body: { config: sampleConfig() },
        }),
      ).toMatchObject({ status: 404, body: { error: "unknown_fleet" } });
      expect(
        await authority.call("POST", "/api/v1/fleets/bad/bundles", {
          token: viewer,
          body: { config: sampleConfig(3) },
        }),
      ).toMatchObject({ status: 403 });
      expect(
        await authority.call("POST", "/api/v1/fleets/bad/bundles", {
          token: "coh_forged",
          body: { config: sampleConfig(3) },
        }),
      ).toMatchObject({ status: 401 });
      expect(await authority.call("GET", "/api/v1/nothing-here")).toMatchObject({
        status: 404,
        body: { error: "not_found" },
      });

      expect(await writtenState("bad")).toEqual(before);
    });

    it("keeps require_tls on routes that had it, checked against the fleet's latest bundle", async () => {
      await fleet("tls");
      const secure = sampleConfig();
      (secure.routes as Array<Record<string, unknown>>)[0] = {
        ...(secure.routes as object[])[0],
        require_tls: true,
      };
      await authority.call("POST", "/api/v1/fleets/tls/bundles", {
        token: operator,
        body: { config: secure },
      });
      const dropped = await authority.call("POST", "/api/v1/fleets/tls/bundles", {
        token: operator,
        body: { config: sampleConfig(2) },
      });
      expect(dropped).toMatchObject({
        status: 422,
        body: { errors: [{ code: "require_tls_kept", path: "routes[0].require_tls" }] },
      });
      expect(
        await authority.call("POST", "/api/v1/validate", {
          token: viewer,
          body: { config: sampleConfig(2), fleet: "tls" },
        }),
      ).toMatchObject({ status: 200, body: { valid: false, errors: [{ code: "require_tls_kept" }] } });
      expect(
        await authority.call("POST", "/api/v1/validate", {
          token: viewer,
          body: { config: sampleConfig(2) },
        }),
      ).toMatchObject({ status: 200, body: { valid: true } });
    });

    it("validates without storing anything", async () => {
      await fleet("validate");
      const before = await writtenState("validate");
      const ok = await authority.call("POST", "/api/v1/validate", {
        token: viewer,
        body: { config_text: JSON.stringify(sampleConfig()) },
      });
      expect(ok).toMatchObject({ status: 200, body: { valid: true, errors: [] } });
      expect(asRecord(ok.body).content_sha256).toMatch(/^[0-9a-f]{64}$/);
      const bad = await authority.call("POST", "/api/v1/validate", {
        token: viewer,
        body: { config: { routes: [{ id: "x", path: "/x", pool: "nope", policy: { timeout: "1s" } }] } },
      });
      expect(bad).toMatchObject({
        status: 200,
        body: { valid: false, errors: [{ path: "routes[0].pool" }] },
      });
      expect(
        await authority.call("POST", "/api/v1/validate", {
          token: viewer,
          body: { config: sampleConfig(), fleet: "nope" },
        }),
      ).toMatchObject({ status: 404, body: { error: "unknown_fleet" } });
      expect(await writtenState("validate")).toEqual(before);
    });

    it("gives 20 concurrent submits to one fleet versions 1..20", async () => {
      await fleet("busy");
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          authority.call("POST", "/api/v1/fleets/busy/bundles", {
            token: operator,
            body: { config: sampleConfig(i + 1) },
          }),
        ),
      );
      expect(results.map((r) => r.status)).toEqual(Array(20).fill(201));
      const versions = results.map((r) => asRecord(r.body).version as number).sort((a, b) => a - b);
      expect(versions).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    });

    it("issues tokens once, lists them without values, and refuses revoked ones", async () => {
      const created = await authority.call("POST", "/api/v1/tokens", {
        body: { name: "ci", role: "viewer" },
      });
      expect(created).toMatchObject({ status: 201, body: { name: "ci", role: "viewer" } });
      const { id, token } = created.body as { id: string; token: string };
      expect(token).toMatch(/^coh_[A-Za-z0-9_-]{43}$/);
      expect((await authority.call("GET", "/api/v1/fleets", { token })).status).toBe(200);

      const list = await authority.call("GET", "/api/v1/tokens");
      const listed = (asRecord(list.body).tokens as Array<Record<string, unknown>>).find((t) => t.id === id);
      expect(listed).toMatchObject({
        name: "ci",
        role: "viewer",
        created_by: "token:bootstrap",
        revoked_at: null,
      });
      expect(JSON.stringify(list.body)).not.toContain(token);
      expect(JSON.stringify(list.body)).not.toMatch(/hash/);

      expect(await authority.call("DELETE", `/api/v1/tokens/${id}`)).toMatchObject({
        status: 200,
        body: { id, revoked: true },
      });
      expect((await authority.call("GET", "/api/v1/fleets", { token })).status).toBe(401);
      expect(await authority.call("DELETE", `/api/v1/tokens/${id}`)).toMatchObject({
        status: 404,
        body: { error: "unknown_token" },
      });
      expect(
        await authority.call("POST", "/api/v1/tokens", { body: { name: "x", role: "root" } }),
      ).toMatchObject({
        status: 400,
        body: { error: "bad_request" },
      });
    });

    it("audits every action with its actor, filters the list, and verifies the chain", async () => {
      await fleet("audited");
      await authority.call("POST", "/api/v1/fleets/audited/bundles", {
        token: operator,
        body: { config: sampleConfig(), message: "why" },
      });
      const created = await authority.call("POST", "/api/v1/tokens", {
        body: { name: "audited", role: "viewer" },
      });
      const { id } = created.body as { id: string };
      await authority.call("DELETE", `/api/v1/tokens/${id}`);

      const all = await authority.call("GET", "/api/v1/audit?limit=1000", { token: viewer });
      const entries = asRecord(all.body).entries as Array<Record<string, unknown>>;
      const find = (action: string, target: string) =>
        entries.find((e) => e.action === action && e.target === target);
      expect(find("fleet.create", "fleet:audited")).toMatchObject({ actor: "token:bootstrap" });
      expect(find("bundle.submit", "fleet:audited")).toMatchObject({
        actor: "token:operator-1",
        details: { version: 1, parent: null, message: "why" },
      });
      expect(find("token.create", `token:${id}`)).toMatchObject({
        details: { name: "audited", role: "viewer" },
      });
      expect(find("token.revoke", `token:${id}`)).toMatchObject({ actor: "token:bootstrap" });
      expect(find("key.activate", `key:${authority.handle.kid}`)).toMatchObject({
        actor: "system:authority",
      });
      const seqs = entries.map((e) => e.seq as number);
      expect(seqs).toEqual([...seqs].sort((a, b) => b - a));

      const filtered = await authority.call(
        "GET",
        "/api/v1/audit?action=bundle.submit&target=fleet:audited",
        {
          token: viewer,
        },
      );
      expect((asRecord(filtered.body).entries as unknown[]).length).toBe(1);
      const future = await authority.call(
        "GET",
        `/api/v1/audit?since=${new Date(Date.now() + 60_000).toISOString()}`,
        {
          token: viewer,
        },
      );
      expect(asRecord(future.body).entries).toEqual([]);
      expect(await authority.call("GET", "/api/v1/audit?since=yesterday", { token: viewer })).toMatchObject({
        status: 400,
        body: { error: "bad_request" },
      });

      expect(await authority.call("GET", "/api/v1/audit/verify")).toMatchObject({
        status: 200,
        body: { ok: true },
      });
    });

    it("never logs a token's value", async () => {
      const created = await authority.call("POST", "/api/v1/tokens", {
        body: { name: "secret", role: "viewer" },
      });
      const { token } = created.body as { token: string };
      await authority.call("GET", "/api/v1/fleets", { token });
      await authority.call("GET", "/api/v1/fleets", { token: `${token}x` });
      expect(authority.logs()).not.toContain(token);
      expect(authority.logs()).not.toContain(authority.adminToken);
      expect(authority.logs()).toContain('"event":"authority_started"');
    });

    it("names the first edited audit entry when the chain is verified", async () => {
      const target = (await authority.handle.store.listAudit({ action: "fleet.create", limit: 1 }))[0];
      expect(target).toBeDefined();
      await sql`update audit_log set details = ${JSON.stringify({ forged: true })}::jsonb where seq = ${target?.seq}`.execute(
        authority.handle.database.db,
      );
      expect(await authority.call("GET", "/api/v1/audit/verify")).toMatchObject({
        status: 200,
        body: { ok: false, broken_at: { seq: target?.seq } },
      });
    });
  });
}
