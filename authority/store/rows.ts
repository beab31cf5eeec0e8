/** What the store hands out: camelCase records, numbers as numbers, whatever the driver returned. */
import type { Selectable } from "kysely";
import type { ChainedEntry } from "./audit-chain.js";
import type {
  AgentState,
  AgentsTable,
  ApiTokensTable,
  AuditLogTable,
  BundlesTable,
  FleetStatesTable,
  FleetsTable,
  HealthSamplesTable,
  NackError,
  SigningKeyStatus,
  SigningKeysTable,
  TokenRole,
} from "./tables.js";

export type { AgentState, NackError, SigningKeyStatus, TokenRole };

export interface Fleet {
  readonly name: string;
  readonly description: string | null;
  readonly createdAt: Date;
}

/**
 * Which versions a fleet runs (proto FleetState). Before the fleet's first bundle there is
 * none: no stable version, generation 0.
 */
export interface FleetState {
  readonly fleet: string;
  /** What every agent outside the candidate cohort runs. */
  readonly stableVersion: number | null;
  /** What the rollout in progress tests; null when there is none. */
  readonly candidateVersion: number | null;
  /** Salts the cohort buckets; set exactly when candidateVersion is. */
  readonly rolloutId: string | null;
  /** 0..100: the share of the fleet's agents on the candidate; 0 without one. */
  readonly candidatePercent: number;
  /** Goes up by one with every change; distributors ignore a state not above the one they hold. */
  readonly generation: number;
  readonly updatedAt: Date | null;
}

/** A bundle without its content: what a listing shows. */
export interface BundleSummary {
  readonly fleet: string;
  readonly version: number;
  readonly parent: number | null;
  readonly contentSha256: string;
  readonly createdBy: string;
  readonly createdAt: Date;
  readonly message: string | null;
  readonly rollbackOf: number | null;
}

export interface BundleRow extends BundleSummary {
  /** The signed bundle, as agents receive it. */
  readonly jws: string;
  /** The canonical config the JWS carries. */
  readonly config: unknown;
}

export interface AuditRow extends ChainedEntry {
  readonly hash: string;
}

/** A token's record; the hash stays in the database. */
export interface TokenRow {
  readonly id: string;
  readonly name: string;
  readonly role: TokenRole;
  readonly createdBy: string;
  readonly createdAt: Date;
  readonly revokedAt: Date | null;
}

/** What an agent's most recent NACK refused, and why. */
export interface AgentNack {
  readonly version: number;
  /** Every error the agent reported, each with its config path. */
  readonly errors: readonly NackError[];
}

/** An agent as a distributor reports it (proto AgentStatus); the store keeps the newest report. */
export interface AgentReport {
  readonly id: string;
  readonly fleet: string;
  readonly region: string;
  /** The distributor holding its stream; null for agents stored before this was kept. */
  readonly distributorId: string | null;
  /** The version it serves; null for none. */
  readonly runningVersion: number | null;
  /** The version its distributor wants it to run; null while none is known. */
  readonly desiredVersion: number | null;
  /** Progress towards desiredVersion. */
  readonly state: AgentState;
  /** Kept after the state moves on, so an operator still sees why an earlier version failed. */
  readonly nack: AgentNack | null;
  readonly labels: Readonly<Record<string, string>>;
  /** Whether its stream to the distributor was open at the report. */
  readonly connected: boolean;
  /** When its distributor last heard from it; the newer report of an agent that moved wins. */
  readonly lastSeen: Date;
}

export interface AgentRow extends AgentReport {
  /** When the authority stored the report. */
  readonly updatedAt: Date;
  /** Not connected, or neither it nor its distributor heard of within the stale limit, as of the read. */
  readonly stale: boolean;
}

/** Latency counts per bucket with the bounds they were counted with (proto LatencyHistogram). */
export interface LatencyHistogramRow {
  /** Inclusive upper bounds in ms, ascending; empty when the sample carried no histogram. */
  readonly boundsMs: readonly number[];
  /** One more than boundsMs: the overflow bucket last. */
  readonly counts: readonly number[];
  readonly sumMs: number;
}

