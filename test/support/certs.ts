/**
 * In-process certificates for tests that run real TLS on loopback: a throwaway certificate
 * authority that issues server and client leaves, and a one-call self-signed server cert.
 *
 * Keys are ECDSA P-256 from WebCrypto because generating one takes well under a millisecond,
 * so every test file can mint its own PKI instead of sharing fixtures on disk. Every PEM this
 * module returns is accepted as-is by `tls.createSecureContext` (`cert`, `key`, `ca`).
 */
// @peculiar/x509 resolves its algorithm providers through tsyringe, which needs the Reflect
// metadata API; the polyfill must load before the library.
import "reflect-metadata";
import { webcrypto } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { isIP } from "node:net";
import { join } from "node:path";
import type { Extension, JsonGeneralName } from "@peculiar/x509";
import {
  AuthorityKeyIdentifierExtension,
  BasicConstraintsExtension,
  ExtendedKeyUsage,
  ExtendedKeyUsageExtension,
  KeyUsageFlags,
  KeyUsagesExtension,
  PemConverter,
  SubjectAlternativeNameExtension,
  SubjectKeyIdentifierExtension,
  X509CertificateGenerator,
} from "@peculiar/x509";

/** A certificate and its private key, both PEM: `-----BEGIN CERTIFICATE-----` and PKCS#8 `PRIVATE KEY`. */
export interface PemPair {
  readonly certPem: string;
  readonly keyPem: string;
}

/** Validity window; both default to "valid now for a day", so tests can mint expired or not-yet-valid certs. */
export interface Validity {
  readonly notBefore?: Date;
  readonly notAfter?: Date;
}

export interface IssueServerOptions extends Validity {
  /** DNS names and IP literals, written as SANs (IP SANs for anything `net.isIP` accepts). Must not be empty. */
  readonly names: readonly string[];
  /** Subject CN; defaults to the first name. Clients match SANs, never the CN. */
  readonly commonName?: string;
}

export interface IssueClientOptions extends Validity {
  readonly commonName: string;
  /** Optional SANs (e.g. a SPIFFE-like DNS name) for tests that check more than the CN. */
  readonly names?: readonly string[];
}

export interface CertificateAuthority {
  readonly name: string;
  /** The CA certificate: what a peer puts in its `ca` option to trust leaves from this CA. */
  readonly certPem: string;
  readonly keyPem: string;
  /** A leaf for TLS servers: serverAuth EKU, SANs from `names`. */
  issueServer(options: IssueServerOptions): Promise<PemPair>;
  /** A leaf for TLS clients (mTLS): clientAuth EKU, subject CN `commonName`. */
  issueClient(options: IssueClientOptions): Promise<PemPair>;
}

export interface PemFiles {
  readonly certFile: string;
  readonly keyFile: string;
}

// Node's WebCrypto, passed explicitly to every @peculiar/x509 call so this module never
// depends on (or changes) the library's global crypto provider.
const crypto = webcrypto;

const EC_KEY: webcrypto.EcKeyGenParams = { name: "ECDSA", namedCurve: "P-256" };
const SIGNING: webcrypto.EcdsaParams = { name: "ECDSA", hash: "SHA-256" };
const DAY_MS = 86_400_000;
// Backdated so a peer whose clock reads slightly behind ours still accepts a fresh cert.
const CLOCK_SKEW_MS = 60_000;

/**
 * Creates a root CA named `name` (subject `CN=<name>`). Call once per test file; the CA lives
 * only in memory, so distinct CAs never trust each other's leaves.
 */
