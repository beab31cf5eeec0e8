/**
 * The one mutable pointer of the data plane: the current snapshot. Requests read it once;
 * a swap replaces it in one assignment, so a request sees the old snapshot or the new one,
 * never a mix. The configs applied are kept in a ConfigHistory, for rollback.
 */
import type { SnapshotSource } from "../proxy/engine.js";
import { ConfigHistory } from "./config-history.js";
import type { Snapshot } from "./snapshot.js";

export class SnapshotStore implements SnapshotSource {
  #current: Snapshot | undefined;
  readonly history = new ConfigHistory();

  get current(): Snapshot | undefined {
    return this.#current;
  }

  swap(snapshot: Snapshot, source: string): void {
    this.#current = snapshot;
    this.history.record(snapshot.sequence, snapshot.contentHash, snapshot.config, source);
  }
}
