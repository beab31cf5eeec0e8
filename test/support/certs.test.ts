import { readFile, rm, stat } from "node:fs/promises";
import { createServer as createHttpsServer, request as httpsRequest, type ServerOptions } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createSecureContext, type TLSSocket } from "node:tls";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  type CertificateAuthority,
  createCertificateAuthority,
  type PemPair,
  selfSigned,
  writePemFiles,
} from "./certs.js";

interface Seen {
  readonly servername: string | null;
  readonly clientCommonName: string | null;
}

interface TlsServer {
  readonly port: number;
  readonly seen: Seen[];
  /** Errors from handshakes the server refused. */
  readonly refusals: Error[];
  close(): Promise<void>;
}

const servers: TlsServer[] = [];

afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

// An https server on loopback that answers "ok" and remembers the SNI and client CN it saw.
async function startTlsServer(options: ServerOptions): Promise<TlsServer> {
  const seen: Seen[] = [];
  const refusals: Error[] = [];
  const server = createHttpsServer(options, (req, res) => {
    const socket = req.socket as TLSSocket;
    const cn: unknown = socket.authorized ? socket.getPeerCertificate().subject?.CN : undefined;
    seen.push({
      servername: typeof socket.servername === "string" ? socket.servername : null,
      clientCommonName: typeof cn === "string" ? cn : null,
    });
    res.end("ok");
  });
  server.on("tlsClientError", (error) => refusals.push(error));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const handle: TlsServer = {
    port: (server.address() as AddressInfo).port,
    seen,
    refusals,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  servers.push(handle);
  return handle;
}

interface GetOptions {
  readonly ca: string;
  readonly servername?: string;
  readonly client?: PemPair;
}

// One GET on a fresh connection; resolves with the body or rejects with the TLS error.
function get(port: number, options: GetOptions): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const req = httpsRequest(
      {
        host: "127.0.0.1",
        port,
        path: "/",
        agent: false,
        ca: options.ca,
        timeout: 2_000,
        ...(options.servername === undefined ? {} : { servername: options.servername }),
        ...(options.client === undefined ? {} : { cert: options.client.certPem, key: options.client.keyPem }),
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          body += chunk;
        });
        res.on("end", () => resolve(body));
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", reject);
    req.end();
  });
}

