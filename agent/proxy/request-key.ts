/**
 * The request keys configs name — `client_ip`, `header:NAME`, `cookie:NAME` — read from a
 * request, for consistent hashing, rate-limit buckets and cohort routing alike.
 */
import type { ClientRequest } from "./engine.js";

export function requestKey(spec: string, req: ClientRequest): string | undefined {
  if (spec === "client_ip") return req.socket.remoteAddress;
  if (spec.startsWith("header:")) return header(req, spec.slice(7).toLowerCase());
  return cookie(req, spec.slice(7));
}

export function header(req: ClientRequest, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

export function cookie(req: ClientRequest, name: string): string | undefined {
  const text = req.headers.cookie;
  if (!text) return undefined;
  for (const part of text.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
