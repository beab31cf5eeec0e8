/**
 * /agents and /fleets/:fleet/status: which agents run what, as their distributors last
 * reported, with the ones not heard of lately flagged stale. Viewers read both.
 */
import type { FastifyInstance } from "fastify";
import { ApiError } from "../errors.js";
import type { AgentFilter, AgentRow, AgentState, AuthorityStore, FleetStatus } from "../store/index.js";
import { fleetStateJson } from "./fleet-state-routes.js";
import { agentSchema, errorResponses, FLEET_NAME, fleetParams, fleetStatusSchema } from "./schemas.js";

interface AgentQuery {
  fleet?: string;
  region?: string;
  state?: AgentState;
  stale?: boolean;
}

export function registerAgentRoutes(api: FastifyInstance, store: AuthorityStore): void {
  api.get<{ Querystring: AgentQuery }>(
    "/agents",
    {
      config: { role: "viewer" },
      schema: {
        tags: ["agents"],
        summary: "List agents with the version they run and where they stand, by fleet, region and id",
        querystring: {
          type: "object",
          properties: {
            fleet: { type: "string", pattern: FLEET_NAME },
            region: { type: "string", minLength: 1 },
            state: { type: "string", enum: ["pending", "acked", "nacked", "unknown"] },
            stale: { type: "boolean", description: "true: only stale agents; false: only live ones" },
          },
        },
        response: {
          200: {
            type: "object",
            required: ["agents"],
            properties: { agents: { type: "array", items: agentSchema } },
          },
          ...errorResponses,
        },
      },
    },
    async (req) => {
      const filter: { -readonly [K in keyof AgentFilter]: AgentFilter[K] } = {};
      const { fleet, region, state, stale } = req.query;
      if (fleet !== undefined) filter.fleet = fleet;
      if (region !== undefined) filter.region = region;
      if (state !== undefined) filter.state = state;
      if (stale !== undefined) filter.stale = stale;
      return { agents: (await store.listAgents(filter)).map(agentJson) };
    },
  );

  api.get<{ Params: { fleet: string } }>(
    "/fleets/:fleet/status",
    {
      config: { role: "viewer" },
      schema: {
        tags: ["fleets"],
        summary: "A fleet's versions and how many of its agents run, await or refused each",
        params: fleetParams,
        response: { 200: fleetStatusSchema, ...errorResponses },
      },
    },
    async (req) => {
      const status = await store.fleetStatus(req.params.fleet);
      if (!status) throw new ApiError("unknown_fleet", `no fleet "${req.params.fleet}"`);
      return fleetStatusJson(status);
    },
  );
}

function agentJson(agent: AgentRow) {
  return {
    id: agent.id,
    fleet: agent.fleet,
    region: agent.region,
    distributor: agent.distributorId,
    running_version: agent.runningVersion,
    desired_version: agent.desiredVersion,
    state: agent.state,
    nack: agent.nack,
    last_seen: agent.lastSeen,
    stale: agent.stale,
    connected: agent.connected,
    labels: agent.labels,
  };
}

function fleetStatusJson(status: FleetStatus) {
  return {
    ...fleetStateJson(status.state),
    agents: {
      total: status.agents.total,
      stale: status.agents.stale,
      by_version: status.agents.byVersion,
    },
  };
}
