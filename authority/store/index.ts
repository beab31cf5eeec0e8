/** The authority's store: two dialects behind one Database, migrations, and AuthorityStore. */
export {
  type AgentFilter,
  DEFAULT_AGENT_STALE_AFTER_MS,
  type FleetStatus,
  type VersionCounts,
} from "./agent-status.js";
export { GENESIS_HASH } from "./audit-chain.js";
export {
  type Database,
  type DatabaseOptions,
  type Dialect,
  IN_MEMORY,
  migrateToLatest,
  openDatabase,
} from "./database.js";
export { STORE_ERROR_CODES, StoreError, type StoreErrorCode } from "./errors.js";
export {
  FLEET_STATE_CHANNEL,
  type FleetStateChange,
  type FleetStateChangedEvent,
  type FleetStateFields,
  type FleetStateResult,
} from "./fleet-state.js";
export type { HealthSummary } from "./health-summary.js";
export {
  ROLLOUT_CHANNEL,
  type RolloutChangedEvent,
  type RolloutEvent,
  type RolloutFilter,
  RolloutStore,
  type StoredRollout,
} from "./rollout-store.js";
export type {
  AgentNack,
  AgentReport,
  AgentRow,
  AgentState,
  AuditRow,
  BundleRow,
  BundleSummary,
  Fleet,
  FleetState,
  HealthSampleRow,
  LatencyHistogramRow,
  NackError,
  SigningKeyRow,
  SigningKeyStatus,
  TokenRole,
  TokenRow,
} from "./rows.js";
export {
  type AuditFilter,
  type AuditInput,
  type AuditVerification,
  AuthorityStore,
  type AuthorityStoreOptions,
  BUNDLE_CHANNEL,
  type BuiltBundle,
  type BundleBuilder,
  type BundleCreatedEvent,
  type HealthSampleFilter,
  type SubmitResult,
} from "./store.js";
export type { Tables } from "./tables.js";
