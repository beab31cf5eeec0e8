/**
 * TLS listeners end to end, with certificates made in the test: SNI picks the certificate,
 * HTTP/2 is negotiated by ALPN, client certificates are checked (mTLS), and routes that
 * require TLS or mTLS refuse requests without it.
 */
import { connect } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AgentProcess, startAgent } from "../support/agent-process.js";
import { type CertificateAuthority, createCertificateAuthority, writePemFiles } from "../support/certs.js";
import { createTlsAgent, request } from "../support/http.js";
import { startUpstream, type Upstream } from "../support/upstream.js";

let agent: AgentProcess;
let upstream: Upstream;
let ca: CertificateAuthority;
let clientCa: CertificateAuthority;
let httpsPort: number;
let httpPort: number;

beforeAll(async () => {
  upstream = await startUpstream({ name: "u" });
  [ca, clientCa] = await Promise.all([
    createCertificateAuthority("test ca"),
    createCertificateAuthority("client ca"),
  ]);
  const dir = (await import("node:os")).tmpdir();
  const base = `${dir}/coherent-tls-${process.pid}`;
  const api = await writePemFiles(base, "api", await ca.issueServer({ names: ["api.example.com"] }));
  const wild = await writePemFiles(base, "wild", await ca.issueServer({ names: ["*.apps.example.com"] }));
  const fallback = await writePemFiles(
    base,
    "default",
    await ca.issueServer({ names: ["localhost", "127.0.0.1"] }),
  );
  const clientCaFile = `${base}/client-ca.crt`;
  await (await import("node:fs/promises")).writeFile(clientCaFile, clientCa.certPem);
  agent = await startAgent({
    config: `listeners:
  - address: "127.0.0.1:0"
    protocol: https
  - address: "127.0.0.1:1"
    protocol: http
tls:
  certificates:
    - {cert_file: "${api.certFile}", key_file: "${api.keyFile}", sni: api.example.com}
    - {cert_file: "${wild.certFile}", key_file: "${wild.keyFile}", sni: "*.apps.example.com"}
    - {cert_file: "${fallback.certFile}", key_file: "${fallback.keyFile}"}
  mtls:
    enabled: true
    ca_file: "${clientCaFile}"
    require_client_cert: false
routes:
  - id: secure
    path_prefix: /secure
    pool: p
    require_tls: true
  - id: admin
    path_prefix: /admin
    pool: p
    require_mtls: true
  - id: open
    pool: p
pools:
  - id: p
    endpoints: [{address: "${upstream.address}"}]
`.replace("127.0.0.1:1", "127.0.0.2:0"),
  });
  httpsPort = await agent.port("127.0.0.1:0");
  httpPort = await agent.port("127.0.0.2:0");
});

afterAll(async () => {
  await agent?.stop("SIGKILL");
  await upstream?.close();
});

/** The subject alternative names of the certificate the server presents for `servername`. */
function presentedNames(servername: string): Promise<string> {
  return new Promise((resolve, reject) => {
    // Only looks at the certificate: the default one does not name `servername`, by design.
    const options = {
      host: "127.0.0.1",
      port: httpsPort,
      servername,
      ca: ca.certPem,
      checkServerIdentity: () => undefined,
    };
    const socket = connect(options, () => {
      resolve(socket.getPeerCertificate().subjectaltname ?? "");
      socket.destroy();
    });
    socket.on("error", reject);
  });
}

