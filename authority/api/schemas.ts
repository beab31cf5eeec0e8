/**
 * JSON schemas shared by the routes: they check requests (a mismatch is 400 bad_request) and
 * describe them in the OpenAPI document.
 */

/** Fleet names appear in URLs, audit targets and agents' settings, so they stay plain. */
export const FLEET_NAME = "^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,126}[A-Za-z0-9])?$";

export const fleetParams = {
  type: "object",
  required: ["fleet"],
  properties: { fleet: { type: "string", pattern: FLEET_NAME } },
} as const;

export const version = { type: "integer", minimum: 1 } as const;

/** The error object every failure answers with; `errors` only for validation_failed. */
export const errorSchema = {
  type: "object",
  required: ["error", "message"],
  properties: {
    error: { type: "string" },
    message: { type: "string" },
    required_role: { type: "string" },
    errors: {
      type: "array",
      items: {
        type: "object",
        properties: {
          path: { type: "string" },
          code: { type: "string" },
          message: { type: "string" },
          line: { type: "integer" },
          column: { type: "integer" },
        },
      },
    },
  },
  additionalProperties: true,
} as const;

/** A config as text (YAML or JSON) or as a JSON object; exactly one of them. */
export const configBody = {
  config_text: { type: "string", description: "The config as YAML or JSON text" },
  config: { type: "object", additionalProperties: true, description: "The config as a JSON object" },
} as const;

/**
 * Documents the error object for every route. Success bodies are sent as they are, except where a
 * route describes its own (the agent listings): then only what the schema names is sent.
 */
export const errorResponses = { "4xx": errorSchema, "5xx": errorSchema } as const;

const nullable = (schema: Record<string, unknown>) => ({ anyOf: [schema, { type: "null" }] });
const versionOrNull = { type: ["integer", "null"] } as const;

/** An agent as GET /agents lists it. */
export const agentSchema = {
  type: "object",
  required: [
    "id",
    "fleet",
    "region",
    "distributor",
    "running_version",
    "desired_version",
    "state",
    "nack",
    "last_seen",
    "stale",
    "connected",
    "labels",
  ],
  properties: {
    id: { type: "string" },
    fleet: { type: "string" },
    region: { type: "string" },
    distributor: { type: ["string", "null"], description: "The distributor holding its stream" },
    running_version: { ...versionOrNull, description: "The version it serves; null for none" },
    desired_version: { ...versionOrNull, description: "The version its distributor wants it to run" },
    state: { type: "string", enum: ["pending", "acked", "nacked", "unknown"] },
    nack: nullable({
      type: "object",
      description: "Its most recent refusal, kept after the state moves on",
      required: ["version", "errors"],
      properties: {
        version: { type: "integer" },
        errors: {
          type: "array",
          items: {
            type: "object",
            required: ["path", "message", "code"],
            properties: { path: { type: "string" }, message: { type: "string" }, code: { type: "string" } },
          },
        },
      },
    }),
    last_seen: { type: "string", format: "date-time" },
    stale: {
      type: "boolean",
      description: "Not connected, or neither it nor its distributor heard of within the stale limit",
    },
    connected: { type: "boolean" },
    labels: { type: "object", additionalProperties: { type: "string" } },
  },
} as const;

/** A fleet's state (as GET /fleets/{fleet}/state) and its agents per version. */
export const fleetStatusSchema = {
  type: "object",
  required: ["fleet", "stable_version", "candidate_version", "rollout_id", "candidate_percent", "agents"],
  properties: {
    fleet: { type: "string" },
    stable_version: versionOrNull,
    candidate_version: versionOrNull,
    rollout_id: { type: ["string", "null"] },
    candidate_percent: { type: "number" },
    generation: { type: "integer" },
    updated_at: nullable({ type: "string", format: "date-time" }),
    agents: {
      type: "object",
      required: ["total", "stale", "by_version"],
      properties: {
        total: { type: "integer" },
        stale: { type: "integer" },
        by_version: {
          type: "array",
          description: "Newest version first; stale agents count only as stale",
          items: {
            type: "object",
            required: ["version", "running", "acked", "pending", "nacked", "stale"],
            properties: {
              version: versionOrNull,
              running: { type: "integer", description: "Live agents serving it" },
              acked: { type: "integer", description: "Live agents asked to run it that acked it" },
              pending: { type: "integer", description: "… that have not answered yet" },
              nacked: { type: "integer", description: "… that refused it" },
              stale: { type: "integer", description: "Stale agents last seen serving it" },
            },
          },
        },
      },
    },
  },
} as const;
