/**
 * The one mutable pointer of the data plane: the current snapshot. Requests read it once;
 * a swap replaces it in one assignment, so a request sees the old snapshot or the new one,
 * never a mix. The last configs are kept by version, for rollback.
 */
import type { DynamicConfig } from "../../services/config/index.js";
import type { SnapshotSource } from "../proxy/engine.js";
import type { Snapshot } from "./snapshot.js";

export const HISTORY_SIZE = 20;

export interface HistoryEntry {
  readonly version: string;
  readonly contentHash: string;
  readonly config: DynamicConfig;
  readonly appliedAt: string;
  readonly source: string;
}

export class SnapshotStore implements SnapshotSource {
  #current: Snapshot | undefined;
  #sequence = 0;
  readonly #history: HistoryEntry[] = [];

  get current(): Snapshot | undefined {
    return this.#current;
  }

  nextSequence(): number {
    return ++this.#sequence;
  }

  swap(snapshot: Snapshot, source: string): void {
    this.#current = snapshot;
    this.#history.push({
      version: snapshot.version,
      contentHash: snapshot.contentHash,
      config: snapshot.config,
      appliedAt: new Date().toISOString(),
      source,
    });
    if (this.#history.length > HISTORY_SIZE) this.#history.shift();
  }

  find(version: string): HistoryEntry | undefined {
    return this.#history.find((entry) => entry.version === version);
  }

  history(): readonly HistoryEntry[] {
    return this.#history;
  }
}