/**
 * The merged traffic of one (fleet, version, region) over one window, as one distributor
 * reported it; distributors of a region each report their own agents.
 */
export interface HealthSampleRow {
  readonly fleet: string;
  readonly version: number;
  readonly region: string;
  /** "" for samples stored before distributors were recorded. */
  readonly distributorId: string;
  /** Inclusive. */
  readonly windowStart: Date;
  /** Exclusive. */
  readonly windowEnd: Date;
  readonly requests: number;
  readonly errors5xx: number;
  /** How many agents' reports were merged into it. */
  readonly agents: number;
  readonly latency: LatencyHistogramRow;
}

export interface SigningKeyRow {
  readonly kid: string;
  readonly publicJwk: unknown;
  readonly status: SigningKeyStatus;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export function toFleet(row: Selectable<FleetsTable>): Fleet {
  return { name: row.name, description: row.description, createdAt: row.created_at };
}

export function toFleetState(row: Selectable<FleetStatesTable>): FleetState {
  return {
    fleet: row.fleet,
    stableVersion: row.stable_version,
    candidateVersion: row.candidate_version,
    rolloutId: row.rollout_id,
    candidatePercent: row.candidate_percent,
    generation: Number(row.generation),
    updatedAt: row.updated_at,
  };
}

export const BUNDLE_SUMMARY_COLUMNS = [
  "fleet",
  "version",
  "parent",
  "content_sha256",
  "created_by",
  "created_at",
  "message",
  "rollback_of",
] as const;

type SummaryColumns = Pick<Selectable<BundlesTable>, (typeof BUNDLE_SUMMARY_COLUMNS)[number]>;

export function toBundleSummary(row: SummaryColumns): BundleSummary {
  return {
    fleet: row.fleet,
    version: row.version,
    parent: row.parent,
    contentSha256: row.content_sha256,
    createdBy: row.created_by,
    createdAt: row.created_at,
    message: row.message,
    rollbackOf: row.rollback_of,
  };
}

export function toBundleRow(row: Selectable<BundlesTable>): BundleRow {
  return { ...toBundleSummary(row), jws: row.jws, config: row.config };
}

export function toAuditRow(row: Selectable<AuditLogTable>): AuditRow {
  return {
    seq: Number(row.seq),
    at: row.at,
    actor: row.actor,
    action: row.action,
    target: row.target,
    details: row.details,
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}

export const TOKEN_COLUMNS = ["id", "name", "role", "created_by", "created_at", "revoked_at"] as const;

export function toTokenRow(row: Pick<Selectable<ApiTokensTable>, (typeof TOKEN_COLUMNS)[number]>): TokenRow {
  return {
    id: row.id,
    name: row.name,
    role: row.role,
    createdBy: row.created_by,
    createdAt: row.created_at,
    revokedAt: row.revoked_at,
  };
}

export function toSigningKeyRow(row: Selectable<SigningKeysTable>): SigningKeyRow {
  return {
    kid: row.kid,
    publicJwk: row.public_jwk,
    status: row.status,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export function toAgentRow(row: Selectable<AgentsTable> & { readonly stale: boolean }): AgentRow {
  return {
    id: row.id,
    fleet: row.fleet,
    region: row.region,
    distributorId: row.distributor_id,
    runningVersion: row.running_version,
    desiredVersion: row.desired_version,
    state: row.state,
    nack: row.nack_version === null ? null : { version: row.nack_version, errors: row.nack_errors },
    labels: row.labels,
    connected: row.connected,
    lastSeen: row.last_seen,
    updatedAt: row.updated_at,
    stale: row.stale,
  };
}

export function toHealthSampleRow(row: Selectable<HealthSamplesTable>): HealthSampleRow {
  return {
    fleet: row.fleet,
    version: row.version,
    region: row.region,
    distributorId: row.distributor_id,
    windowStart: row.window_start,
    windowEnd: row.window_end,
    requests: Number(row.requests),
    errors5xx: Number(row.errors_5xx),
    agents: row.agents,
    latency: { boundsMs: row.latency_bounds_ms, counts: row.latency_buckets, sumMs: row.latency_sum_ms },
  };
}
