/**
 * Every migration, by name, in the order they apply. An explicit import map rather than a
 * directory scan, so the same code runs from the TypeScript sources (tsx, vitest) and from the
 * compiled dist/. A new migration is a new file here and one more line below; applied ones
 * never change.
 */
import type { Migration } from "kysely";
import * as initial from "./0001_initial.js";
import * as fleetStates from "./0002_fleet_states.js";
import * as agentStatus from "./0003_agent_status.js";
import * as rollouts from "./0004_rollouts.js";

export const MIGRATIONS: Readonly<Record<string, Migration>> = {
  "0001_initial": initial,
  "0002_fleet_states": fleetStates,
  "0003_agent_status": agentStatus,
  "0004_rollouts": rollouts,
};