export async function createCertificateAuthority(
  name: string,
  validity: Validity = {},
): Promise<CertificateAuthority> {
  const keys = await generateKeys();
  const subject = `CN=${escapeDn(name)}`;
  const cert = await X509CertificateGenerator.createSelfSigned(
    {
      name: subject,
      keys,
      serialNumber: randomSerial(),
      ...window(validity, 30),
      signingAlgorithm: SIGNING,
      extensions: [
        new BasicConstraintsExtension(true, 0, true),
        new KeyUsagesExtension(KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign, true),
        await SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  const authorityKeyId = await AuthorityKeyIdentifierExtension.create(keys.publicKey, false, crypto);

  const issue = async (
    commonName: string,
    names: readonly string[],
    usage: string,
    validity: Validity,
  ): Promise<PemPair> => {
    const leafKeys = await generateKeys();
    const extensions: Extension[] = [
      new BasicConstraintsExtension(false, undefined, true),
      new KeyUsagesExtension(KeyUsageFlags.digitalSignature, true),
      new ExtendedKeyUsageExtension([usage], false),
      await SubjectKeyIdentifierExtension.create(leafKeys.publicKey, false, crypto),
      authorityKeyId,
    ];
    if (names.length > 0) extensions.push(new SubjectAlternativeNameExtension(generalNames(names), false));
    const leaf = await X509CertificateGenerator.create(
      {
        subject: `CN=${escapeDn(commonName)}`,
        issuer: cert.subject,
        publicKey: leafKeys.publicKey,
        signingKey: keys.privateKey,
        serialNumber: randomSerial(),
        ...window(validity, 1),
        signingAlgorithm: SIGNING,
        extensions,
      },
      crypto,
    );
    return { certPem: leaf.toString("pem"), keyPem: await exportKey(leafKeys.privateKey) };
  };

  return {
    name,
    certPem: cert.toString("pem"),
    keyPem: await exportKey(keys.privateKey),
    async issueServer(options) {
      if (options.names.length === 0) {
        throw new TypeError(
          "issueServer: names is empty, pass at least one DNS name or IP (e.g. 'localhost')",
        );
      }
      const commonName = options.commonName ?? options.names[0]!;
      return issue(commonName, options.names, ExtendedKeyUsage.serverAuth, options);
    },
    async issueClient(options) {
      return issue(options.commonName, options.names ?? [], ExtendedKeyUsage.clientAuth, options);
    },
  };
}

/**
 * A self-signed server certificate for `names` (SANs, CN = first name). A client trusts it by
 * passing its `certPem` as `ca`. Use a CA instead when the test needs client certs or two
 * servers trusted by one anchor.
 */
export async function selfSigned(names: readonly string[], validity: Validity = {}): Promise<PemPair> {
  if (names.length === 0) {
    throw new TypeError("selfSigned: names is empty, pass at least one DNS name or IP (e.g. 'localhost')");
  }
  const keys = await generateKeys();
  const cert = await X509CertificateGenerator.createSelfSigned(
    {
      name: `CN=${escapeDn(names[0]!)}`,
      keys,
      serialNumber: randomSerial(),
      ...window(validity, 1),
      signingAlgorithm: SIGNING,
      // No KeyUsage extension: OpenSSL only treats a self-signed leaf as its own trust anchor
      // when its key may sign certificates, and a digitalSignature-only KeyUsage forbids that.
      extensions: [
        new BasicConstraintsExtension(false, undefined, true),
        new ExtendedKeyUsageExtension([ExtendedKeyUsage.serverAuth], false),
        new SubjectAlternativeNameExtension(generalNames(names), false),
      ],
    },
    crypto,
  );
  return { certPem: cert.toString("pem"), keyPem: await exportKey(keys.privateKey) };
}

/**
 * Writes `<dir>/<name>.crt` and `<dir>/<name>.key` (key mode 0600, creating `dir` if needed) for
 * code under test that takes file paths, such as the static config's TLS section.
 */
export async function writePemFiles(dir: string, name: string, pair: PemPair): Promise<PemFiles> {
  await mkdir(dir, { recursive: true });
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  await writeFile(certFile, pair.certPem);
  await writeFile(keyFile, pair.keyPem, { mode: 0o600 });
  return { certFile, keyFile };
}

async function generateKeys(): Promise<webcrypto.CryptoKeyPair> {
  // Extractable so the private key can be exported to PEM for node:tls.
  return crypto.subtle.generateKey(EC_KEY, true, ["sign", "verify"]);
}

async function exportKey(key: webcrypto.CryptoKey): Promise<string> {
  const pkcs8 = await crypto.subtle.exportKey("pkcs8", key);
  return `${PemConverter.encode(pkcs8, "PRIVATE KEY")}\n`;
}

function generalNames(names: readonly string[]): JsonGeneralName[] {
  return names.map((value) => ({ type: isIP(value) === 0 ? "dns" : "ip", value }));
}

function window(validity: Validity, defaultDays: number): { notBefore: Date; notAfter: Date } {
  const notBefore = validity.notBefore ?? new Date(Date.now() - CLOCK_SKEW_MS);
  const notAfter = validity.notAfter ?? new Date(notBefore.getTime() + defaultDays * DAY_MS);
  return { notBefore, notAfter };
}

// Positive 16-byte serial: distinct per cert so a peer's session cache never confuses two leaves.
function randomSerial(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[0] = bytes[0]! & 0x7f;
  return Buffer.from(bytes).toString("hex");
}

// RFC 4514 escaping for the few characters a test name might plausibly contain.
function escapeDn(value: string): string {
  return value.replace(/[,+"\\<>;=]/g, (c) => `\\${c}`);
}
