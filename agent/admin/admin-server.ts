/**
 * The admin API (fastify): liveness and readiness for orchestrators, and under /api/v2 the
 * operator's view and controls — validate, diff, apply and roll back configs, inspect pools,
 * breakers and canaries. /api/v2 needs a bearer token; with no token configured it is
 * disabled, never open. The server can also require TLS client certificates.
 */

import { timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from "fastify";
import type { StaticConfig } from "../../services/config/index.js";
import type { Logger } from "../../services/telemetry/logger.js";
import { parseListenAddress } from "../listener/listener-manager.js";
import type { RuntimeState } from "../runtime/runtime-state.js";

/** What the admin API needs from the agent (in one process, or the primary of a cluster). */
export interface AdminTarget {
  readonly ready: boolean;
  readonly version: string | undefined;
  apply(config: unknown, source: string): Promise<AdminApplyResult>;
  diff(config: unknown): { ok: true; changes: unknown[] } | { ok: false; errors: readonly unknown[] };
  validate(config: unknown): { ok: true } | { ok: false; errors: readonly unknown[] };
  current(): { version: string; config: unknown } | undefined;
  rollback(version: string): Promise<AdminApplyResult> | undefined;
  pools(): ReadonlyArray<{ id: string; endpoints: ReadonlyArray<{ address: string; weight: number }> }>;
  listeners(): Promise<unknown[]>;
  runtimeState(): Promise<RuntimeState>;
  metrics(): Promise<{ contentType: string; body: string }>;
}

export type AdminApplyResult =
  | { readonly status: "applied" | "unchanged"; readonly version: string }
  | { readonly status: "rejected"; readonly errors: readonly unknown[] };

export interface AdminOptions {
  readonly address: string;
  readonly tokens: readonly string[];
  readonly tls: NonNullable<StaticConfig["admin"]>["tls"];
  readonly logger: Logger;
  /** Largest request body accepted (a config), in bytes. */
  readonly bodyLimit?: number;
  /** A managed agent's config comes from its distributor only: apply and rollback answer 409. */
  readonly managed?: boolean;
}

export async function startAdminServer(target: AdminTarget, options: AdminOptions): Promise<FastifyInstance> {
  const tls = options.tls;
  const app = Fastify({
    loggerInstance: options.logger.child({ component: "admin" }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.bodyLimit ?? 32 * 1024 * 1024,
    ...(tls
      ? {
          https: {
            cert: readFileSync(tls.cert_file),
            key: readFileSync(tls.key_file),
            ca: tls.client_ca_file ? readFileSync(tls.client_ca_file) : undefined,
            requestCert: tls.client_ca_file !== undefined,
            rejectUnauthorized: tls.require_client_cert === true,
          },
        }
      : {}),
  });

  app.get("/healthz", async () => ({ status: "ok" }));
  app.get("/ready", async (_req, reply) => {
    if (!target.ready) return reply.code(503).send({ ready: false });
    return { ready: true, version: target.version };
  });
  app.get("/metrics", async (_req, reply) => {
    const { contentType, body } = await target.metrics();
    return reply.type(contentType).send(body);
  });

  await app.register(
    async (api) => {
      api.addHook("onRequest", async (req, reply) => authorize(req, reply, options.tokens));
      registerApi(api, target, options.managed === true);
    },
    { prefix: "/api/v2" },
  );

  const { host, port } = parseListenAddress(options.address);
  await app.listen({ host: host ?? "0.0.0.0", port });
  return app;
}

async function authorize(req: FastifyRequest, reply: FastifyReply, tokens: readonly string[]): Promise<void> {
  if (tokens.length === 0) {
    return reply.code(403).send({
      error: "admin_api_disabled",
      message: "no admin token is configured: set PROXY_ADMIN_TOKEN or admin.tokens",
    });
  }
  const header = req.headers.authorization;
  const given = header?.startsWith("Bearer ") ? Buffer.from(header.slice(7)) : undefined;
  if (!given || !tokens.some((token) => sameBytes(Buffer.from(token), given))) {
    return reply
      .code(401)
      .header("www-authenticate", 'Bearer realm="coherent-admin"')
      .send({ error: "unauthorized", message: "a valid bearer token is required" });
  }
}

/** Compares in time independent of where the first difference is. */
function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** A managed agent serves what its distributor sends; a local change would be undone or fork the fleet. */
function managedReply(reply: FastifyReply): FastifyReply {
  return reply.code(409).send({
    error: "managed_by_control_plane",
    message:
      "this agent's config comes from its control plane: publish a new bundle through the authority instead",
  });
}

interface ConfigBody {
  readonly config?: unknown;
}

function registerApi(api: FastifyInstance, target: AdminTarget, managed: boolean): void {
  const configOf = (req: FastifyRequest, reply: FastifyReply): unknown => {
    const body = req.body as ConfigBody | undefined;
    if (body?.config === undefined) {
      void reply.code(400).send({ error: "bad_request", message: 'the body must be {"config": {...}}' });
      return undefined;
    }
    return body.config;
  };

  api.post("/config/validate", async (req, reply) => {
    const config = configOf(req, reply);
    if (config === undefined) return reply;
    const result = target.validate(config);
    return result.ok ? { valid: true } : reply.code(422).send({ valid: false, errors: result.errors });
  });

  api.post("/config/diff", async (req, reply) => {
    const config = configOf(req, reply);
    if (config === undefined) return reply;
    const result = target.diff(config);
    return result.ok
      ? { changes: result.changes }
      : reply.code(422).send({ valid: false, errors: result.errors });
  });

  api.post("/config/apply", async (req, reply) => {
    if (managed) return managedReply(reply);
    const config = configOf(req, reply);
    if (config === undefined) return reply;
    const result = await target.apply(config, "admin api");
    if (result.status === "rejected") return reply.code(422).send({ valid: false, errors: result.errors });
    return { version: result.version, status: result.status };
  });

  api.get("/config/current", async (_req, reply) => {
    const current = target.current();
    return current ?? reply.code(404).send({ error: "no_config", message: "no config is active yet" });
  });

  api.post("/config/rollback", async (req, reply) => {
    if (managed) return managedReply(reply);
    const version = (req.body as { version?: unknown } | undefined)?.version;
    if (typeof version !== "string") {
      return reply.code(400).send({ error: "bad_request", message: 'the body must be {"version": "..."}' });
    }
    const pending = target.rollback(version);
    if (!pending) {
      return reply
        .code(404)
        .send({ error: "unknown_version", message: `version ${version} is not among the last configs` });
    }
    const result = await pending;
    if (result.status === "rejected") return reply.code(422).send({ valid: false, errors: result.errors });
    return { version: result.version, status: result.status, rolled_back_to: version };
  });

  api.get<{ Params: { id: string } }>("/pools/:id/health", async (req, reply) => {
    const pool = target.pools().find((p) => p.id === req.params.id);
    if (!pool) return reply.code(404).send({ error: "unknown_pool", message: `no pool "${req.params.id}"` });
    const health = (await target.runtimeState()).pools.find((p) => p.pool === pool.id);
    const reports = new Map(health?.endpoints.map((e) => [e.address, e]));
    const endpoints = pool.endpoints.map((e) => ({
      weight: e.weight,
      ...reports.get(e.address),
      address: e.address,
    }));
    return {
      pool: pool.id,
      healthy_endpoints: endpoints.filter((e) => e.healthy !== false).length,
      total_endpoints: endpoints.length,
      endpoints,
    };
  });

  api.get("/breakers", async () => ({ breakers: (await target.runtimeState()).breakers }));
  api.get("/traffic/canary", async () => ({ routes: (await target.runtimeState()).canaries }));
  api.get("/limits", async () => ({ routes: (await target.runtimeState()).limits }));

  api.get("/listeners", async () => ({ listeners: await target.listeners() }));
}
