/**
 * Rollouts over the API (rollout-controller/README.md): operators start one and steer it,
 * viewers watch. Commands run the state machine here, on whichever replica takes them, and
 * save with compare-and-set; the controller (the leader) publishes the fleet state they call
 * for on its next tick.
 */
import { randomBytes } from "node:crypto";
import type { FastifyInstance } from "fastify";
import { RolloutError } from "../../rollout-controller/errors.js";
import { DEFAULT_PLAN_INPUT, type Plan, parsePlan } from "../../rollout-controller/plan.js";
import { type Command, command, newRollout } from "../../rollout-controller/state-machine.js";
import { ApiError } from "../errors.js";
import { type AuthorityStore, type StoredRollout, StoreError } from "../store/index.js";
import { actor } from "./auth.js";
import { planJson, rolloutJson, rolloutStatusJson } from "./rollout-json.js";
import { errorResponses, FLEET_NAME, fleetParams, version } from "./schemas.js";

const rolloutParams = {
  type: "object",
  required: ["id"],
  properties: { id: { type: "string", minLength: 1, maxLength: 200 } },
} as const;

const COMMANDS = ["pause", "resume", "abort", "rollback", "promote"] as const;

/** How often a command re-reads a rollout the controller changed under it. */
const COMMAND_ATTEMPTS = 5;

export interface RolloutRouteOptions {
  readonly store: AuthorityStore;
  readonly now?: () => number;
}

export function registerRolloutRoutes(api: FastifyInstance, options: RolloutRouteOptions): void {
  const { store } = options;
  const now = options.now ?? Date.now;

  api.post<{ Params: { fleet: string }; Body: { version: number; plan?: unknown } }>(
    "/fleets/:fleet/rollouts",
    {
      config: { role: "operator" },
      schema: {
        tags: ["rollouts"],
        summary: "Start a staged rollout of a version, with the fleet's plan or the one given",
        params: fleetParams,
        body: {
          type: "object",
          required: ["version"],
          additionalProperties: false,
          properties: { version, plan: { type: "object", description: "A rollout: block" } },
        },
        response: errorResponses,
      },
    },
    async (req, reply) => {
      const { fleet } = req.params;
      const plan = req.body.plan === undefined ? await fleetPlan(store, fleet) : checkedPlan(req.body.plan);
      const state = await store.getFleetState(fleet);
      if (!state) throw new ApiError("unknown_fleet", `no fleet "${fleet}"`);
      const candidate = req.body.version;
      if (!(await store.getBundle(fleet, candidate)))
        throw new ApiError("unknown_version", `fleet "${fleet}" has no version ${candidate}`);
      const stable = state.stableVersion ?? 0;
      if (candidate <= stable)
        throw new ApiError("not_newer", `version ${candidate} is not above the stable version ${stable}`);
      const id = `r-${fleet}-${candidate}-${randomBytes(3).toString("hex")}`;
      const rollout = newRollout({
        id,
        fleet,
        candidateVersion: candidate,
        stableVersion: stable,
        plan,
        now: now(),
      });
      try {
        const created = await store.rollouts.create(rollout, actor(req));
        reply.code(201);
        return rolloutJson(created, now());
      } catch (error) {
        if (error instanceof StoreError && error.code === "rollout_active")
          throw new ApiError("rollout_active", error.message);
        throw error;
      }
    },
  );

  api.get<{ Querystring: { fleet?: string; live?: boolean; limit?: number } }>(
    "/rollouts",
    {
      config: { role: "viewer" },
      schema: {
        tags: ["rollouts"],
        summary: "Rollouts, newest first",
        querystring: {
          type: "object",
          properties: {
            fleet: { type: "string", pattern: FLEET_NAME },
            live: { type: "boolean", description: "Only pending, running and paused ones" },
            limit: { type: "integer", minimum: 1, maximum: 500 },
          },
        },
        response: errorResponses,
      },
    },
    async (req) => {
      const rollouts = await store.rollouts.list({
        ...(req.query.fleet === undefined ? {} : { fleet: req.query.fleet }),
        ...(req.query.live === undefined ? {} : { live: req.query.live }),
        limit: req.query.limit ?? 50,
      });
      return { rollouts: rollouts.map((r) => rolloutJson(r, now())) };
    },
  );

  api.get<{ Params: { id: string } }>(
    "/rollouts/:id",
    {
      config: { role: "viewer" },
      schema: {
        tags: ["rollouts"],
        summary: "A rollout with its checks, traffic, agents per version and events, as of now",
        params: rolloutParams,
        response: errorResponses,
      },
    },
    async (req) => rolloutStatusJson(store, await find(store, req.params.id), now()),
  );

  for (const name of COMMANDS) {
    api.post<{ Params: { id: string }; Body: { full?: boolean } | undefined }>(
      `/rollouts/:id/${name}`,
      {
        config: { role: "operator" },
        schema: {
          tags: ["rollouts"],
          summary: COMMAND_SUMMARIES[name],
          params: rolloutParams,
          ...(name === "promote"
            ? {
                body: {
                  type: ["object", "null"],
                  additionalProperties: false,
                  properties: { full: { type: "boolean", description: "Straight to 100% and stable" } },
                },
              }
            : {}),
          response: errorResponses,
        },
      },
      async (req) => {
        const who = actor(req);
        for (let attempt = 1; ; attempt++) {
          const rollout = await find(store, req.params.id);
          const cmd = await commandFor(store, name, rollout, req.body?.full === true);
          try {
            const saved = await store.rollouts.save(rollout, command(rollout, cmd, who, now()), who);
            return rolloutJson(saved, now());
          } catch (error) {
            if (error instanceof RolloutError) throw new ApiError("invalid_transition", error.message);
            if (error instanceof StoreError && error.code === "conflict" && attempt < COMMAND_ATTEMPTS)
              continue;
            if (error instanceof StoreError && error.code === "conflict")
              throw new ApiError("conflict", error.message);
            throw error;
          }
        }
      },
    );
  }

  api.get<{ Params: { fleet: string } }>(
    "/fleets/:fleet/plan",
    {
      config: { role: "viewer" },
      schema: {
        tags: ["rollouts"],
        summary: "The plan a rollout of this fleet uses when it is given none",
        params: fleetParams,
        response: errorResponses,
      },
    },
    async (req) => {
      const own = await storeCall(() => store.rollouts.defaultPlan(req.params.fleet));
      return { plan: planJson(own ?? builtInPlan()), source: own ? "fleet" : "default" };
    },
  );

  api.put<{ Params: { fleet: string }; Body: { plan: unknown } }>(
    "/fleets/:fleet/plan",
    {
      config: { role: "admin" },
      schema: {
        tags: ["rollouts"],
        summary: "Set the fleet's default rollout plan (a rollout: block)",
        params: fleetParams,
        body: {
          type: "object",
          required: ["plan"],
          additionalProperties: false,
          properties: { plan: { type: "object" } },
        },
        response: errorResponses,
      },
    },
    async (req) => {
      const plan = checkedPlan(req.body.plan);
      await storeCall(() => store.rollouts.setDefaultPlan(req.params.fleet, plan, actor(req)));
      return { plan: planJson(plan) };
    },
  );
}

