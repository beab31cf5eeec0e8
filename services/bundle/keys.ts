/**
 * Signing keys: made by `coherent keys generate` (or the authority's dev default), read by the
 * authority from a file or an environment variable — never from the database, which holds
 * only the public halves. Only Ed25519 in PKCS#8 PEM is accepted.
 */
import { createPrivateKey, createPublicKey, type KeyObject, type webcrypto } from "node:crypto";
import { mkdir, readFile, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { exportPKCS8, exportSPKI, generateKeyPair, importPKCS8, type JWK } from "jose";
import { publicJwkOf, SIGNING_ALG } from "./ed25519.js";
import { KeyError, KeyErrorCode } from "./errors.js";

export interface SigningKey {
  /** RFC 7638 thumbprint of the public JWK: the `kid` of every bundle this key signs. */
  readonly kid: string;
  readonly privateKey: webcrypto.CryptoKey | KeyObject;
  readonly publicJwk: JWK;
}

export interface GeneratedKey {
  readonly key: SigningKey;
  readonly privatePem: string;
  readonly publicPem: string;
  readonly publicJwk: JWK;
}

export async function generateSigningKey(): Promise<GeneratedKey> {
  const pair = await generateKeyPair(SIGNING_ALG, { crv: "Ed25519", extractable: true });
  const publicPem = await exportSPKI(pair.publicKey);
  const publicJwk = await publicJwkOf(createPublicKey(publicPem));
  return {
    key: { kid: publicJwk.kid, privateKey: pair.privateKey, publicJwk },
    privatePem: await exportPKCS8(pair.privateKey),
    publicPem,
    publicJwk,
  };
}

export interface WrittenKeyPair {
  readonly kid: string;
  readonly privateFile: string;
  readonly publicFile: string;
  readonly publicJwk: JWK;
}

const KEY_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

/**
 * Writes a new pair as `<name>.key.pem` (0600) and `<name>.pub.pem` (0644) in `dir`, made
 * 0700 if it is new. Never overwrites: if either file exists, nothing is left behind and
 * `key_exists` is thrown.
 */
export async function writeKeyPair(dir: string, name = "signing"): Promise<WrittenKeyPair> {
  if (!KEY_NAME.test(name)) {
    throw new KeyError(
      KeyErrorCode.Invalid,
      `key name "${name}" must be a plain file name (letters, digits, . _ -)`,
    );
  }
  const generated = await generateSigningKey();
  const privateFile = join(dir, `${name}.key.pem`);
  const publicFile = join(dir, `${name}.pub.pem`);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await createFile(privateFile, generated.privatePem, 0o600);
  try {
    await createFile(publicFile, generated.publicPem, 0o644);
  } catch (err) {
    await unlink(privateFile);
    throw err;
  }
  return { kid: generated.key.kid, privateFile, publicFile, publicJwk: generated.publicJwk };
}

async function createFile(file: string, text: string, mode: number): Promise<void> {
  try {
    await writeFile(file, text, { flag: "wx", mode });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    throw new KeyError(
      KeyErrorCode.Exists,
      `${file} already exists; keys are never overwritten — choose another directory or name, or move the old key away first`,
      { cause: err },
    );
  }
}

export interface SigningKeySource {
  /** A PKCS#8 PEM file, as written by writeKeyPair. */
  readonly file?: string;
  /** The PEM text itself, e.g. from COHERENT_SIGNING_KEY; `\n` escapes are accepted for one-line variables. */
  readonly pem?: string;
  /** Where `pem` came from, for messages (e.g. "COHERENT_SIGNING_KEY"). */
  readonly label?: string;
}

/** Reads an Ed25519 private key; every refusal is a KeyError whose message says what was found instead. */
export async function loadSigningKey(source: SigningKeySource): Promise<SigningKey> {
  if ((source.file === undefined) === (source.pem === undefined)) {
    throw new KeyError(KeyErrorCode.NoSource, "give the signing key as exactly one of a file or a PEM text");
  }
  const where = source.file ?? source.label ?? "the signing key PEM";
  const pem = normalizePem(source.file === undefined ? (source.pem ?? "") : await readKeyFile(source.file));
  const keyObject = parsePrivateKey(pem, where);
  const publicJwk = await publicJwkOf(keyObject, where);
  const pkcs8 = keyObject.export({ type: "pkcs8", format: "pem" }).toString();
  return { kid: publicJwk.kid, privateKey: await importPKCS8(pkcs8, SIGNING_ALG), publicJwk };
}

async function readKeyFile(file: string): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch (err) {
    throw new KeyError(
      KeyErrorCode.Unreadable,
      `cannot read signing key file ${file}: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

/** One-line environment variables often carry the PEM's newlines as the two characters `\n`. */
function normalizePem(text: string): string {
  const trimmed = text.trim();
  return trimmed.includes("\n") ? trimmed : trimmed.replaceAll("\\n", "\n");
}

function parsePrivateKey(pem: string, where: string): KeyObject {
  const label = /-----BEGIN ([A-Z0-9 ]+)-----/.exec(pem)?.[1];
  if (label === undefined) {
    throw new KeyError(
      KeyErrorCode.Invalid,
      `${where} is not a PEM key; expected an Ed25519 private key in PKCS#8 PEM ("-----BEGIN PRIVATE KEY-----")`,
    );
  }
  if (label === "PUBLIC KEY" || label === "CERTIFICATE") {
    throw new KeyError(
      KeyErrorCode.WrongType,
      `${where} holds a ${label.toLowerCase()}; signing needs the private key (the .key.pem file of the pair)`,
    );
  }
  if (label === "ENCRYPTED PRIVATE KEY") {
    throw new KeyError(
      KeyErrorCode.WrongType,
      `${where} is encrypted; give the key unencrypted (openssl pkcs8 -in KEY -out PLAIN) and protect the file instead`,
    );
  }
  try {
    return createPrivateKey(pem);
  } catch (err) {
    throw new KeyError(
      KeyErrorCode.Invalid,
      `${where} is not a readable private key (${(err as Error).message}); expected Ed25519 in PKCS#8 PEM`,
      { cause: err },
    );
  }
}