describe("TLS listeners", () => {
  it("picks the certificate by SNI: exact name, wildcard, then the default", async () => {
    expect(await presentedNames("api.example.com")).toContain("DNS:api.example.com");
    expect(await presentedNames("shop.apps.example.com")).toContain("DNS:*.apps.example.com");
    expect(await presentedNames("other.example.org")).toContain("DNS:localhost");
  });

  it("negotiates HTTP/2 by ALPN and still serves HTTP/1.1 clients", async () => {
    const h2 = createTlsAgent({ ca: ca.certPem, servername: "api.example.com", allowH2: true });
    const viaH2 = await request(`https://127.0.0.1:${httpsPort}/hello`, {
      dispatcher: h2,
      headers: { host: "api.example.com" },
    });
    expect(viaH2.status).toBe(200);
    expect((await viaH2.json<{ headers: Record<string, string> }>()).headers["x-forwarded-proto"]).toBe(
      "https",
    );
    const h1 = createTlsAgent({ ca: ca.certPem, servername: "api.example.com" });
    const viaH1 = await request(`https://127.0.0.1:${httpsPort}/hello`, { dispatcher: h1 });
    expect(viaH1.status).toBe(200);
    await viaH1.drain();
    expect(upstream.requests.at(-2)?.headers["x-forwarded-proto"]).toBe("https");
    await Promise.all([h2.close(), h1.close()]);
  });

  it("refuses a require_tls route over plain HTTP with 403 tls_required", async () => {
    const plain = await request(`http://127.0.0.2:${httpPort}/secure`);
    expect(plain.status).toBe(403);
    expect(await plain.json()).toMatchObject({ error: "tls_required" });
    const secure = createTlsAgent({ ca: ca.certPem, servername: "api.example.com" });
    const res = await request(`https://127.0.0.1:${httpsPort}/secure`, { dispatcher: secure });
    expect(res.status).toBe(200);
    await res.drain();
    await secure.close();
  });

  it("lets a require_mtls route through only with a client certificate from the trusted CA", async () => {
    const client = await clientCa.issueClient({ commonName: "ops" });
    const withCert = createTlsAgent({
      ca: ca.certPem,
      servername: "api.example.com",
      cert: client.certPem,
      key: client.keyPem,
    });
    const ok = await request(`https://127.0.0.1:${httpsPort}/admin`, { dispatcher: withCert });
    expect(ok.status).toBe(200);
    await ok.drain();
    const without = createTlsAgent({ ca: ca.certPem, servername: "api.example.com" });
    const refused = await request(`https://127.0.0.1:${httpsPort}/admin`, { dispatcher: without });
    expect(refused.status).toBe(403);
    expect(await refused.json()).toMatchObject({ error: "mtls_required" });
    const stranger = await ca.issueClient({ commonName: "stranger" });
    const wrongCa = createTlsAgent({
      ca: ca.certPem,
      servername: "api.example.com",
      cert: stranger.certPem,
      key: stranger.keyPem,
    });
    const alsoRefused = await request(`https://127.0.0.1:${httpsPort}/admin`, { dispatcher: wrongCa });
    expect(alsoRefused.status).toBe(403);
    await alsoRefused.drain();
    await Promise.all([withCert.close(), without.close(), wrongCa.close()]);
  });
});

describe("the admin API over TLS and the environment's default certificate", () => {
  it("serves /api/v2 only to clients with a certificate from admin.tls.client_ca_file", async () => {
    const { writeFile: write } = await import("node:fs/promises");
    const base = `${(await import("node:os")).tmpdir()}/coherent-admin-tls-${process.pid}`;
    const server = await writePemFiles(base, "admin", await ca.issueServer({ names: ["127.0.0.1"] }));
    const proxyCert = await writePemFiles(
      base,
      "proxy",
      await ca.issueServer({ names: ["127.0.0.1", "localhost"] }),
    );
    const clientCaFile = `${base}/ops-ca.crt`;
    await write(clientCaFile, clientCa.certPem);
    const secured = await startAgent({
      config: `listeners:\n  - address: "127.0.0.1:0"\n    protocol: https\nroutes:\n  - id: r\n    pool: p\npools:\n  - id: p\n    endpoints: [{address: "${upstream.address}"}]\n`,
      staticConfig: `admin:\n  tls:\n    cert_file: "${server.certFile}"\n    key_file: "${server.keyFile}"\n    client_ca_file: "${clientCaFile}"\n    require_client_cert: true\n`,
      env: { PROXY_TLS_CERT: proxyCert.certFile, PROXY_TLS_KEY: proxyCert.keyFile },
    });
    try {
      const adminUrl = secured.adminUrl.replace("http://", "https://");
      const ops = await clientCa.issueClient({ commonName: "ops" });
      const trusted = createTlsAgent({ ca: ca.certPem, cert: ops.certPem, key: ops.keyPem });
      const res = await request(`${adminUrl}/api/v2/listeners`, {
        dispatcher: trusted,
        headers: { authorization: "Bearer test-admin-token-0123456789" },
      });
      expect(res.status).toBe(200);
      const { listeners } = await res.json<{ listeners: Array<{ port: number }> }>();
      const anonymous = createTlsAgent({ ca: ca.certPem });
      await expect(request(`${adminUrl}/healthz`, { dispatcher: anonymous })).rejects.toThrow();
      // The https listener has no certificate in the config: PROXY_TLS_CERT/KEY serve.
      const viaProxy = await request(`https://127.0.0.1:${listeners[0]?.port}/x`, { dispatcher: trusted });
      expect(viaProxy.status).toBe(200);
      await viaProxy.drain();
      await Promise.all([trusted.close(), anonymous.close()]);
    } finally {
      await secured.stop("SIGKILL");
    }
  });
});
