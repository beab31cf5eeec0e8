import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Keyring, type SigningKey } from "../bundle/index.js";
import { DiskCache } from "./disk-cache.js";
import { fleetState, newSigningKey, signedBundle } from "./test-support.js";

let key: SigningKey;
let keyring: Keyring;
let dir: string;

beforeAll(async () => {
  key = await newSigningKey();
  keyring = await Keyring.from([{ jwk: key.publicJwk }]);
});

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "coherent-dist-cache-"));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
  } catch (error) {
    return (error as { code?: string }).code;
  }
  return undefined;
}

describe("DiskCache", () => {
  it("serves after a restart the bundles and states written before it", async () => {
    const cache = await DiskCache.open({ dir, keyring });
    const bundle = await signedBundle(key, 4);
    await cache.putBundle(bundle);
    expect(await cache.putState(fleetState({ stableVersion: 4, generation: 3 }))).toBe(true);

    const reopened = await DiskCache.open({ dir, keyring });
    expect(reopened.bundle("edge", 4)).toEqual(bundle);
    expect(reopened.state("edge")).toEqual(fleetState({ stableVersion: 4, generation: 3 }));
    expect(reopened.knownFleets()).toEqual([
      { fleet: "edge", latestBundleVersion: 4, fleetStateGeneration: 3 },
    ]);
  });

  it("refuses a bundle whose signature does not verify, and writes nothing", async () => {
    const cache = await DiskCache.open({ dir, keyring });
    const bundle = await signedBundle(await newSigningKey(), 2);
    expect(await codeOf(cache.putBundle(bundle))).toBe("unknown_kid");
    expect(cache.bundle("edge", 2)).toBeUndefined();
    expect(await readdir(join(dir, "bundles"))).toEqual([]);
  });

  it("refuses a bundle whose hints disagree with its signed payload", async () => {
    const cache = await DiskCache.open({ dir, keyring });
    const bundle = await signedBundle(key, 2);
    expect(await codeOf(cache.putBundle({ ...bundle, version: 3 }))).toBe("hint_mismatch");
    expect(await codeOf(cache.putBundle({ ...bundle, fleet: "other" }))).toBe("wrong_fleet");
  });

  it("keeps the newest fleet state: a lower or equal generation changes nothing", async () => {
    const cache = await DiskCache.open({ dir, keyring });
    await cache.putState(fleetState({ stableVersion: 5, generation: 5 }));
    expect(await cache.putState(fleetState({ stableVersion: 4, generation: 4 }))).toBe(false);
    expect(await cache.putState(fleetState({ stableVersion: 6, generation: 5 }))).toBe(false);
    const reopened = await DiskCache.open({ dir, keyring });
    expect(reopened.state("edge")?.stableVersion).toBe(5);
  });

  it("skips a cached file that no longer verifies and leaves no temporary files", async () => {
    const cache = await DiskCache.open({ dir, keyring });
    await cache.putBundle(await signedBundle(key, 1));
    await cache.putBundle(await signedBundle(key, 2));
    const fleetDir = join(dir, "bundles", "fleet=edge");
    expect((await readdir(fleetDir)).sort()).toEqual(["1.jws", "2.jws"]);
    await writeFile(join(fleetDir, "2.jws"), "tampered");
    const invalid: string[] = [];
    const reopened = await DiskCache.open({ dir, keyring, onInvalid: (file) => invalid.push(file) });
    expect(reopened.bundle("edge", 1)?.version).toBe(1);
    expect(reopened.bundle("edge", 2)).toBeUndefined();
    expect(invalid).toEqual([join(fleetDir, "2.jws")]);
  });

  it("tells a bundle it could not write from a refused one, and serves it no more than a refused one", async () => {
    const cache = await DiskCache.open({ dir, keyring });
    await cache.putBundle(await signedBundle(key, 1));
    const fleetDir = join(dir, "bundles", "fleet=edge");
    // A non-empty directory where the file goes: the rename fails as a full disk's write would.
    await mkdir(join(fleetDir, "2.jws", "in-the-way"), { recursive: true });
    expect(await codeOf(cache.putBundle(await signedBundle(key, 2)))).toBe("cache_write_failed");
    expect(cache.bundle("edge", 2)).toBeUndefined();
    expect(cache.knownFleets()).toEqual([{ fleet: "edge", latestBundleVersion: 1, fleetStateGeneration: 0 }]);
    expect((await readdir(fleetDir)).sort()).toEqual(["1.jws", "2.jws"]);

    await rm(join(fleetDir, "2.jws"), { recursive: true });
    await cache.putBundle(await signedBundle(key, 2));
    expect(cache.bundle("edge", 2)?.version).toBe(2);
  });

  it("keeps any fleet name inside its directory", async () => {
    const cache = await DiskCache.open({ dir, keyring });
    await cache.putState(fleetState({ fleet: "../escape", generation: 1 }));
    expect(await readdir(join(dir, "states"))).toEqual(["fleet=..%2Fescape.json"]);
    expect((await DiskCache.open({ dir, keyring })).state("../escape")?.generation).toBe(1);
  });

  it("tells listeners which fleet changed", async () => {
    const cache = await DiskCache.open({ dir, keyring });
    const changed: string[] = [];
    cache.onChange((fleet) => changed.push(fleet));
    await cache.putBundle(await signedBundle(key, 1));
    await cache.putState(fleetState());
    expect(changed).toEqual(["edge", "edge"]);
  });
});
