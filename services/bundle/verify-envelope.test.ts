import { beforeAll, describe, expect, it } from "vitest";
import { canonicalJson, contentHash } from "../config/index.js";
import {
  type BundleErrorCode,
  generateSigningKey,
  Keyring,
  type SigningKey,
  signBundle,
  type VerifyOptions,
  verifyBundleEnvelope,
} from "./index.js";
import { canonicalConfig, payloadFor, signRaw } from "./test-support.js";

let key: SigningKey;
let options: VerifyOptions;
const config = canonicalConfig();

beforeAll(async () => {
  key = (await generateSigningKey()).key;
  options = { keyring: await Keyring.from([{ jwk: key.publicJwk }]), fleet: "edge" };
});

async function refusal(jws: string, overrides: Partial<VerifyOptions> = {}): Promise<BundleErrorCode> {
  try {
    await verifyBundleEnvelope(jws, { ...options, ...overrides });
  } catch (err) {
    const code = (err as { code?: BundleErrorCode }).code;
    if (code === undefined) throw err;
    return code;
  }
  throw new Error("verifyBundleEnvelope accepted the bundle");
}

describe("verifyBundleEnvelope (a distributor's check: everything but decoding the config)", () => {
  it("returns every field but the config for a bundle signBundle wrote", async () => {
    const payload = payloadFor(config, { version: 3, parent: 2 });
    const envelope = await verifyBundleEnvelope(await signBundle(payload, key), { ...options, floor: 2 });
    const { config: _config, ...expected } = payload;
    expect(envelope).toEqual(expected);
    expect("config" in envelope).toBe(false);
  });

  it("checks the config's hash on its signed text without decoding it", async () => {
    const wrong = payloadFor(config, { content_sha256: contentHash(canonicalConfig("routes: []\n")) });
    expect(await refusal(await signBundle(wrong, key))).toBe("hash_mismatch");
  });

  it("refuses what verifyBundle refuses: signature, fleet, floor", async () => {
    const jws = await signBundle(payloadFor(config, { version: 2, parent: 1 }), key);
    const [header, body, signature] = jws.split(".") as [string, string, string];
    const flipped = `${header}.${body.slice(0, -2)}${body.endsWith("A") ? "B" : "A"}${body.slice(-1)}.${signature}`;
    expect(await refusal(flipped)).toBe("bad_signature");
    expect(await refusal(jws, { fleet: "other" })).toBe("wrong_fleet");
    expect(await refusal(jws, { floor: 2 })).toBe("version_not_above_floor");
  });

  it("decodes a payload in another layout whole, and checks it all the same", async () => {
    const payload = payloadFor(config);
    const reordered = JSON.stringify({
      ...payload,
      config: undefined,
      extra: undefined,
      configLast: undefined,
    });
    const withConfigLast = `${reordered.slice(0, -1)},"config":${canonicalJson(config)}}`;
    const envelope = await verifyBundleEnvelope(signRaw(withConfigLast, key), options);
    expect(envelope.fleet).toBe("edge");
    const broken = `${reordered.slice(0, -1)},"config":[]}`;
    expect(await refusal(signRaw(broken, key))).toBe("malformed");
  });
});
