/**
 * Certificates for https listeners: read from their files before a swap (so a missing file
 * rejects the config instead of breaking handshakes), and chosen per connection by SNI —
 * exact name, then the longest wildcard, then the default certificate.
 */
import { readFile } from "node:fs/promises";
import { createSecureContext, type SecureContext } from "node:tls";
import type { Certificate, TlsConfig } from "../../services/config/index.js";
import { hostPatternKind } from "../../services/config/index.js";

export interface TlsMaterial {
  readonly exact: ReadonlyMap<string, SecureContext>;
  /** Wildcard suffixes (".example.com"), longest first. */
  readonly wildcards: ReadonlyArray<readonly [string, SecureContext]>;
  readonly fallback: SecureContext | undefined;
  /** PEM of the default certificate, for clients that send no SNI. */
  readonly defaultPem: { readonly cert: Buffer; readonly key: Buffer } | undefined;
  readonly mtls: { readonly ca: Buffer; readonly requireClientCert: boolean } | undefined;
  readonly minVersion: "TLSv1.2" | "TLSv1.3";
}

export interface TlsLoadError {
  readonly path: string;
  readonly message: string;
}

export interface DefaultCertificate {
  readonly certFile: string;
  readonly keyFile: string;
}

/**
 * Reads every certificate of the config. `fallback` is the static config's certificate
 * (PROXY_TLS_CERT/KEY), used when the config names no default one.
 */
export async function loadTlsMaterial(
  tls: TlsConfig | undefined,
  fallback: DefaultCertificate | undefined,
): Promise<{ ok: true; value: TlsMaterial | undefined } | { ok: false; errors: TlsLoadError[] }> {
  const certificates: Array<{ cert: Certificate | DefaultCertificate; path: string }> = (
    tls?.certificates ?? []
  ).map((cert, i) => ({ cert, path: `tls.certificates[${i}]` }));
  if (fallback && !certificates.some(({ cert }) => "cert_file" in cert && cert.sni === undefined)) {
    certificates.push({ cert: fallback, path: "static tls" });
  }
  if (certificates.length === 0 && !tls?.mtls?.enabled) return { ok: true, value: undefined };

  const errors: TlsLoadError[] = [];
  const read = async (file: string, path: string) => {
    try {
      return await readFile(file);
    } catch (error) {
      errors.push({ path, message: `cannot read ${file}: ${(error as Error).message}` });
      return undefined;
    }
  };
  const mtlsCa =
    tls?.mtls?.enabled && tls.mtls.ca_file ? await read(tls.mtls.ca_file, "tls.mtls.ca_file") : undefined;
  const minVersion = tls?.min_version ?? "TLSv1.2";

  const exact = new Map<string, SecureContext>();
  const wildcards: Array<[string, SecureContext]> = [];
  let defaultContext: SecureContext | undefined;
  let defaultPem: TlsMaterial["defaultPem"];
  for (const { cert, path } of certificates) {
    const certFile = "cert_file" in cert ? cert.cert_file : cert.certFile;
    const keyFile = "key_file" in cert ? cert.key_file : cert.keyFile;
    const [certPem, keyPem] = await Promise.all([
      read(certFile, `${path}.cert_file`),
      read(keyFile, `${path}.key_file`),
    ]);
    if (!certPem || !keyPem) continue;
    let context: SecureContext;
    try {
      // Every context carries the client CA: with SNI, the chosen context is the one that
      // verifies client certificates.
      context = createSecureContext({ cert: certPem, key: keyPem, ca: mtlsCa, minVersion });
    } catch (error) {
      errors.push({ path, message: `invalid certificate or key: ${(error as Error).message}` });
      continue;
    }
    const names = "sni" in cert && cert.sni !== undefined ? [cert.sni].flat() : [];
    if (names.length === 0) {
      defaultContext = context;
      defaultPem = { cert: certPem, key: keyPem };
    }
    for (const name of names) {
      const kind = hostPatternKind(name);
      if (kind === "wildcard") wildcards.push([name.slice(1), context]);
      else if (kind === "exact") exact.set(name, context);
    }
  }
  if (errors.length > 0) return { ok: false, errors };
  wildcards.sort((a, b) => b[0].length - a[0].length);
  return {
    ok: true,
    value: {
      exact,
      wildcards,
      fallback: defaultContext,
      defaultPem,
      mtls: mtlsCa ? { ca: mtlsCa, requireClientCert: tls?.mtls?.require_client_cert === true } : undefined,
      minVersion,
    },
  };
}

/** The context for a server name: exact, then the longest wildcard, then the default. */
export function contextFor(material: TlsMaterial, servername: string): SecureContext | undefined {
  const name = servername.toLowerCase();
  const exact = material.exact.get(name);
  if (exact) return exact;
  for (const [suffix, context] of material.wildcards) {
    if (name.endsWith(suffix) && name.length > suffix.length) return context;
  }
  return material.fallback;
}
