/**
 * TLS for the control plane's gRPC hops (authority ← distributor ← agent), from PEM files
 * named in flags or config. Read once at start: a file that cannot be read stops the start,
 * since a server that fell back to plaintext would be worse than one that does not run.
 */
import { readFile } from "node:fs/promises";
import { type ChannelCredentials, credentials, ServerCredentials } from "@grpc/grpc-js";

export interface ServerTlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
  /** When given, clients must present a certificate this CA signed (mTLS). */
  readonly clientCaFile?: string;
}

export interface ClientTlsFiles {
  /** The CA that signed the server's certificate; the system's roots when not given. */
  readonly caFile?: string;
  /** A client certificate and its key, for a server that requires one (mTLS). */
  readonly certFile?: string;
  readonly keyFile?: string;
}

/** Plaintext when `tls` is undefined. */
export async function serverCredentials(tls: ServerTlsFiles | undefined): Promise<ServerCredentials> {
  if (tls === undefined) return ServerCredentials.createInsecure();
  const [cert, key, clientCa] = await Promise.all([
    readFile(tls.certFile),
    readFile(tls.keyFile),
    tls.clientCaFile === undefined ? null : readFile(tls.clientCaFile),
  ]);
  return ServerCredentials.createSsl(clientCa, [{ cert_chain: cert, private_key: key }], clientCa !== null);
}

/** Plaintext when `tls` is undefined. Callers check that a certificate comes with its key. */
export async function channelCredentials(tls: ClientTlsFiles | undefined): Promise<ChannelCredentials> {
  if (tls === undefined) return credentials.createInsecure();
  const read = (file: string | undefined) => (file === undefined ? null : readFile(file));
  const [ca, key, cert] = await Promise.all([read(tls.caFile), read(tls.keyFile), read(tls.certFile)]);
  return credentials.createSsl(ca, key, cert);
}
