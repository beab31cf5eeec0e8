/**
 * The closed set of errors the authority's API answers with. Every error response is
 * `{"error": code, "message", ...}` with the status fixed here, so clients (coherentctl, the
 * tests) branch on the code, never on the text.
 */
export const API_ERRORS = {
  /** The body, a parameter or the query is malformed (not JSON, wrong type, missing field). */
  bad_request: 400,
  /** No bearer token, or one that is unknown or revoked. */
  unauthorized: 401,
  /** The token is valid but its role is below the route's. */
  forbidden: 403,
  unknown_fleet: 404,
  unknown_version: 404,
  unknown_token: 404,
  unknown_rollout: 404,
  /** No such route. */
  not_found: 404,
  fleet_exists: 409,
  /** The fleet kept changing while a submit was checked against its latest bundle. */
  conflict: 409,
  /** A promote to a version below one the fleet's agents may run, which they would refuse. */
  downgrade: 409,
  /** The fleet has a rollout pending, running or paused; finish or abort it first. */
  rollout_active: 409,
  /** A rollout of a version that is not above the fleet's stable version. */
  not_newer: 409,
  /** A rollout command that does not apply in its phase (resume a running rollout, …). */
  invalid_transition: 409,
  body_too_large: 413,
  unsupported_media_type: 415,
  /** The config was read but fails validation or governance; `errors` lists each with its path. */
  validation_failed: 422,
  /** A rollout plan that fails validation; `errors` lists each with its path. */
  invalid_plan: 422,
  internal: 500,
  /** A replica holds as many event streams (GET /events) as it allows; another replica may not. */
  too_many_streams: 503,
} as const;

export type ApiErrorCode = keyof typeof API_ERRORS;

export class ApiError extends Error {
  readonly status: number;

  constructor(
    readonly code: ApiErrorCode,
    message: string,
    /** Fields sent beside code and message, e.g. `required_role` or `errors`. */
    readonly extra: Readonly<Record<string, unknown>> = {},
  ) {
    super(message);
    this.name = "ApiError";
    this.status = API_ERRORS[code];
  }

  toJSON(): Record<string, unknown> {
    return { error: this.code, message: this.message, ...this.extra };
  }
}