const COMMAND_SUMMARIES: Record<(typeof COMMANDS)[number], string> = {
  pause: "Stop a running rollout where it is; bake time stops too",
  resume: "Run a paused rollout again; NACKs seen so far are accepted",
  abort: "End a rollout and bring its fleet back to the stable content",
  rollback: "Bring the fleet back to the stable content the rollout started from, also after it succeeded",
  promote: "Skip the rest of the stage's bake (or, with full, every stage) without waiting for the gates",
};

async function commandFor(
  store: AuthorityStore,
  name: (typeof COMMANDS)[number],
  rollout: StoredRollout,
  full: boolean,
): Promise<Command> {
  switch (name) {
    case "promote":
      return { kind: "promote", full };
    case "resume": {
      // The NACKs the operator resumes past: those of the candidate as of now.
      const agents = await store.listAgents({ fleet: rollout.fleet });
      return {
        kind: "resume",
        nacks: agents.filter((a) => a.nack?.version === rollout.candidateVersion).length,
      };
    }
    default:
      return { kind: name };
  }
}

async function find(store: AuthorityStore, id: string): Promise<StoredRollout> {
  const rollout = await store.rollouts.get(id);
  if (!rollout) throw new ApiError("unknown_rollout", `no rollout "${id}"`);
  return rollout;
}

function checkedPlan(data: unknown): Plan {
  const parsed = parsePlan(data);
  if (!parsed.ok) {
    throw new ApiError("invalid_plan", "the rollout plan is invalid", {
      errors: parsed.errors.map((e) => ({ path: e.path, message: e.message, code: e.code })),
    });
  }
  return parsed.value;
}

function builtInPlan(): Plan {
  return checkedPlan(DEFAULT_PLAN_INPUT);
}

async function fleetPlan(store: AuthorityStore, fleet: string): Promise<Plan> {
  return (await storeCall(() => store.rollouts.defaultPlan(fleet))) ?? builtInPlan();
}

/** The store's unknown_fleet as the API's. */
async function storeCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof StoreError && error.code === "unknown_fleet")
      throw new ApiError("unknown_fleet", error.message);
    throw error;
  }
}
