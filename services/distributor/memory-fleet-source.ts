/**
 * A FleetSource held in memory: what the disk cache serves from, and what tests feed by hand.
 * It trusts what it is given; verification happens before (DiskCache.putBundle).
 */
import type { Bundle, FleetState } from "../../proto/coherent/v1/authority.js";
import type { FleetSource } from "./fleet-source.js";

export class MemoryFleetSource implements FleetSource {
  readonly #states = new Map<string, FleetState>();
  readonly #bundles = new Map<string, Map<number, Bundle>>();
  readonly #listeners = new Set<(fleet: string) => void>();

  state(fleet: string): FleetState | undefined {
    return this.#states.get(fleet);
  }

  bundle(fleet: string, version: number): Bundle | undefined {
    return this.#bundles.get(fleet)?.get(version);
  }

  /** Every fleet with a state or a bundle. */
  fleets(): string[] {
    return [...new Set([...this.#states.keys(), ...this.#bundles.keys()])];
  }

  /** The highest bundle version held for the fleet; 0 = none. */
  latestBundleVersion(fleet: string): number {
    let latest = 0;
    for (const version of this.#bundles.get(fleet)?.keys() ?? []) latest = Math.max(latest, version);
    return latest;
  }

  /**
   * False, and nothing changes, when the state's generation is not above the held one: a late
   * message from another authority replica never rolls a fleet back.
   */
  putState(state: FleetState): boolean {
    const held = this.#states.get(state.fleet);
    if (held !== undefined && state.generation <= held.generation) return false;
    this.#states.set(state.fleet, state);
    this.#notify(state.fleet);
    return true;
  }

  putBundle(bundle: Bundle): void {
    let versions = this.#bundles.get(bundle.fleet);
    if (versions === undefined) {
      versions = new Map();
      this.#bundles.set(bundle.fleet, versions);
    }
    versions.set(bundle.version, bundle);
    this.#notify(bundle.fleet);
  }

  onChange(listener: (fleet: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #notify(fleet: string): void {
    for (const listener of this.#listeners) listener(fleet);
  }
}
