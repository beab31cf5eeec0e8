/**
 * /fleets/:fleet/state and /promote: which versions a fleet runs (viewers read it) and the
 * emergency path that sets its stable version at once (admins only).
 */
import type { FastifyInstance } from "fastify";
import { ApiError, type ApiErrorCode } from "../errors.js";
import { type AuthorityStore, type FleetState, StoreError } from "../store/index.js";
import { actor } from "./auth.js";
import { errorResponses, fleetParams, version } from "./schemas.js";

/** The store's refusals of a promote, as the API names them; anything else is internal. */
const PROMOTE_ERRORS: Partial<Record<StoreError["code"], ApiErrorCode>> = {
  unknown_fleet: "unknown_fleet",
  unknown_version: "unknown_version",
  downgrade: "downgrade",
};

export function registerFleetStateRoutes(api: FastifyInstance, store: AuthorityStore): void {
  api.get<{ Params: { fleet: string } }>(
    "/fleets/:fleet/state",
    {
      config: { role: "viewer" },
      schema: {
        tags: ["fleets"],
        summary: "Which versions a fleet runs: stable, and the candidate of a rollout in progress",
        params: fleetParams,
        response: errorResponses,
      },
    },
    async (req) => {
      const state = await store.getFleetState(req.params.fleet);
      if (!state) throw new ApiError("unknown_fleet", `no fleet "${req.params.fleet}"`);
      return fleetStateJson(state);
    },
  );

  api.post<{ Params: { fleet: string }; Body: { version: number } }>(
    "/fleets/:fleet/promote",
    {
      config: { role: "admin" },
      schema: {
        tags: ["fleets"],
        summary:
          "Make a version the fleet's stable version at once, ending any rollout in progress (the emergency path)",
        params: fleetParams,
        body: {
          type: "object",
          required: ["version"],
          additionalProperties: false,
          properties: { version },
        },
        response: errorResponses,
      },
    },
    async (req) => {
      const { fleet } = req.params;
      try {
        const result = await store.promoteStable(fleet, req.body.version, actor(req));
        return { ...fleetStateJson(result.state), changed: result.status === "changed" };
      } catch (error) {
        if (!(error instanceof StoreError)) throw error;
        const code = PROMOTE_ERRORS[error.code];
        throw code === undefined ? error : new ApiError(code, error.message);
      }
    },
  );
}

/** Absent versions and rollout are null, as before a fleet's first bundle (generation 0). */
export function fleetStateJson(state: FleetState) {
  return {
    fleet: state.fleet,
    stable_version: state.stableVersion,
    candidate_version: state.candidateVersion,
    rollout_id: state.rolloutId,
    candidate_percent: state.candidatePercent,
    generation: state.generation,
    updated_at: state.updatedAt,
  };
}
