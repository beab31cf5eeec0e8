/**
 * The last good bundle of a managed agent, kept in its `state_dir`, so that an agent started
 * while no distributor answers can serve what it ran before. Written only after the bundle
 * was verified, compiled and swapped in; read back through verifyBundle like any bundle, so a
 * file edited on disk is refused, never served.
 *
 * A write never leaves a half-written file under the real name: the bundle goes to a
 * temporary file, is flushed to disk, and is renamed over the old one (rename is atomic on
 * one file system), then the directory entry is flushed too.
 */
import { mkdir, open, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { type BundlePayload, type Keyring, verifyBundle } from "../../services/bundle/index.js";

const FILE = "last-good-bundle.jws";

export class LastGoodBundle {
  readonly #dir: string;

  constructor(stateDir: string) {
    this.#dir = stateDir;
  }

  get path(): string {
    return join(this.#dir, FILE);
  }

  /** Keeps `jws` as the last good bundle (private to the agent's user: 0600 in a 0700 dir). */
  async save(jws: string): Promise<void> {
    await mkdir(this.#dir, { recursive: true, mode: 0o700 });
    const temporary = `${this.path}.${process.pid}.tmp`;
    const file = await open(temporary, "w", 0o600);
    try {
      await file.writeFile(jws, "ascii");
      await file.sync();
    } finally {
      await file.close();
    }
    try {
      await rename(temporary, this.path);
    } catch (error) {
      await rm(temporary, { force: true });
      throw error;
    }
    const dir = await open(this.#dir, "r");
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }

  /** The saved bundle's text; undefined when there is none. */
  async read(): Promise<string | undefined> {
    try {
      return await readFile(this.path, "ascii");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw error;
    }
  }

  /**
   * The saved bundle, verified as a bundle from a distributor would be (signature, trusted
   * key, fleet); undefined when there is none. Throws BundleError when the file is not a
   * bundle this agent trusts.
   */
  async load(keyring: Keyring, fleet: string): Promise<{ jws: string; payload: BundlePayload } | undefined> {
    const jws = await this.read();
    if (jws === undefined) return undefined;
    return { jws, payload: await verifyBundle(jws, { keyring, fleet }) };
  }
}
