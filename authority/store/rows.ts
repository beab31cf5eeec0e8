/** What the store hands out: camelCase records, numbers as numbers, whatever the driver returned. */
import type { Selectable } from "kysely";
import type { ChainedEntry } from "./audit-chain.js";
import type {
  AgentsTable,
  ApiTokensTable,
  AuditLogTable,
  BundlesTable,
  FleetStatesTable,
  FleetsTable,
  HealthSamplesTable,
  SigningKeyStatus,
  SigningKeysTable,
  TokenRole,
} from "./tables.js";

export type { SigningKeyStatus, TokenRole };

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

/**
 * An agent as its distributor last reported it. `state` is "pending", "acked", "nacked",
 * "unknown", or "disconnected" once its stream closed.
 */
export interface AgentRow {
  readonly id: string;
  readonly fleet: string;
  readonly region: string;
  /** The version it serves; null for none. */
  readonly version: number | null;
  readonly state: string;
  readonly lastSeen: Date;
}

/** The merged traffic of one (fleet, version, region) over the window starting at `windowStart`. */
export interface HealthSampleRow {
  readonly fleet: string;
  readonly version: number;
  readonly region: string;
  readonly windowStart: Date;
  readonly requests: number;
  readonly errors5xx: number;
  /** Counts per latency bucket, the overflow bucket last. */
  readonly latencyBuckets: readonly number[];
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

export function toAgentRow(row: Selectable<AgentsTable>): AgentRow {
  return {
    id: row.id,
    fleet: row.fleet,
    region: row.region,
    version: row.version,
    state: row.state,
    lastSeen: row.last_seen,
  };
}

export function toHealthSampleRow(row: Selectable<HealthSamplesTable>): HealthSampleRow {
  return {
    fleet: row.fleet,
    version: row.version,
    region: row.region,
    windowStart: row.window_start,
    requests: Number(row.requests),
    errors5xx: Number(row.errors_5xx),
    latencyBuckets: row.latency_buckets,
  };
}
