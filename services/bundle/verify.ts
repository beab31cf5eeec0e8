/**
 * verifyBundle: what an agent or a distributor calls before it uses a bundle. It fails closed
 * — every refusal is a BundleError with its own code — and trusts nothing of the bundle before
 * the signature is checked: the header is read only to refuse early and to pick the key.
 *
 * The signature is checked with node:crypto rather than jose's compactVerify: the same Ed25519
 * check over the same signing input (RFC 7515, RFC 8037), without jose's extra copies and
 * pure-JS base64 decoding, which cost several times the signature itself on a 1 MB bundle.
 */
import { isUtf8 } from "node:buffer";
import { type KeyObject, verify } from "node:crypto";
import { contentHash, sha256Hex } from "../config/index.js";
import { SIGNING_ALG } from "./ed25519.js";
import { BundleError, BundleErrorCode } from "./errors.js";
import type { Keyring } from "./keyring.js";
import { BUNDLE_TYP, type BundleEnvelope, type BundlePayload, checkPayload } from "./payload.js";

export const DEFAULT_MAX_BUNDLE_BYTES = 16 * 1024 * 1024;
/**
 * The largest gRPC message a bundle's receiver accepts (gRPC's own default, 4 MiB, would stop
 * bundles far below the bundle limit). Twice the limit, so a bundle over it still arrives and
 * is refused as too_large, where it can be reported, instead of failing the stream each time.
 */
export const MAX_BUNDLE_MESSAGE_BYTES = 2 * DEFAULT_MAX_BUNDLE_BYTES;

export interface VerifyOptions {
  readonly keyring: Keyring;
  /** The fleet the verifier serves: a bundle of any other fleet is refused. */
  readonly fleet: string;
  /** The version must be above it: the version running, or the highest one seen. */
  readonly floor?: number;
  /** Larger JWS texts are refused before anything is decoded; 16 MiB by default. */
  readonly maxBytes?: number;
}

/**
 * The payload of a bundle that passed every check: typ, alg EdDSA, a trusted kid, the
 * signature, the schema and shape, content_sha256, the fleet and the floor. The config is as
 * signed; callers validate it with services/config before they compile it.
 */
export async function verifyBundle(jws: string, options: VerifyOptions): Promise<BundlePayload> {
  return (await verified(jws, options, true)) as BundlePayload;
}

/**
 * The same checks as verifyBundle, the config's hash included, without decoding the config:
 * for a distributor, which passes bundles on and never reads a config. On a 1 MB bundle,
 * parsing the config is about half of verifyBundle's time. A payload not laid out as
 * signBundle writes it is decoded whole all the same, so the checks never depend on layout.
 */
export async function verifyBundleEnvelope(jws: string, options: VerifyOptions): Promise<BundleEnvelope> {
  const { config: _config, ...envelope } = await verified(jws, options, false);
  return envelope;
}

async function verified(
  jws: string,
  options: VerifyOptions,
  decodeConfig: boolean,
): Promise<BundleEnvelope & { config?: unknown }> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BUNDLE_BYTES;
  if (typeof jws !== "string" || jws.length === 0) throw malformed("the bundle is empty");
  if (jws.length > maxBytes) {
    throw new BundleError(
      BundleErrorCode.TooLarge,
      `the bundle is ${jws.length} bytes, over the limit of ${maxBytes}`,
    );
  }
  // ASCII only: the signing input is then exactly these characters, so nothing outside the
  // signed bytes (a character that encodes to the same byte) can change what is decoded.
  if (Buffer.byteLength(jws, "utf8") !== jws.length) throw malformed("the bundle has non-ASCII characters");
  const headerEnd = jws.indexOf(".");
  const payloadEnd = jws.lastIndexOf(".");
  if (headerEnd <= 0 || payloadEnd === headerEnd || jws.indexOf(".", headerEnd + 1) !== payloadEnd) {
    throw malformed("not a compact JWS (three base64url parts separated by dots)");
  }

  const key = keyFor(readHeader(jws.slice(0, headerEnd)), options.keyring);
  checkSignature(jws, payloadEnd, key);

  const text = decodeUtf8(jws.slice(headerEnd + 1, payloadEnd), "payload");
  const { value, configText } = parsePayload(text, decodeConfig);
  const payload = checkPayload(value, configText !== undefined && !decodeConfig);
  if (!hashMatches(payload, configText)) {
    throw new BundleError(
      BundleErrorCode.HashMismatch,
      `content_sha256 ${payload.content_sha256} is not the hash of the config the bundle carries`,
    );
  }
  if (payload.fleet !== options.fleet) {
    throw new BundleError(
      BundleErrorCode.WrongFleet,
      `the bundle is for fleet "${payload.fleet}", not "${options.fleet}"`,
    );
  }
  if (options.floor !== undefined && payload.version <= options.floor) {
    throw new BundleError(
      BundleErrorCode.VersionNotAboveFloor,
      `version ${payload.version} is not above ${options.floor}: a replay or a downgrade (a rollback is published as a new, higher version)`,
    );
  }
  return payload;
}

const BASE64URL = /^[A-Za-z0-9_-]+$/;
const HEADER_PARAMETERS = new Set(["alg", "kid", "typ"]);
/** An Ed25519 signature: 64 bytes, 86 base64url characters. */
const SIGNATURE_CHARS = 86;

