/** Keyring: several trusted keys at once, retirement, and keys it must refuse to hold. */
import { generateKeyPairSync } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import {
  type BundleErrorCode,
  type GeneratedKey,
  generateSigningKey,
  type KeyErrorCode,
  Keyring,
  signBundle,
  verifyBundle,
} from "./index.js";
import { canonicalConfig, payloadFor } from "./test-support.js";

let keys: GeneratedKey[];
const payload = payloadFor(canonicalConfig());

beforeAll(async () => {
  keys = await Promise.all([generateSigningKey(), generateSigningKey(), generateSigningKey()]);
});

function key(index: number): GeneratedKey {
  const generated = keys[index];
  if (generated === undefined) throw new Error(`no key ${index}`);
  return generated;
}

async function outcome(keyring: Keyring, signer: GeneratedKey): Promise<"ok" | BundleErrorCode> {
  try {
    await verifyBundle(await signBundle(payload, signer.key), { keyring, fleet: "edge" });
    return "ok";
  } catch (err) {
    return (err as { code: BundleErrorCode }).code;
  }
}

async function keyErrorCode(work: Promise<unknown>): Promise<KeyErrorCode | "accepted"> {
  try {
    await work;
    return "accepted";
  } catch (err) {
    return (err as { code: KeyErrorCode }).code;
  }
}

describe("Keyring", () => {
  it("trusts several keys at once, given as JWK or PEM, each verifying its own bundles", async () => {
    const keyring = await Keyring.from([
      { jwk: key(0).publicJwk, status: "active" },
      { pem: key(1).publicPem, status: "trusted" },
      { kid: key(2).key.kid, jwk: key(2).publicJwk },
    ]);
    expect(keyring.kids()).toEqual([key(0).key.kid, key(1).key.kid, key(2).key.kid]);
    for (const signer of keys) expect(await outcome(keyring, signer)).toBe("ok");
    expect(keyring.get(key(1).key.kid)?.asymmetricKeyType).toBe("ed25519");
    expect(keyring.get("nope")).toBeUndefined();
  });

  it("derives the same kid from a key's PEM and its JWK", async () => {
    const fromPem = await Keyring.from([{ pem: key(0).publicPem }]);
    expect(fromPem.kids()).toEqual([key(0).key.kid]);
  });

  it("keeps a retired key out: it verifies nothing and is not among the kids", async () => {
    const keyring = await Keyring.from([
      { jwk: key(0).publicJwk },
      { jwk: key(1).publicJwk, status: "retired" },
    ]);
    expect(keyring.kids()).toEqual([key(0).key.kid]);
    expect(keyring.get(key(1).key.kid)).toBeUndefined();
    expect(keyring.isRetired(key(1).key.kid)).toBe(true);
    expect(keyring.isRetired(key(0).key.kid)).toBe(false);
    expect(await outcome(keyring, key(1))).toBe("unknown_kid");
    expect(await outcome(keyring, key(0))).toBe("ok");
  });

  it("treats a key listed both trusted and retired as retired", async () => {
    const keyring = await Keyring.from([
      { jwk: key(0).publicJwk, status: "trusted" },
      { pem: key(0).publicPem, status: "retired" },
    ]);
    expect(keyring.kids()).toEqual([]);
    expect(await outcome(keyring, key(0))).toBe("unknown_kid");
  });

  it("rotates without a gap: old and new both verify, then only the new once the old retires", async () => {
    const [old, next] = [key(0), key(1)];
    const during = await Keyring.from([
      { jwk: next.publicJwk, status: "active" },
      { jwk: old.publicJwk, status: "trusted" },
    ]);
    expect([await outcome(during, old), await outcome(during, next)]).toEqual(["ok", "ok"]);
    const after = await Keyring.from([
      { jwk: next.publicJwk, status: "active" },
      { jwk: old.publicJwk, status: "retired" },
    ]);
    expect([await outcome(after, old), await outcome(after, next)]).toEqual(["unknown_kid", "ok"]);
  });

  it("kid_mismatch: a key listed under a kid that is not its thumbprint", async () => {
    expect(await keyErrorCode(Keyring.from([{ kid: key(1).key.kid, jwk: key(0).publicJwk }]))).toBe(
      "kid_mismatch",
    );
  });

  it("wrong_key_type: an RSA public key, or a private key where a public one belongs", async () => {
    const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey;
    const rsaPem = rsa.export({ type: "spki", format: "pem" }).toString();
    expect(await keyErrorCode(Keyring.from([{ pem: rsaPem }]))).toBe("wrong_key_type");
    expect(await keyErrorCode(Keyring.from([{ jwk: rsa.export({ format: "jwk" }) }]))).toBe("wrong_key_type");
    expect(await keyErrorCode(Keyring.from([{ pem: key(0).privatePem }]))).toBe("wrong_key_type");
  });

  it("key_invalid and key_source: garbage, or not exactly one of jwk and pem", async () => {
    expect(await keyErrorCode(Keyring.from([{ pem: "garbage" }]))).toBe("key_invalid");
    expect(await keyErrorCode(Keyring.from([{ jwk: { kty: "OKP", crv: "Ed25519", x: "!!" } }]))).toBe(
      "key_invalid",
    );
    expect(await keyErrorCode(Keyring.from([{}]))).toBe("key_source");
    expect(await keyErrorCode(Keyring.from([{ jwk: key(0).publicJwk, pem: key(0).publicPem }]))).toBe(
      "key_source",
    );
  });

  it("an empty keyring verifies nothing", async () => {
    expect(await outcome(await Keyring.from([]), key(0))).toBe("unknown_kid");
  });
});
