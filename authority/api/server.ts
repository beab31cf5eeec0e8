/**
 * The operator API (fastify): JSON under /api/v1, bearer tokens with roles, its OpenAPI
 * document at /docs/json, and open /healthz, /ready and /metrics (./probes.ts). Every error — ours,
 * fastify's (body too large, bad JSON, schema) or unexpected — leaves as one JSON object
 * with a code from ../errors.ts.
 */
import swagger from "@fastify/swagger";
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  LogController,
} from "fastify";
import type { Logger } from "../../services/telemetry/logger.js";
import type { BundleService } from "../bundle-service.js";
import { ApiError } from "../errors.js";
import type { AuthorityStore } from "../store/index.js";
import { registerUiRoutes } from "../ui/ui-routes.js";
import { registerAgentRoutes } from "./agent-routes.js";
import { registerAuditRoutes } from "./audit-routes.js";
import { bearerAuth } from "./auth.js";
import { registerBundleRoutes } from "./bundle-routes.js";
import { registerEventRoutes } from "./event-routes.js";
import { registerFleetRoutes } from "./fleet-routes.js";
import { registerFleetStateRoutes } from "./fleet-state-routes.js";
import { type AuthorityProbes, registerProbes } from "./probes.js";
import { registerRolloutRoutes } from "./rollout-routes.js";
import { registerTokenRoutes } from "./token-routes.js";

export interface ApiServerOptions {
  readonly store: AuthorityStore;
  readonly bundles: BundleService;
  readonly logger: Logger;
  /** The largest request body read, in bytes; larger ones get 413 body_too_large. */
  readonly bodyLimit: number;
  /** Behind /ready and /metrics. */
  readonly probes: AuthorityProbes;
}

export const API_PREFIX = "/api/v1";

/** Builds the app, routes registered and ready; the caller listens and closes it. */
export async function createApiServer(options: ApiServerOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: options.logger.child({ component: "api" }) as FastifyBaseLogger,
    // Request lines would carry nothing useful and risk carrying credentials.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.bodyLimit,
  });
  app.decorateRequest("principal", undefined);
  app.setErrorHandler((error: FastifyError, _req, reply) => {
    const api = toApiError(error, options.bodyLimit);
    if (api.code === "internal") app.log.error({ err: error }, "request failed");
    if (api.code === "unauthorized") void reply.header("www-authenticate", 'Bearer realm="coherent"');
    return reply.code(api.status).send(api.toJSON());
  });
  app.setNotFoundHandler((req, reply) =>
    reply
      .code(404)
      .send(new ApiError("not_found", `no route ${req.method} ${req.url.split("?")[0]}`).toJSON()),
  );

  await app.register(swagger, {
    openapi: {
      info: {
        title: "Coherent authority",
        description: "Fleets, signed config bundles, the agents that run them, the audit log and API tokens.",
        version: "1",
      },
      components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
      security: [{ bearer: [] }],
    },
  });
  app.get("/docs/json", { schema: { hide: true } }, async () => app.swagger());
  registerProbes(app, options.probes);

  await app.register(
    async (api) => {
      api.addHook("onRequest", bearerAuth(options.store));
      registerFleetRoutes(api, options.store);
      registerFleetStateRoutes(api, options.store);
      registerAgentRoutes(api, options.store);
      registerBundleRoutes(api, options.bundles, options.store);
      registerAuditRoutes(api, options.store);
      registerTokenRoutes(api, options.store);
      registerEventRoutes(api, options.store);
      registerRolloutRoutes(api, { store: options.store });
    },
    { prefix: API_PREFIX },
  );
  await registerUiRoutes(app);
  return app;
}

/** Fastify's own errors mapped to the closed set; anything unknown is internal. */
function toApiError(error: FastifyError, bodyLimit: number): ApiError {
  if (error instanceof ApiError) return error;
  if (error.validation) return new ApiError("bad_request", error.message);
  switch (error.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return new ApiError("body_too_large", `the request body is larger than ${bodyLimit} bytes`, {
        limit: bodyLimit,
      });
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return new ApiError("unsupported_media_type", "send the body as application/json");
  }
  const status = error.statusCode ?? 500;
  if (status >= 400 && status < 500) return new ApiError("bad_request", error.message);
  return new ApiError("internal", "internal error");
}
