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

/** Documents the error object for every route; success bodies are sent as they are. */
export const errorResponses = { "4xx": errorSchema, "5xx": errorSchema } as const;
