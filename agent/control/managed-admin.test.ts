import type { FastifyInstance } from "fastify";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { type AdminTarget, startAdminServer } from "../admin/admin-server.js";

const TOKEN = "managed-test-token-0123456789";

function target(): AdminTarget & { applied: number; rolledBack: number } {
  return {
    applied: 0,
    rolledBack: 0,
    ready: true,
    version: "1-abc",
    apply(this: { applied: number }) {
      this.applied++;
      return Promise.resolve({ status: "applied", version: "2-def" });
    },
    diff: () => ({ ok: true, changes: [] }),
    validate: () => ({ ok: true }),
    current: () => ({ version: "1-abc", config: {} }),
    rollback(this: { rolledBack: number }) {
      this.rolledBack++;
      return Promise.resolve({ status: "applied", version: "3-abc" });
    },
    pools: () => [],
    listeners: () => Promise.resolve([]),
    runtimeState: () => Promise.reject(new Error("not used")),
    metrics: () => Promise.resolve({ contentType: "text/plain", body: "" }),
  };
}

let app: FastifyInstance | undefined;

afterEach(async () => {
  await app?.close();
  app = undefined;
});

async function post(managed: boolean, url: string, payload: Record<string, unknown>) {
  const admin = target();
  app = await startAdminServer(admin, {
    address: "127.0.0.1:0",
    tokens: [TOKEN],
    tls: undefined,
    logger: pino({ level: "silent" }),
    managed,
  });
  const res = await app.inject({
    method: "POST",
    url,
    payload,
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  return { res, admin };
}

describe("the admin API of a managed agent", () => {
  it("refuses apply with 409 managed_by_control_plane and changes nothing", async () => {
    const { res, admin } = await post(true, "/api/v2/config/apply", { config: {} });
    expect(res.statusCode).toBe(409);
    expect(res.json()).toMatchObject({ error: "managed_by_control_plane" });
    expect(admin.applied).toBe(0);
  });

  it("refuses rollback with 409 managed_by_control_plane and changes nothing", async () => {
    const { res, admin } = await post(true, "/api/v2/config/rollback", { version: "1-abc" });
    expect(res.statusCode).toBe(409);
    expect(res.json()).toMatchObject({ error: "managed_by_control_plane" });
    expect(admin.rolledBack).toBe(0);
  });

  it("still validates configs", async () => {
    const { res } = await post(true, "/api/v2/config/validate", { config: {} });
    expect(res.statusCode).toBe(200);
  });

  it("applies as before when the agent is not managed", async () => {
    const { res, admin } = await post(false, "/api/v2/config/apply", { config: {} });
    expect(res.statusCode).toBe(200);
    expect(admin.applied).toBe(1);
  });
});