describe("test certificates", { timeout: 5_000 }, () => {
  let ca: CertificateAuthority;
  let server: PemPair;

  beforeAll(async () => {
    ca = await createCertificateAuthority("Coherent Test CA");
    server = await ca.issueServer({ names: ["api.example.com", "localhost", "127.0.0.1"] });
  });

  it("produces PEM that node's createSecureContext accepts", () => {
    expect(server.certPem).toMatch(/^-----BEGIN CERTIFICATE-----/);
    expect(server.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(() =>
      createSecureContext({ cert: server.certPem, key: server.keyPem, ca: ca.certPem }),
    ).not.toThrow();
  });

  it("a server cert is trusted through the CA for each DNS SAN named by SNI", async () => {
    const tls = await startTlsServer({ cert: server.certPem, key: server.keyPem });
    await expect(get(tls.port, { ca: ca.certPem, servername: "api.example.com" })).resolves.toBe("ok");
    await expect(get(tls.port, { ca: ca.certPem, servername: "localhost" })).resolves.toBe("ok");
    expect(tls.seen.map((s) => s.servername)).toEqual(["api.example.com", "localhost"]);
  });

  it("a server cert is trusted for its IP SAN when the client connects by address", async () => {
    const tls = await startTlsServer({ cert: server.certPem, key: server.keyPem });
    await expect(get(tls.port, { ca: ca.certPem })).resolves.toBe("ok");
  });

  it("a name outside the SANs is refused", async () => {
    const tls = await startTlsServer({ cert: server.certPem, key: server.keyPem });
    await expect(get(tls.port, { ca: ca.certPem, servername: "other.example.com" })).rejects.toMatchObject({
      code: "ERR_TLS_CERT_ALTNAME_INVALID",
    });
  });

  it("a server cert from another CA is refused", async () => {
    const other = await createCertificateAuthority("Other CA");
    const tls = await startTlsServer({ cert: server.certPem, key: server.keyPem });
    await expect(get(tls.port, { ca: other.certPem, servername: "localhost" })).rejects.toMatchObject({
      code: "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
    });
  });

  it("an expired server cert is refused", async () => {
    const expired = await ca.issueServer({
      names: ["localhost"],
      notBefore: new Date(Date.now() - 10 * 86_400_000),
      notAfter: new Date(Date.now() - 86_400_000),
    });
    const tls = await startTlsServer({ cert: expired.certPem, key: expired.keyPem });
    await expect(get(tls.port, { ca: ca.certPem, servername: "localhost" })).rejects.toMatchObject({
      code: "CERT_HAS_EXPIRED",
    });
  });

  it("a client cert from the CA is verified by a server requiring one", async () => {
    const client = await ca.issueClient({ commonName: "agent-1" });
    const tls = await startTlsServer({
      cert: server.certPem,
      key: server.keyPem,
      ca: ca.certPem,
      requestCert: true,
      rejectUnauthorized: true,
    });
    await expect(get(tls.port, { ca: ca.certPem, servername: "localhost", client })).resolves.toBe("ok");
    expect(tls.seen).toEqual([{ servername: "localhost", clientCommonName: "agent-1" }]);
  });

  it("a client cert from an untrusted CA is refused in the handshake", async () => {
    const rogue = await createCertificateAuthority("Rogue CA");
    const client = await rogue.issueClient({ commonName: "intruder" });
    const tls = await startTlsServer({
      cert: server.certPem,
      key: server.keyPem,
      ca: ca.certPem,
      requestCert: true,
      rejectUnauthorized: true,
    });
    await expect(get(tls.port, { ca: ca.certPem, servername: "localhost", client })).rejects.toThrow();
    expect(tls.seen).toEqual([]);
    expect(tls.refusals.length).toBe(1);
  });

  it("a client without a cert is refused by a server requiring one", async () => {
    const tls = await startTlsServer({
      cert: server.certPem,
      key: server.keyPem,
      ca: ca.certPem,
      requestCert: true,
      rejectUnauthorized: true,
    });
    await expect(get(tls.port, { ca: ca.certPem, servername: "localhost" })).rejects.toThrow();
    expect(tls.seen).toEqual([]);
  });

  it("a self-signed cert is trusted by a client that pins it as its CA", async () => {
    const pair = await selfSigned(["localhost", "127.0.0.1"]);
    const tls = await startTlsServer({ cert: pair.certPem, key: pair.keyPem });
    await expect(get(tls.port, { ca: pair.certPem, servername: "localhost" })).resolves.toBe("ok");
    await expect(get(tls.port, { ca: pair.certPem })).resolves.toBe("ok");
    await expect(get(tls.port, { ca: ca.certPem, servername: "localhost" })).rejects.toThrow();
  });

  it("writePemFiles writes a cert and a private key only the owner can read", async () => {
    const dir = join(tmpdir(), `coherent-certs-${process.pid}-${Date.now()}`);
    try {
      const files = await writePemFiles(join(dir, "nested"), "api", server);
      expect(files.certFile).toBe(join(dir, "nested", "api.crt"));
      expect(files.keyFile).toBe(join(dir, "nested", "api.key"));
      expect(await readFile(files.certFile, "utf8")).toBe(server.certPem);
      expect(await readFile(files.keyFile, "utf8")).toBe(server.keyPem);
      expect((await stat(files.keyFile)).mode & 0o777).toBe(0o600);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("rejects a server cert request without names, saying what to pass", async () => {
    await expect(ca.issueServer({ names: [] })).rejects.toThrow(/at least one DNS name or IP/);
    await expect(selfSigned([])).rejects.toThrow(/at least one DNS name or IP/);
  });
});
