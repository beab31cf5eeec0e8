import { mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { generateSigningKey, Keyring, type SigningKey, signBundle } from "../../services/bundle/index.js";
import { canonicalConfig, payloadFor } from "../../services/bundle/test-support.js";
import { LastGoodBundle } from "./last-good-bundle.js";

let key: SigningKey;
let keyring: Keyring;
let dir: string;
let jws: string;

beforeAll(async () => {
  key = (await generateSigningKey()).key;
  keyring = await Keyring.from([{ jwk: key.publicJwk }]);
  jws = await signBundle(payloadFor(canonicalConfig(), { version: 7, parent: 6 }), key);
});

beforeEach(async () => {
  dir = join(await mkdtemp(join(tmpdir(), "coherent-state-")), "state");
});

afterEach(async () => {
  await rm(join(dir, ".."), { recursive: true, force: true });
});

describe("LastGoodBundle", () => {
  it("has nothing before the first save", async () => {
    const store = new LastGoodBundle(dir);
    expect(await store.read()).toBeUndefined();
    expect(await store.load(keyring, "edge")).toBeUndefined();
  });

  it("keeps a saved bundle private to the agent and gives it back verified", async () => {
    const store = new LastGoodBundle(dir);
    await store.save(jws);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    expect((await stat(store.path)).mode & 0o777).toBe(0o600);
    const loaded = await store.load(keyring, "edge");
    expect(loaded?.jws).toBe(jws);
    expect(loaded?.payload.version).toBe(7);
  });

  it("replaces the previous bundle whole and leaves no temporary file", async () => {
    const store = new LastGoodBundle(dir);
    await store.save(jws);
    const next = await signBundle(payloadFor(canonicalConfig(), { version: 8, parent: 7 }), key);
    await store.save(next);
    expect((await store.load(keyring, "edge"))?.payload.version).toBe(8);
    expect(await readdir(dir)).toEqual(["last-good-bundle.jws"]);
  });

  it("refuses a file edited on disk, or one of another fleet, rather than serve it", async () => {
    const store = new LastGoodBundle(dir);
    await store.save(jws);
    const [header, payload, signature] = jws.split(".") as [string, string, string];
    await writeFile(store.path, `${header}.${payload.slice(0, -4)}AAAA.${signature}`);
    await expect(store.load(keyring, "edge")).rejects.toMatchObject({ code: "bad_signature" });
    await store.save(jws);
    await expect(store.load(keyring, "other-fleet")).rejects.toMatchObject({ code: "wrong_fleet" });
  });
});
