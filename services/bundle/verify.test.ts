/**
 * verifyBundle on good bundles and on every kind of bad one: each refusal is asserted by its
 * code, since that is what agents NACK with.
 */
import { createHmac } from "node:crypto";
import { compactVerify, createLocalJWKSet, decodeProtectedHeader } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { canonicalJson, contentHash } from "../config/index.js";
import {
  BUNDLE_TYP,
  type BundleErrorCode,
  type BundlePayload,
  DEFAULT_MAX_BUNDLE_BYTES,
  generateSigningKey,
  Keyring,
  MAX_PAYLOAD_DEPTH,
  type SigningKey,
  signBundle,
  type VerifyOptions,
  verifyBundle,
} from "./index.js";
import {
  base64url,
  CONFIG_YAML,
  canonicalConfig,
  payloadFor,
  signRaw,
  signWithJose,
} from "./test-support.js";

let key: SigningKey;
let other: SigningKey;
let keyring: Keyring;
let options: VerifyOptions;
const config = canonicalConfig();

beforeAll(async () => {
  key = (await generateSigningKey()).key;
  other = (await generateSigningKey()).key;
  keyring = await Keyring.from([{ jwk: key.publicJwk }]);
  options = { keyring, fleet: "edge" };
});

/** The code verifyBundle refused with; fails the test if it accepted. */
async function refusal(jws: string, overrides: Partial<VerifyOptions> = {}): Promise<BundleErrorCode> {
  try {
    await verifyBundle(jws, { ...options, ...overrides });
  } catch (err) {
    const code = (err as { code?: BundleErrorCode }).code;
    if (code === undefined) throw err;
    return code;
  }
  throw new Error("verifyBundle accepted the bundle");
}

function parts(jws: string): [string, string, string] {
  const [header = "", payload = "", signature = ""] = jws.split(".");
  return [header, payload, signature];
}

describe("a signed bundle", () => {
  it("verifies and gives back the payload it was signed with", async () => {
    const payload = payloadFor(config, { message: "raise the timeout", rollback_of: 1 });
    const jws = await signBundle(payload, key);
    expect(await verifyBundle(jws, options)).toEqual(payload);
  });

  it("carries the header alg EdDSA, the key's kid and typ coherent-bundle+jws", async () => {
    const jws = await signBundle(payloadFor(config), key);
    expect(decodeProtectedHeader(jws)).toEqual({ alg: "EdDSA", kid: key.kid, typ: BUNDLE_TYP });
  });

  it("is a standard JWS: jose verifies what signBundle wrote, and verifyBundle what jose wrote", async () => {
    const payload = payloadFor(config);
    const jws = await signBundle(payload, key);
    const { payload: bytes, protectedHeader } = await compactVerify(
      jws,
      createLocalJWKSet({ keys: [key.publicJwk] }),
      { algorithms: ["EdDSA"] },
    );
    expect(protectedHeader.typ).toBe(BUNDLE_TYP);
    expect(JSON.parse(new TextDecoder().decode(bytes))).toEqual(payload);
    expect(await verifyBundle(await signWithJose(JSON.stringify(payload), key), options)).toEqual(payload);
  });

  it("signs canonical JSON, config first, so equal payloads give equal payload text", async () => {
    const payload = payloadFor(config);
    const reordered = Object.fromEntries(Object.entries(payload).reverse()) as unknown as BundlePayload;
    const text = (jws: string) => Buffer.from(parts(jws)[1], "base64url").toString();
    const a = text(await signBundle(payload, key));
    expect(a).toBe(canonicalJson(payload));
    expect(a.startsWith('{"config":')).toBe(true);
    expect(text(await signBundle(reordered, key))).toBe(a);
  });

  it("verifies when the payload is not canonical JSON but its hash is the canonical one", async () => {
    const payload = payloadFor(config);
    expect(await verifyBundle(signRaw(JSON.stringify(payload, null, 2), key), options)).toEqual(payload);
  });

  it("verifies the first version of a fleet, whose parent is null, above floor 0", async () => {
    const payload = payloadFor(config, { version: 1, parent: null });
    expect(await verifyBundle(await signBundle(payload, key), { ...options, floor: 0 })).toEqual(payload);
  });
});

