/**
 * The database as kysely sees it: one interface per table of migrations/. Column types say what
 * a driver hands back (pg returns int8 as a string, PGlite as a number) and what an insert
 * takes (jsonb is written as JSON text, which both drivers pass through unchanged).
 */
import type { ColumnType, Generated } from "kysely";

export type TokenRole = "viewer" | "operator" | "admin";
/** Where an agent stands relative to the version its distributor wants it to run (proto AgentState). */
export type AgentState = "pending" | "acked" | "nacked" | "unknown";

/** One reason an agent refused a bundle (proto ConfigError); path "" for the bundle as a whole. */
export interface NackError {
  readonly path: string;
  readonly message: string;
  readonly code: string;
}
export type SigningKeyStatus = "active" | "trusted" | "retired";

type Timestamp = ColumnType<Date, Date, Date>;
type Int8 = ColumnType<string | number, number, number>;
/** jsonb: read as the parsed value, written as JSON text. */
type Json<T = unknown> = ColumnType<T, string, string>;

export interface FleetsTable {
  name: string;
  description: string | null;
  created_at: Timestamp;
  /** The plan `rollout start` uses when given none (migrations/0004_rollouts.ts); null: the built-in one. */
  default_plan: ColumnType<unknown, string | undefined, string | null>;
}

export interface BundlesTable {
  fleet: string;
  version: number;
  parent: number | null;
  content_sha256: string;
  jws: string;
  config: Json;
  created_by: string;
  created_at: Timestamp;
  message: string | null;
  rollback_of: number | null;
}

/** A fleet's row exists once it has a stable version; see migrations/0002_fleet_states.ts. */
export interface FleetStatesTable {
  fleet: string;
  stable_version: number;
  candidate_version: number | null;
  rollout_id: string | null;
  candidate_percent: number;
  generation: Int8;
  updated_at: Timestamp;
}

/** See migrations/0004_rollouts.ts and rollout-controller/state-machine.ts. */
export interface RolloutsTable {
  id: string;
  fleet: string;
  candidate_version: number;
  stable_version: number | null;
  phase: string;
  stage: number;
  plan: Json;
  created_by: string;
  created_at: Timestamp;
  updated_at: Timestamp;
  finished_at: Timestamp | null;
  stage_started_at: Timestamp;
  baked_ms: Int8;
  running_since: Timestamp;
  accepted_nacks: number;
  reason: Json | null;
  applied: boolean;
  restore_version: number | null;
  revision: number;
}

export interface RolloutEventsTable {
  id: Generated<Int8>;
  rollout_id: string;
  at: Timestamp;
  from_phase: string;
  to_phase: string;
  from_stage: number;
  to_stage: number;
  reason: Json;
  actor: string;
}

export interface ControllerLeaseTable {
  id: number;
  epoch: Int8;
  holder: string;
  acquired_at: Timestamp;
}

/** See migrations/0003_agent_status.ts. */
export interface AgentsTable {
  id: string;
  fleet: string;
  region: string;
  /** Null for rows stored before distributors were recorded. */
  distributor_id: string | null;
  running_version: number | null;
  desired_version: number | null;
  state: AgentState;
  nack_version: number | null;
  nack_errors: Json<NackError[]>;
  labels: Json<Record<string, string>>;
  connected: boolean;
  last_seen: Timestamp;
  updated_at: Timestamp;
}

/** When the authority last heard from each distributor on its feed. */
export interface DistributorsTable {
  id: string;
  region: string;
  last_heard: Timestamp;
}

export interface HealthSamplesTable {
  fleet: string;
  version: number;
  region: string;
  distributor_id: string;
  window_start: Timestamp;
  window_end: Timestamp;
  requests: Int8;
  errors_5xx: Int8;
  agents: number;
  latency_bounds_ms: Json<number[]>;
  latency_buckets: Json<number[]>;
  latency_sum_ms: number;
}

export interface AuditLogTable {
  seq: Int8;
  at: Timestamp;
  actor: string;
  action: string;
  target: string;
  details: Json<Record<string, unknown>>;
  prev_hash: string;
  hash: string;
}

export interface ApiTokensTable {
  id: string;
  name: string;
  role: TokenRole;
  token_hash: string;
  created_by: string;
  created_at: Timestamp;
  revoked_at: Timestamp | null;
}

export interface SigningKeysTable {
  kid: string;
  public_jwk: Json;
  status: SigningKeyStatus;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface Tables {
  fleets: FleetsTable;
  bundles: BundlesTable;
  fleet_states: FleetStatesTable;
  rollouts: RolloutsTable;
  rollout_events: RolloutEventsTable;
  controller_lease: ControllerLeaseTable;
  agents: AgentsTable;
  distributors: DistributorsTable;
  health_samples: HealthSamplesTable;
  audit_log: AuditLogTable;
  api_tokens: ApiTokensTable;
  signing_keys: SigningKeysTable;
}
