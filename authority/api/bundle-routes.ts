/**
 * Bundles of a fleet (operators submit, viewers read and diff) and /validate, which runs the
 * whole submit check without storing anything.
 */
import type { FastifyInstance } from "fastify";
import { formatChange, formatPath } from "../../services/config/index.js";
import type { BundleService, CheckIssue, ConfigInput } from "../bundle-service.js";
import { ApiError } from "../errors.js";
import type { AuthorityStore, BundleSummary } from "../store/index.js";
import { actor } from "./auth.js";
import { configBody, errorResponses, FLEET_NAME, fleetParams, version } from "./schemas.js";

interface ConfigBody {
  config_text?: string;
  config?: Record<string, unknown>;
}

const DEFAULT_LIST_LIMIT = 50;

export function registerBundleRoutes(
  api: FastifyInstance,
  bundles: BundleService,
  store: AuthorityStore,
): void {
  api.post<{ Params: { fleet: string }; Body: ConfigBody & { message?: string } }>(
    "/fleets/:fleet/bundles",
    {
      config: { role: "operator" },
      schema: {
        tags: ["bundles"],
        summary: "Submit a config: validated, checked by governance, signed and stored as the next version",
        params: fleetParams,
        body: {
          type: "object",
          additionalProperties: false,
          properties: { ...configBody, message: { type: "string", maxLength: 1000 } },
        },
        response: errorResponses,
      },
    },
    async (req, reply) => {
      const { fleet } = req.params;
      const result = await bundles.submit(fleet, configInput(req.body), {
        actor: actor(req),
        ...(req.body.message === undefined ? {} : { message: req.body.message }),
      });
      if (result.status === "invalid") throw invalid(result.errors);
      const body = {
        status: result.status,
        fleet,
        version: result.bundle.version,
        parent: result.bundle.parent,
        content_sha256: result.bundle.contentSha256,
      };
      return reply.code(result.status === "created" ? 201 : 200).send(body);
    },
  );

  api.get<{ Params: { fleet: string }; Querystring: { limit?: number; before?: number } }>(
    "/fleets/:fleet/bundles",
    {
      config: { role: "viewer" },
      schema: {
        tags: ["bundles"],
        summary: "List a fleet's bundles, newest first",
        params: fleetParams,
        querystring: {
          type: "object",
          properties: {
            limit: { type: "integer", minimum: 1, maximum: 1000, default: DEFAULT_LIST_LIMIT },
            before: { ...version, description: "Only versions below this one (the next page)" },
          },
        },
        response: errorResponses,
      },
    },
    async (req) => {
      const { fleet } = req.params;
      await bundles.requireFleet(fleet);
      const rows = await store.listBundles(fleet, {
        limit: req.query.limit ?? DEFAULT_LIST_LIMIT,
        ...(req.query.before === undefined ? {} : { beforeVersion: req.query.before }),
      });
      return { fleet, bundles: rows.map(bundleSummary) };
    },
  );

  api.get<{ Params: { fleet: string; version: number } }>(
    "/fleets/:fleet/bundles/:version",
    {
      config: { role: "viewer" },
      schema: {
        tags: ["bundles"],
        summary: "Show one bundle with its config and its signed JWS",
        params: {
          type: "object",
          required: ["fleet", "version"],
          properties: { fleet: { type: "string", pattern: FLEET_NAME }, version },
        },
        response: errorResponses,
      },
    },
    async (req) => {
      const row = await bundles.bundle(req.params.fleet, req.params.version);
      return { ...bundleSummary(row), config: row.config, jws: row.jws };
    },
  );

  api.get<{ Params: { fleet: string; from: number; to: number } }>(
    "/fleets/:fleet/bundles/:from/diff/:to",
    {
      config: { role: "viewer" },
      schema: {
        tags: ["bundles"],
        summary: "The changes from one version to another, addressed by ids",
        params: {
          type: "object",
          required: ["fleet", "from", "to"],
          properties: { fleet: { type: "string", pattern: FLEET_NAME }, from: version, to: version },
        },
        response: errorResponses,
      },
    },
    async (req) => {
      const { fleet, from, to } = req.params;
      const changes = await bundles.diff(fleet, from, to);
      return {
        fleet,
        from,
        to,
        changes: changes.map((change) => ({
          ...change,
          path: formatPath(change.path),
          description: formatChange(change),
        })),
      };
    },
  );

  api.post<{ Body: ConfigBody & { fleet?: string } }>(
    "/validate",
    {
      config: { role: "viewer" },
      schema: {
        tags: ["bundles"],
        summary: "Validate a config and check governance, storing nothing",
        body: {
          type: "object",
          additionalProperties: false,
          properties: {
            ...configBody,
            fleet: {
              type: "string",
              pattern: FLEET_NAME,
              description: "Check governance against this fleet's latest bundle too",
            },
          },
        },
        response: errorResponses,
      },
    },
    async (req) => {
      const result = await bundles.validate(configInput(req.body), req.body.fleet);
      return result.ok
        ? { valid: true, content_sha256: result.contentSha256, errors: [] }
        : { valid: false, errors: result.errors };
    },
  );
}

function configInput(body: ConfigBody): ConfigInput {
  if ((body.config_text === undefined) === (body.config === undefined)) {
    throw new ApiError(
      "bad_request",
      'send the config as "config_text" (YAML or JSON text) or "config" (an object)',
    );
  }
  return body.config_text === undefined ? { data: body.config } : { text: body.config_text };
}

function invalid(errors: readonly CheckIssue[]): ApiError {
  const count = errors.length === 1 ? "1 error" : `${errors.length} errors`;
  return new ApiError("validation_failed", `the config is not valid: ${count}`, { errors });
}

function bundleSummary(row: BundleSummary) {
  return {
    fleet: row.fleet,
    version: row.version,
    parent: row.parent,
    content_sha256: row.contentSha256,
    created_at: row.createdAt,
    created_by: row.createdBy,
    message: row.message,
    rollback_of: row.rollbackOf,
  };
}