describe("refusals", () => {
  it("bad_signature: the payload changed after signing", async () => {
    const [header, , signature] = parts(await signBundle(payloadFor(config), key));
    const forged = base64url(canonicalJson(payloadFor(config, { version: 99 })));
    expect(await refusal(`${header}.${forged}.${signature}`)).toBe("bad_signature");
  });

  it("bad_signature: one character of the payload changed", async () => {
    const [header, payload, signature] = parts(await signBundle(payloadFor(config), key));
    const flipped = `${payload.slice(0, 40)}${payload[40] === "A" ? "B" : "A"}${payload.slice(41)}`;
    expect(await refusal(`${header}.${flipped}.${signature}`)).toBe("bad_signature");
  });

  it("bad_signature: the signature changed, truncated or missing", async () => {
    const [header, payload, signature] = parts(await signBundle(payloadFor(config), key));
    const flipped = `${signature[0] === "A" ? "B" : "A"}${signature.slice(1)}`;
    expect(await refusal(`${header}.${payload}.${flipped}`)).toBe("bad_signature");
    expect(await refusal(`${header}.${payload}.${signature.slice(0, 43)}`)).toBe("bad_signature");
    expect(await refusal(`${header}.${payload}.`)).toBe("bad_signature");
  });

  it("bad_signature: the header was swapped for another kid's, keeping the signature", async () => {
    const ring = await Keyring.from([{ jwk: key.publicJwk }, { jwk: other.publicJwk }]);
    const [, payload, signature] = parts(await signBundle(payloadFor(config), key));
    const [otherHeader] = parts(await signBundle(payloadFor(config), other));
    expect(await refusal(`${otherHeader}.${payload}.${signature}`, { keyring: ring })).toBe("bad_signature");
  });

  it("bad_signature: alg none, whatever the signature part holds", async () => {
    const header = base64url(JSON.stringify({ alg: "none", kid: key.kid, typ: BUNDLE_TYP }));
    const [, payload, signature] = parts(await signBundle(payloadFor(config), key));
    expect(await refusal(`${header}.${payload}.`)).toBe("bad_signature");
    expect(await refusal(`${header}.${payload}.${signature}`)).toBe("bad_signature");
  });

  it("bad_signature: HS256 keyed with the public key (algorithm confusion)", async () => {
    const header = base64url(JSON.stringify({ alg: "HS256", kid: key.kid, typ: BUNDLE_TYP }));
    const payload = base64url(canonicalJson(payloadFor(config)));
    const mac = createHmac("sha256", JSON.stringify(key.publicJwk))
      .update(`${header}.${payload}`)
      .digest("base64url");
    expect(await refusal(`${header}.${payload}.${mac}`)).toBe("bad_signature");
    await expect(verifyBundle(`${header}.${payload}.${mac}`, options)).rejects.toThrow(/alg "HS256"/);
  });

  it("unknown_kid: signed by a key this keyring does not hold", async () => {
    expect(await refusal(await signBundle(payloadFor(config), other))).toBe("unknown_kid");
  });

  it("unknown_kid: a header without kid", async () => {
    expect(
      await refusal(signRaw(canonicalJson(payloadFor(config)), key, { alg: "EdDSA", typ: BUNDLE_TYP })),
    ).toBe("unknown_kid");
  });

  it("unknown_kid: signed by a retired key, with a message that says so", async () => {
    const ring = await Keyring.from([{ jwk: other.publicJwk }, { jwk: key.publicJwk, status: "retired" }]);
    const jws = await signBundle(payloadFor(config), key);
    expect(await refusal(jws, { keyring: ring })).toBe("unknown_kid");
    await expect(verifyBundle(jws, { ...options, keyring: ring })).rejects.toThrow(/retired/);
  });

  it("wrong_typ: a JWS of another type, or none, signed by a trusted key", async () => {
    const text = canonicalJson(payloadFor(config));
    expect(await refusal(signRaw(text, key, { alg: "EdDSA", kid: key.kid, typ: "JWT" }))).toBe("wrong_typ");
    expect(await refusal(signRaw(text, key, { alg: "EdDSA", kid: key.kid }))).toBe("wrong_typ");
  });

  it("hash_mismatch: re-signed with the content_sha256 of another config", async () => {
    const otherConfig = canonicalConfig(CONFIG_YAML.replace("5s", "6s"));
    const payload = payloadFor(config, { content_sha256: contentHash(otherConfig) });
    expect(await refusal(await signBundle(payload, key))).toBe("hash_mismatch");
  });

  it("hash_mismatch: a non-canonical payload whose hash is not the config's", async () => {
    const payload = payloadFor(config, { content_sha256: "0".repeat(64) });
    expect(await refusal(signRaw(JSON.stringify(payload, null, 2), key))).toBe("hash_mismatch");
  });

  it("hash_mismatch: the hash is checked against the config returned, even when config is repeated", async () => {
    const decoy = canonicalConfig(CONFIG_YAML.replace("5s", "6s"));
    const canonical = canonicalJson(payloadFor(decoy));
    // JSON.parse keeps the last `config`, so the hash of the first one must not pass for it.
    const text = `${canonical.slice(0, -1)},"config":${canonicalJson(config)}}`;
    expect(await refusal(signRaw(text, key))).toBe("hash_mismatch");
  });

  it("wrong_fleet: a bundle signed for another fleet", async () => {
    expect(await refusal(await signBundle(payloadFor(config, { fleet: "internal" }), key))).toBe(
      "wrong_fleet",
    );
  });

  it("version_not_above_floor: the version running, or an older one; accepted above it", async () => {
    const jws = await signBundle(payloadFor(config, { version: 5, parent: 4 }), key);
    expect(await refusal(jws, { floor: 5 })).toBe("version_not_above_floor");
    expect(await refusal(jws, { floor: 9 })).toBe("version_not_above_floor");
    expect((await verifyBundle(jws, { ...options, floor: 4 })).version).toBe(5);
  });

  it("unsupported_schema: a payload of another schema version", async () => {
    const text = canonicalJson({ ...payloadFor(config), schema: "coherent.bundle/v2" });
    expect(await refusal(signRaw(text, key))).toBe("unsupported_schema");
  });

  it("too_large: over maxBytes, and over the 16 MiB default", async () => {
    const jws = await signBundle(payloadFor(config), key);
    expect(await refusal(jws, { maxBytes: jws.length - 1 })).toBe("too_large");
    expect(await refusal("a".repeat(DEFAULT_MAX_BUNDLE_BYTES + 1))).toBe("too_large");
  });

  it.each([
    ["empty", ""],
    ["garbage", "garbage"],
    ["two parts", "eyJhIjoxfQ.eyJhIjoxfQ"],
    ["four parts", "a.b.c.d"],
    ["an empty header", ".eyJhIjoxfQ.c2ln"],
    ["a header that is not base64url", "eyJ!.eyJhIjoxfQ.c2ln"],
    ["a header that is not JSON", `${base64url("{alg")}.eyJhIjoxfQ.c2ln`],
    ["a header that is a JSON array", `${base64url("[1]")}.eyJhIjoxfQ.c2ln`],
    ["non-ASCII characters", `${base64url("{}")}.ey\u0141.c2ln`],
  ])("malformed: %s", async (_name, jws) => {
    expect(await refusal(jws)).toBe("malformed");
  });

  it("malformed: a header with parameters a bundle does not use (crit, jwk)", async () => {
    const text = canonicalJson(payloadFor(config));
    const base = { alg: "EdDSA", kid: key.kid, typ: BUNDLE_TYP };
    expect(await refusal(signRaw(text, key, { ...base, crit: ["exp"], exp: 1 }))).toBe("malformed");
    expect(await refusal(signRaw(text, key, { ...base, jwk: other.publicJwk }))).toBe("malformed");
  });

  it.each([
    ["not JSON", "not json"],
    ["a JSON array", "[1,2]"],
    ["missing fields", JSON.stringify({ schema: "coherent.bundle/v1" })],
  ])("malformed: a signed payload that is %s", async (_name, text) => {
    expect(await refusal(signRaw(text, key))).toBe("malformed");
  });

  it.each<[string, Record<string, unknown>]>([
    ["version 0", { version: 0 }],
    ["a fractional version", { version: 1.5 }],
    ["a parent not below version", { parent: 3 }],
    ["an empty fleet", { fleet: "" }],
    ["a created_at that is no time", { created_at: "yesterday" }],
    ["a content_sha256 that is no hash", { content_sha256: "abc" }],
    ["a config that is an array", { config: [] }],
    ["a rollback_of not below version", { rollback_of: 3 }],
    ["a message that is no string", { message: 7 }],
    ["an unknown field", { extra: true }],
  ])("malformed: a signed payload with %s", async (_name, fields) => {
    const text = canonicalJson({ ...payloadFor(config), ...fields });
    expect(await refusal(signRaw(text, key))).toBe("malformed");
  });

  it("malformed: a signed payload that is not UTF-8", async () => {
    expect(await refusal(signRaw(new Uint8Array([0x7b, 0xff, 0x7d]), key))).toBe("malformed");
  });

  it("malformed: a config nested just past the limit, signed by signBundle", async () => {
    // config is level 1, each array one more, the innermost object one more: 65 levels.
    let deep: unknown = {};
    for (let i = 0; i < MAX_PAYLOAD_DEPTH - 1; i++) deep = [deep];
    const nested = { ...config, routes: deep } as unknown as BundlePayload["config"];
    const jws = await signBundle(payloadFor(nested, { content_sha256: contentHash(nested) }), key);
    expect(await refusal(jws)).toBe("malformed");
  });

  it("accepts a config nested exactly to the limit", async () => {
    let deep: unknown = {};
    for (let i = 0; i < MAX_PAYLOAD_DEPTH - 2; i++) deep = [deep];
    const nested = { ...config, routes: deep } as unknown as BundlePayload["config"];
    const payload = payloadFor(nested, { content_sha256: contentHash(nested) });
    expect(await verifyBundle(await signBundle(payload, key), options)).toEqual(payload);
  });

  it("malformed: a config nested 100,000 deep, without overflowing the stack", async () => {
    const depth = 100_000;
    const text = canonicalJson(payloadFor(config)).replace(
      '{"config":{',
      `{"config":{"deep":${"[".repeat(depth)}${"]".repeat(depth)},`,
    );
    expect(await refusal(signRaw(text, key))).toBe("malformed");
  });
});
