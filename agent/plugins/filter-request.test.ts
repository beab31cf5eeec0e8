import { once } from "node:events";
import type { IncomingMessage, ServerResponse } from "node:http";
import {
  createSecureServer,
  type Http2ServerRequest,
  type Http2ServerResponse,
  connect as h2connect,
} from "node:http2";
import { createServer as createHttpsServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ConnectionTls } from "../../proto/coherent/v1/filter.js";
import {
  type CertificateAuthority,
  createCertificateAuthority,
  type PemPair,
} from "../../test/support/certs.js";
import { createTlsAgent, request as httpRequest } from "../../test/support/http.js";
import { connectionTls, filterRequest } from "./filter-request.js";

function fakeRequest(fields: { url?: string; headers?: Record<string, string | string[]> }): IncomingMessage {
  return {
    method: "POST",
    url: fields.url ?? "/raw/../path?q=1",
    headers: fields.headers ?? { host: "api.example.com" },
    socket: { remoteAddress: "10.0.0.7" },
  } as unknown as IncomingMessage;
}

describe("filterRequest", () => {
  it("describes the request as the upstream will receive it", () => {
    const message = filterRequest({
      req: fakeRequest({}),
      requestId: "req-1",
      routeId: "api",
      path: "/path?q=1",
      upstreamHeaders: { accept: "*/*", "set-cookie": ["a=1", "b=2"], "x-request-id": "req-1" },
      claims: { sub: "u-1", roles: ["admin"] },
    });
    expect(message).toEqual({
      requestId: "req-1",
      routeId: "api",
      method: "POST",
      path: "/path?q=1",
      host: "api.example.com",
      clientAddress: "10.0.0.7",
      headers: [
        { name: "accept", value: "*/*" },
        { name: "set-cookie", value: "a=1" },
        { name: "set-cookie", value: "b=2" },
        { name: "x-request-id", value: "req-1" },
      ],
      tls: { encrypted: false, clientCertSubject: "" },
      jwtClaimsJson: '{"sub":"u-1","roles":["admin"]}',
    });
  });

  it("falls back to the request's own target, and takes the host of an HTTP/2 request from :authority", () => {
    const message = filterRequest({
      req: fakeRequest({ headers: { ":authority": "h2.example.com" } }),
      requestId: "req-2",
      routeId: "api",
      upstreamHeaders: {},
    });
    expect(message).toMatchObject({ path: "/raw/../path?q=1", host: "h2.example.com", headers: [] });
    expect(message.jwtClaimsJson).toBeUndefined();
  });
});

describe("connectionTls over real TLS", () => {
  let ca: CertificateAuthority;
  let server: PemPair;
  let client: PemPair;

  beforeAll(async () => {
    ca = await createCertificateAuthority("plugins-test-ca");
    server = await ca.issueServer({ names: ["127.0.0.1"] });
    client = await ca.issueClient({ commonName: "billing" });
  });

  const tlsOptions = () => ({
    cert: server.certPem,
    key: server.keyPem,
    ca: ca.certPem,
    requestCert: true,
    rejectUnauthorized: false,
  });

  function record(seen: ConnectionTls[]) {
    return (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) => {
      seen.push(connectionTls(req));
      res.end("ok");
    };
  }

  describe("HTTP/1.1", () => {
    const seen: ConnectionTls[] = [];
    let https: Server;
    let url: string;

    beforeAll(async () => {
      https = createHttpsServer(tlsOptions(), record(seen));
      https.listen(0, "127.0.0.1");
      await once(https, "listening");
      url = `https://127.0.0.1:${(https.address() as AddressInfo).port}/`;
    });
    afterAll(() => {
      https.closeAllConnections();
      https.close();
    });

    it("gives the subject of a verified client certificate", async () => {
      const dispatcher = createTlsAgent({ ca: ca.certPem, cert: client.certPem, key: client.keyPem });
      await (await httpRequest(url, { dispatcher })).text();
      await dispatcher.close();
      expect(seen.at(-1)).toEqual({ encrypted: true, clientCertSubject: "CN=billing" });
    });

    it("says encrypted without a subject when the client sent no certificate", async () => {
      const dispatcher = createTlsAgent({ ca: ca.certPem });
      await (await httpRequest(url, { dispatcher })).text();
      await dispatcher.close();
      expect(seen.at(-1)).toEqual({ encrypted: true, clientCertSubject: "" });
    });

    it("never names an unverified certificate", async () => {
      const stranger = await (await createCertificateAuthority("other-ca")).issueClient({
        commonName: "mallory",
      });
      const dispatcher = createTlsAgent({ ca: ca.certPem, cert: stranger.certPem, key: stranger.keyPem });
      await (await httpRequest(url, { dispatcher })).text();
      await dispatcher.close();
      expect(seen.at(-1)).toEqual({ encrypted: true, clientCertSubject: "" });
    });
  });

  it("reads the certificate once per HTTP/2 session, not per stream", async () => {
    const seen: ConnectionTls[] = [];
    const h2 = createSecureServer(tlsOptions(), record(seen));
    h2.listen(0, "127.0.0.1");
    await once(h2, "listening");
    const session = h2connect(`https://127.0.0.1:${(h2.address() as AddressInfo).port}`, {
      ca: ca.certPem,
      cert: client.certPem,
      key: client.keyPem,
    });
    for (let i = 0; i < 2; i++) {
      const stream = session.request({ ":path": "/" });
      stream.resume();
      await once(stream, "end");
    }
    session.close();
    h2.close();
    expect(seen).toHaveLength(2);
    expect(seen[0]).toEqual({ encrypted: true, clientCertSubject: "CN=billing" });
    expect(seen[1]).toBe(seen[0]);
  });
});
