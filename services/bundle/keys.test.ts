/** Signing keys: generation, files that are private and never overwritten, and loading with clear refusals. */
import { generateKeyPairSync } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { calculateJwkThumbprint } from "jose";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  generateSigningKey,
  type KeyErrorCode,
  Keyring,
  loadSigningKey,
  type SigningKeySource,
  signBundle,
  verifyBundle,
  writeKeyPair,
} from "./index.js";
import { canonicalConfig, payloadFor } from "./test-support.js";

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "coherent-keys-"));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function keyErrorCode(work: Promise<unknown>): Promise<KeyErrorCode> {
  try {
    await work;
  } catch (err) {
    const code = (err as { code?: KeyErrorCode }).code;
    if (code === undefined) throw err;
    return code;
  }
  throw new Error("expected a KeyError");
}

async function signsVerifiably(source: SigningKeySource, publicPem: string): Promise<void> {
  const key = await loadSigningKey(source);
  const keyring = await Keyring.from([{ pem: publicPem }]);
  const payload = payloadFor(canonicalConfig());
  expect(await verifyBundle(await signBundle(payload, key), { keyring, fleet: "edge" })).toEqual(payload);
}

describe("generateSigningKey", () => {
  it("makes an Ed25519 key whose kid is the RFC 7638 thumbprint of its public JWK", async () => {
    const { key, privatePem, publicPem, publicJwk } = await generateSigningKey();
    expect(publicJwk).toMatchObject({ kty: "OKP", crv: "Ed25519", alg: "EdDSA", use: "sig", kid: key.kid });
    expect(publicJwk).not.toHaveProperty("d");
    expect(key.kid).toBe(await calculateJwkThumbprint(publicJwk, "sha256"));
    expect(privatePem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(publicPem).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    await signsVerifiably({ pem: privatePem }, publicPem);
  });

  it("makes a different key each time", async () => {
    const [a, b] = await Promise.all([generateSigningKey(), generateSigningKey()]);
    expect(a.key.kid).not.toBe(b.key.kid);
  });
});

describe("writeKeyPair", () => {
  it("writes the private key 0600 and the public key 0644, and they load as one pair", async () => {
    const written = await writeKeyPair(join(dir, "keys"));
    expect(written.privateFile).toBe(join(dir, "keys", "signing.key.pem"));
    expect(written.publicFile).toBe(join(dir, "keys", "signing.pub.pem"));
    expect((await stat(written.privateFile)).mode & 0o777).toBe(0o600);
    expect((await stat(written.publicFile)).mode & 0o777).toBe(0o644);
    expect((await stat(join(dir, "keys"))).mode & 0o777).toBe(0o700);
    const key = await loadSigningKey({ file: written.privateFile });
    expect(key.kid).toBe(written.kid);
    expect(written.publicJwk).toEqual(key.publicJwk);
    await signsVerifiably({ file: written.privateFile }, await readFile(written.publicFile, "utf8"));
  });

  it("refuses to overwrite a pair and leaves the old one untouched", async () => {
    const first = await writeKeyPair(dir, "authority");
    const before = await readFile(first.privateFile, "utf8");
    expect(await keyErrorCode(writeKeyPair(dir, "authority"))).toBe("key_exists");
    expect(await readFile(first.privateFile, "utf8")).toBe(before);
    expect((await loadSigningKey({ file: first.privateFile })).kid).toBe(first.kid);
  });

  it("refuses when only the public file exists, leaving no private key behind", async () => {
    await writeFile(join(dir, "signing.pub.pem"), "someone else's key");
    expect(await keyErrorCode(writeKeyPair(dir))).toBe("key_exists");
    expect(await readdir(dir)).toEqual(["signing.pub.pem"]);
  });

  it("writes pairs under different names side by side", async () => {
    const a = await writeKeyPair(dir, "a");
    const b = await writeKeyPair(dir, "b");
    expect(a.kid).not.toBe(b.kid);
    expect((await readdir(dir)).sort()).toEqual(["a.key.pem", "a.pub.pem", "b.key.pem", "b.pub.pem"]);
  });

  it("refuses a name that is not a plain file name", async () => {
    expect(await keyErrorCode(writeKeyPair(dir, "../escape"))).toBe("key_invalid");
    expect(await readdir(dir)).toEqual([]);
  });
});

describe("loadSigningKey", () => {
  it("loads the PEM text, also as a one-line environment variable with \\n escapes", async () => {
    const { key, privatePem, publicPem } = await generateSigningKey();
    expect((await loadSigningKey({ pem: privatePem })).kid).toBe(key.kid);
    const oneLine = privatePem.trim().replaceAll("\n", "\\n");
    expect((await loadSigningKey({ pem: oneLine, label: "COHERENT_SIGNING_KEY" })).kid).toBe(key.kid);
    await signsVerifiably({ pem: oneLine }, publicPem);
  });

  it("key_source: neither or both of file and pem", async () => {
    const { privatePem } = await generateSigningKey();
    expect(await keyErrorCode(loadSigningKey({}))).toBe("key_source");
    expect(await keyErrorCode(loadSigningKey({ file: join(dir, "k.pem"), pem: privatePem }))).toBe(
      "key_source",
    );
  });

  it("key_unreadable: a file that is not there, named in the message", async () => {
    const file = join(dir, "missing.key.pem");
    expect(await keyErrorCode(loadSigningKey({ file }))).toBe("key_unreadable");
    await expect(loadSigningKey({ file })).rejects.toThrow(file);
  });

  it("wrong_key_type: an RSA or EC private key, saying what it is and what to do", async () => {
    for (const [type, options] of [
      ["rsa", { modulusLength: 2048 }],
      ["ec", { namedCurve: "P-256" }],
    ] as const) {
      const { privateKey } = generateKeyPairSync(type as "rsa", options as { modulusLength: number });
      const pem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
      const file = join(dir, `${type}.pem`);
      await writeFile(file, pem);
      expect(await keyErrorCode(loadSigningKey({ file }))).toBe("wrong_key_type");
      await expect(loadSigningKey({ pem })).rejects.toThrow(
        new RegExp(`type ${type}.*coherent keys generate`),
      );
    }
  });

  it("wrong_key_type: the public half instead of the private key", async () => {
    const { publicPem } = await generateSigningKey();
    expect(await keyErrorCode(loadSigningKey({ pem: publicPem }))).toBe("wrong_key_type");
  });

  it("key_invalid: garbage, an empty file, or a PEM frame around garbage", async () => {
    const frame = "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n";
    for (const text of ["garbage", "", frame]) {
      const file = join(dir, "bad.pem");
      await writeFile(file, text);
      expect(await keyErrorCode(loadSigningKey({ file }))).toBe("key_invalid");
      expect(await keyErrorCode(loadSigningKey({ pem: text }))).toBe("key_invalid");
    }
  });
});
