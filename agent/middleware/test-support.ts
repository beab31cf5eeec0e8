/**
 * For the middleware tests: signing keys, tokens, a JWKS (and OpenID discovery) server on
 * loopback that counts what it serves, and request contexts.
 */
import { once } from "node:events";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { type CryptoKey, exportJWK, generateKeyPair, type JWK, type JWTPayload, SignJWT } from "jose";
import type { ClientRequest } from "../proxy/engine.js";
import type { MiddlewareContext } from "./middleware.js";

export interface SigningKey {
  readonly kid: string;
  readonly alg: string;
  readonly privateKey: CryptoKey;
  /** The public key as a JWKS member. */
  readonly jwk: JWK;
}

export async function signingKey(kid: string, alg = "ES256"): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { kid, alg, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: "sig" } };
}

/** A token signed with `key`; `exp` defaults to an hour after `now` (ms). */
export function sign(
  key: SigningKey,
  claims: JWTPayload,
  now: number,
  header: { kid?: string; alg?: string } = {},
): Promise<string> {
  const seconds = Math.floor(now / 1000);
  return new SignJWT({ iat: seconds, exp: seconds + 3600, ...claims })
    .setProtectedHeader({ alg: header.alg ?? key.alg, kid: header.kid ?? key.kid })
    .sign(key.privateKey);
}

export function base64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString("base64url");
}

export interface JwksServer {
  readonly url: string;
  readonly jwksUri: string;
  /** Key set fetches served so far. */
  readonly fetches: number;
  readonly discoveries: number;
  keys: JWK[];
  /** Status of the key set answers (200 with the keys, else an empty error). */
  status: number;
  /** What the discovery document says; by default the server's own URL and key set. */
  discovery: Record<string, unknown> | undefined;
  close(): Promise<void>;
}

export async function startJwksServer(keys: JWK[]): Promise<JwksServer> {
  let fetches = 0;
  let discoveries = 0;
  const server = createServer((req, res) => {
    if (req.url === "/jwks") {
      fetches++;
      if (state.status !== 200) {
        res.writeHead(state.status).end();
        return;
      }
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys: state.keys }));
    } else if (req.url === "/.well-known/openid-configuration") {
      discoveries++;
      const doc = state.discovery ?? { issuer: state.url, jwks_uri: state.jwksUri };
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(doc));
    } else res.writeHead(404).end();
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const state: JwksServer = {
    url,
    jwksUri: `${url}/jwks`,
    get fetches() {
      return fetches;
    },
    get discoveries() {
      return discoveries;
    },
    keys,
    status: 200,
    discovery: undefined,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
  return state;
}

/** A client request as stages see it: headers (lower-case names) and the peer's address. */
export function fakeRequest(headers: IncomingHttpHeaders = {}, remoteAddress = "192.0.2.1"): ClientRequest {
  return { headers, socket: { remoteAddress } } as unknown as ClientRequest;
}

export function context(headers: IncomingHttpHeaders = {}, remoteAddress?: string): MiddlewareContext {
  const upstreamHeaders: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined) upstreamHeaders[name] = value;
  return {
    req: fakeRequest(headers, remoteAddress),
    requestId: "req-1",
    routeId: "route-1",
    upstreamHeaders,
  };
}

export const silentLogger = { warn: () => {}, info: () => {}, error: () => {} };
