/** /fleets: admins create fleets, everyone with a token reads them. */
import type { FastifyInstance } from "fastify";
import { ApiError } from "../errors.js";
import { type AuthorityStore, type Fleet, StoreError } from "../store/index.js";
import { actor } from "./auth.js";
import { errorResponses, FLEET_NAME, fleetParams } from "./schemas.js";

export function registerFleetRoutes(api: FastifyInstance, store: AuthorityStore): void {
  api.post<{ Body: { name: string; description?: string } }>(
    "/fleets",
    {
      config: { role: "admin" },
      schema: {
        tags: ["fleets"],
        summary: "Create a fleet",
        body: {
          type: "object",
          required: ["name"],
          additionalProperties: false,
          properties: {
            name: { type: "string", pattern: FLEET_NAME },
            description: { type: "string", maxLength: 1000 },
          },
        },
        response: errorResponses,
      },
    },
    async (req, reply) => {
      const by = actor(req);
      let fleet: Fleet;
      try {
        fleet = await store.createFleet(req.body);
      } catch (error) {
        if (error instanceof StoreError && error.code === "fleet_exists") {
          throw new ApiError("fleet_exists", `fleet "${req.body.name}" exists already`);
        }
        throw error;
      }
      await store.appendAudit({
        actor: by,
        action: "fleet.create",
        target: `fleet:${fleet.name}`,
        details: fleet.description ? { description: fleet.description } : {},
      });
      return reply.code(201).send(fleetJson(fleet));
    },
  );

  api.get(
    "/fleets",
    {
      config: { role: "viewer" },
      schema: { tags: ["fleets"], summary: "List fleets", response: errorResponses },
    },
    async () => ({ fleets: (await store.listFleets()).map(fleetJson) }),
  );

  api.get<{ Params: { fleet: string } }>(
    "/fleets/:fleet",
    {
      config: { role: "viewer" },
      schema: { tags: ["fleets"], summary: "Show a fleet", params: fleetParams, response: errorResponses },
    },
    async (req) => {
      const fleet = await store.getFleet(req.params.fleet);
      if (!fleet) throw new ApiError("unknown_fleet", `no fleet "${req.params.fleet}"`);
      return fleetJson(fleet);
    },
  );
}

function fleetJson(fleet: Fleet) {
  return { name: fleet.name, description: fleet.description, created_at: fleet.createdAt };
}
