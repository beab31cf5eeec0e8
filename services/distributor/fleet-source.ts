/**
 * What the distributor serves from and reports to. The AuthorityFeed client fills a source
 * (through the disk cache) and drains a sink; the agent-facing server only reads the one and
 * writes the other, so it runs the same with the authority gone.
 */
import type { AgentStatus, Bundle, FleetState, HealthSample } from "../../proto/coherent/v1/authority.js";

export interface FleetSource {
  /** The fleet's newest state; undefined until the authority (or the cache) gave one. */
  state(fleet: string): FleetState | undefined;
  /** A bundle that passed verification; undefined when it is not held (yet). */
  bundle(fleet: string, version: number): Bundle | undefined;
  /**
   * Called with the fleet's name after its state or one of its bundles changed, so waiting
   * agents get their push. Returns the unsubscribe function.
   */
  onChange(listener: (fleet: string) => void): () => void;
}

/** Where merged health and agent statuses go up; the AuthorityFeed client forwards them. */
export interface HealthSink {
  health(samples: readonly HealthSample[]): void;
  agentStatus(statuses: readonly AgentStatus[]): void;
}
