/**
 * The distributor's disk cache (`--cache-dir`): every verified bundle and the newest state of
 * each fleet, loaded at start, so a restarted distributor serves its region before — or
 * without — reaching the authority. Layout: `bundles/fleet=<name>/<version>.jws` holds the
 * JWS as signed (its hints are re-read from the verified payload on load) and
 * `states/fleet=<name>.json` the FleetState. Writes are atomic (temporary file, fsync,
 * rename) and run one at a time, so a crash leaves the old file or the new, and a newer
 * state is never overwritten by an older one finishing late.
 */
import { randomBytes } from "node:crypto";
import { mkdir, open, readdir, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { type Bundle, FleetState, type KnownFleet } from "../../proto/coherent/v1/authority.js";
import { type Keyring, verifyBundleEnvelope } from "../bundle/index.js";
import { DistributorError, DistributorErrorCode } from "./errors.js";
import type { FleetSource } from "./fleet-source.js";
import { MemoryFleetSource } from "./memory-fleet-source.js";

export interface DiskCacheOptions {
  readonly dir: string;
  readonly keyring: Keyring;
  /** Told about each cached file that no longer verifies or parses; it is skipped, not deleted. */
  readonly onInvalid?: (file: string, error: unknown) => void;
}

const PREFIX = "fleet=";

export class DiskCache implements FleetSource {
  readonly #dir: string;
  readonly #keyring: Keyring;
  readonly #memory = new MemoryFleetSource();
  #writes: Promise<void> = Promise.resolve();

  private constructor(dir: string, keyring: Keyring) {
    this.#dir = dir;
    this.#keyring = keyring;
  }

  /** Creates the directory if needed and loads what it holds, verifying every bundle again. */
  static async open(options: DiskCacheOptions): Promise<DiskCache> {
    const cache = new DiskCache(options.dir, options.keyring);
    await mkdir(join(options.dir, "bundles"), { recursive: true });
    await mkdir(join(options.dir, "states"), { recursive: true });
    await cache.#load(options.onInvalid ?? (() => {}));
    return cache;
  }

  state(fleet: string): FleetState | undefined {
    return this.#memory.state(fleet);
  }

  bundle(fleet: string, version: number): Bundle | undefined {
    return this.#memory.bundle(fleet, version);
  }

  onChange(listener: (fleet: string) => void): () => void {
    return this.#memory.onChange(listener);
  }

  /** What to list in the AuthorityFeed Subscribe, so only what is missing is sent. */
  knownFleets(): KnownFleet[] {
    return this.#memory.fleets().map((fleet) => ({
      fleet,
      latestBundleVersion: this.#memory.latestBundleVersion(fleet),
      fleetStateGeneration: this.#memory.state(fleet)?.generation ?? 0,
    }));
  }

  /**
   * Verifies the bundle (signature, trusted key, fleet, config hash, without decoding the
   * config), writes it, then serves it. Throws a BundleError or DistributorError when it is
   * refused; nothing is written then. A write that fails throws DistributorError
   * `cache_write_failed`, and the bundle is not served either.
   */
  async putBundle(bundle: Bundle): Promise<void> {
    const checked = await this.#verified(bundle.signedBundle.toString("latin1"), bundle.fleet);
    if (checked.version !== bundle.version || checked.contentSha256 !== bundle.contentSha256) {
      throw new DistributorError(
        DistributorErrorCode.HintMismatch,
        `bundle hints (version ${bundle.version}, ${bundle.contentSha256}) disagree with its signed payload (version ${checked.version}, ${checked.contentSha256})`,
      );
    }
    const path = this.#bundlePath(bundle.fleet, bundle.version);
    try {
      await this.#write(path, bundle.signedBundle);
    } catch (error) {
      throw new DistributorError(
        DistributorErrorCode.CacheWriteFailed,
        `bundle ${bundle.fleet} v${bundle.version} verified but not written to ${path}: ${(error as Error).message}`,
      );
    }
    this.#memory.putBundle(checked);
  }

  /**
   * False, and nothing is written, when the generation is not above the cached one. The state
   * is served at once, before it is on disk: a failed write rejects, and the disk stays one
   * state behind until the next succeeds.
   */
  async putState(state: FleetState): Promise<boolean> {
    const held = this.#memory.state(state.fleet);
    if (held !== undefined && state.generation <= held.generation) return false;
    this.#memory.putState(state);
    await this.#write(
      join(this.#dir, "states", `${fleetDir(state.fleet)}.json`),
      Buffer.from(JSON.stringify(FleetState.toJSON(state))),
    );
    return true;
  }

  async #verified(jws: string, fleet: string): Promise<Bundle> {
    const envelope = await verifyBundleEnvelope(jws, { keyring: this.#keyring, fleet });
    return {
      fleet: envelope.fleet,
      version: envelope.version,
      contentSha256: envelope.content_sha256,
      signedBundle: Buffer.from(jws, "latin1"),
    };
  }

  #bundlePath(fleet: string, version: number): string {
    return join(this.#dir, "bundles", fleetDir(fleet), `${version}.jws`);
  }

  #write(path: string, data: Buffer): Promise<void> {
    const next = this.#writes.then(() => writeAtomic(path, data));
    // A failed write is reported to its caller only; later writes still run.
    this.#writes = next.catch(() => {});
    return next;
  }

  async #load(onInvalid: (file: string, error: unknown) => void): Promise<void> {
    const bundles = join(this.#dir, "bundles");
    for (const dir of await readdir(bundles)) {
      const fleet = fleetOf(dir);
      if (fleet === undefined) continue;
      for (const name of await readdir(join(bundles, dir))) {
        if (!name.endsWith(".jws")) continue;
        const file = join(bundles, dir, name);
        try {
          const bundle = await this.#verified((await readFile(file)).toString("latin1"), fleet);
          if (`${bundle.version}.jws` !== name) throw new Error(`holds version ${bundle.version}`);
          this.#memory.putBundle(bundle);
        } catch (error) {
          onInvalid(file, error);
        }
      }
    }
    const states = join(this.#dir, "states");
    for (const name of await readdir(states)) {
      if (!name.startsWith(PREFIX) || !name.endsWith(".json")) continue;
      const file = join(states, name);
      try {
        this.#memory.putState(FleetState.fromJSON(JSON.parse(await readFile(file, "utf8"))));
      } catch (error) {
        onInvalid(file, error);
      }
    }
  }
}

/** `fleet=` keeps any fleet name, `..` included, a plain directory entry. */
function fleetDir(fleet: string): string {
  return `${PREFIX}${encodeURIComponent(fleet)}`;
}

function fleetOf(dir: string): string | undefined {
  if (!dir.startsWith(PREFIX)) return undefined;
  try {
    return decodeURIComponent(dir.slice(PREFIX.length));
  } catch {
    return undefined;
  }
}

async function writeAtomic(path: string, data: Buffer): Promise<void> {
  await mkdir(join(path, ".."), { recursive: true });
  const tmp = `${path}.${randomBytes(6).toString("hex")}.tmp`;
  try {
    const handle = await open(tmp, "w");
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
  } catch (error) {
    // A part written before the disk filled up would otherwise keep it full.
    await rm(tmp, { force: true });
    throw error;
  }
}
