/**
 * What the control side of a process (config file, admin API, signals) drives: one agent in
 * this process, or the workers of a cluster through their primary. Both number versions the
 * same way and keep the same history, so the admin API cannot tell them apart.
 */
import type { ConfigChange, ConfigIssue, DynamicConfig } from "../../services/config/index.js";
import type { HealthRecorder } from "../control/health-recorder.js";
import type { BoundListener } from "../listener/listener-manager.js";
import type { HistoryEntry } from "../snapshot/config-history.js";
import type { RuntimeState } from "./runtime-state.js";

export type ApplyResult =
  | { readonly status: "applied"; readonly version: string; readonly changes: readonly ConfigChange[] }
  | { readonly status: "unchanged"; readonly version: string }
  | { readonly status: "rejected"; readonly errors: readonly ConfigIssue[] };

export interface ConfigTarget {
  /** True once a config serves and until shutdown begins. */
  readonly ready: boolean;
  /** The config serving now. */
  current(): HistoryEntry | undefined;
  /**
   * Applies a validated (canonical) config; changes run one at a time, in order.
   * `bundleVersion`: the signed bundle it came from, which health reports are counted under.
   */
  applyValidated(config: DynamicConfig, source: string, bundleVersion?: number): Promise<ApplyResult>;
  /** Requests per bundle version, for the control plane's health reports (a cluster's: all workers'). */
  readonly health?: HealthRecorder;
  /** Re-applies an earlier version's config as a new version; undefined for an unknown one. */
  rollback(version: string): Promise<ApplyResult> | undefined;
  /** Counts a config refused before it reached the target (unreadable or invalid file). */
  recordRejected(): void;
  listeners(): Promise<BoundListener[]>;
  /** Pool health, breakers and canaries (merged over a cluster's workers). */
  runtimeState(): Promise<RuntimeState>;
  /** The Prometheus exposition of every process's metrics. */
  scrape(): Promise<{ contentType: string; body: string }>;
  /** The spec's graceful shutdown; resolves when the data plane has stopped. */
  shutdown(drainDelayMs: number, drainTimeoutMs: number): Promise<void>;
}
