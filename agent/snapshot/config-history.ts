/**
 * The configs applied, newest last, with their versions: what rollback chooses from. A
 * version is `<sequence>-<first 12 hex of the content hash>`: ordered, and naming the content.
 * In a cluster the primary numbers versions and the workers take its numbers, so every
 * process reports the same version for the same config.
 */
import type { DynamicConfig } from "../../services/config/index.js";

export const HISTORY_SIZE = 20;

export interface HistoryEntry {
  readonly version: string;
  readonly sequence: number;
  readonly contentHash: string;
  readonly config: DynamicConfig;
  readonly appliedAt: string;
  readonly source: string;
}

export function versionOf(sequence: number, contentHash: string): string {
  return `${sequence}-${contentHash.slice(0, 12)}`;
}

export class ConfigHistory {
  #sequence = 0;
  readonly #entries: HistoryEntry[] = [];

  /** The sequence for the next config: one past the highest seen. */
  nextSequence(): number {
    return this.#sequence + 1;
  }

  record(sequence: number, contentHash: string, config: DynamicConfig, source: string): HistoryEntry {
    this.#sequence = Math.max(this.#sequence, sequence);
    const entry: HistoryEntry = {
      version: versionOf(sequence, contentHash),
      sequence,
      contentHash,
      config,
      appliedAt: new Date().toISOString(),
      source,
    };
    this.#entries.push(entry);
    if (this.#entries.length > HISTORY_SIZE) this.#entries.shift();
    return entry;
  }

  get latest(): HistoryEntry | undefined {
    return this.#entries[this.#entries.length - 1];
  }

  find(version: string): HistoryEntry | undefined {
    return this.#entries.find((entry) => entry.version === version);
  }
}