function readHeader(part: string): Record<string, unknown> {
  if (!BASE64URL.test(part)) throw malformed("the protected header is not base64url");
  const text = decodeUtf8(part, "protected header");
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch {
    throw malformed("the protected header is not JSON");
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    throw malformed("the protected header is not a JSON object");
  }
  const fields = header as Record<string, unknown>;
  for (const name of Object.keys(fields)) {
    // crit, b64, jku, jwk, x5u…: each would change how the JWS is read or which key checks it.
    if (!HEADER_PARAMETERS.has(name))
      throw malformed(`header parameter "${name}" is not allowed in a bundle`);
  }
  if (fields.typ !== BUNDLE_TYP) {
    throw new BundleError(
      BundleErrorCode.WrongTyp,
      `typ ${JSON.stringify(fields.typ)} is not "${BUNDLE_TYP}": this JWS is not a bundle`,
    );
  }
  if (fields.alg !== SIGNING_ALG) {
    throw new BundleError(
      BundleErrorCode.BadSignature,
      `alg ${JSON.stringify(fields.alg)} is not accepted; bundles are signed with ${SIGNING_ALG} (Ed25519)`,
    );
  }
  return fields;
}

function keyFor(header: Record<string, unknown>, keyring: Keyring): KeyObject {
  const kid = header.kid;
  if (typeof kid !== "string" || kid === "") {
    throw new BundleError(
      BundleErrorCode.UnknownKid,
      "the header names no kid, so no trusted key can check it",
    );
  }
  const key = keyring.get(kid);
  if (key !== undefined) return key;
  throw new BundleError(
    BundleErrorCode.UnknownKid,
    keyring.isRetired(kid)
      ? `key ${kid} is retired and verifies nothing; the bundle must be signed again with an active key`
      : `key ${kid} is not trusted here; add its public key to the trusted keys if it is yours`,
  );
}

function checkSignature(jws: string, payloadEnd: number, key: KeyObject): void {
  const part = jws.slice(payloadEnd + 1);
  let valid = false;
  if (part.length === SIGNATURE_CHARS && BASE64URL.test(part)) {
    try {
      valid = verify(
        null,
        Buffer.from(jws.slice(0, payloadEnd), "latin1"),
        key,
        Buffer.from(part, "base64url"),
      );
    } catch {
      valid = false;
    }
  }
  if (!valid) throw new BundleError(BundleErrorCode.BadSignature, "the signature does not verify");
}

/**
 * Base64url as Node decodes it, leniently: safe here because the text is ASCII and, for the
 * payload, signed, so what is decoded is a function of the signed characters alone.
 */
function decodeUtf8(part: string, what: string): string {
  const bytes = Buffer.from(part, "base64url");
  if (!isUtf8(bytes)) throw malformed(`the ${what} is not UTF-8`);
  return bytes.toString("utf8");
}

const CONFIG_START = '{"config":';
const CONFIG_END = ',"content_sha256":';

/**
 * The payload, and — when it is canonical JSON as signBundle writes it — the config's own
 * text, so its hash is taken on the signed characters instead of serializing the config
 * again. The two halves are parsed apart (the config only with `decodeConfig`); when either
 * does not parse, or the rest repeats `config`, the whole text is parsed as usual, so the
 * value is always what JSON.parse gives.
 */
function parsePayload(
  text: string,
  decodeConfig: boolean,
): { value: unknown; configText: string | undefined } {
  if (text.startsWith(CONFIG_START)) {
    // The last occurrence: after the config come only strings and numbers, which cannot hold
    // this sequence unescaped.
    const end = text.lastIndexOf(CONFIG_END);
    if (end > CONFIG_START.length) {
      const configText = text.slice(CONFIG_START.length, end);
      try {
        const rest: unknown = JSON.parse(`{${text.slice(end + 1)}`);
        if (typeof rest === "object" && rest !== null && !Object.hasOwn(rest, "config")) {
          if (!decodeConfig && isObjectText(configText)) return { value: rest, configText };
          const config: unknown = JSON.parse(configText);
          return { value: { config, ...rest }, configText };
        }
      } catch {
        // Not canonical after all: read it whole below.
      }
    }
  }
  try {
    return { value: JSON.parse(text), configText: undefined };
  } catch {
    throw malformed("the payload is not JSON");
  }
}

/**
 * Whether undecoded config text is one JSON object, for a signed payload in signBundle's
 * layout: `{` … `}` around text in which the separator of the next field was found only last.
 */
function isObjectText(text: string): boolean {
  return text.startsWith("{") && text.endsWith("}");
}

/**
 * For a payload signBundle wrote, the config's signed text is canonicalJson(config), so its
 * hash is contentHash(config) without serializing a megabyte again. A payload serialized
 * otherwise is checked against contentHash(config) — or, if the signer hashed its own text,
 * against that: either way the hash names exactly the config carried.
 */
function hashMatches(
  payload: BundleEnvelope & { config?: unknown },
  configText: string | undefined,
): boolean {
  if (configText !== undefined && sha256Hex(configText) === payload.content_sha256) return true;
  return (
    payload.config !== undefined &&
    contentHash(payload.config as BundlePayload["config"]) === payload.content_sha256
  );
}

function malformed(message: string): BundleError {
  return new BundleError(BundleErrorCode.Malformed, message);
}
