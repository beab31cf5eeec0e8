/**
 * Bearer authentication for /api/v1: every route states the least role it needs in its
 * `config.role`; a request without a live token is refused with 401 before its body is read,
 * one whose token's role is too low with 403 naming the role it needs.
 */
import type { FastifyRequest } from "fastify";
import { ApiError } from "../errors.js";
import type { AuthorityStore } from "../store/index.js";
import { actorOf, authenticate, type Principal, type Role, roleAtLeast } from "../tokens.js";

declare module "fastify" {
  interface FastifyContextConfig {
    /** The least role a route needs; routes without one need admin, so a forgotten one fails closed. */
    role?: Role;
    /**
     * Also take the token from `?token=`, for clients that cannot set headers (EventSource).
     * Only GET /events: a token in a URL may reach proxies' and browsers' histories.
     */
    tokenInQuery?: boolean;
  }
  interface FastifyRequest {
    principal: Principal | undefined;
  }
}

const BEARER = /^Bearer +(\S+) *$/i;

/** An onRequest hook: who is asking, and may they. */
export function bearerAuth(store: AuthorityStore): (req: FastifyRequest) => Promise<void> {
  return async (req) => {
    const token = BEARER.exec(req.headers.authorization ?? "")?.[1] ?? queryToken(req);
    const principal = token === undefined ? undefined : await authenticate(store, token);
    if (!principal) throw new ApiError("unauthorized", "a valid bearer token is required");
    const required = req.routeOptions.config.role ?? "admin";
    if (!roleAtLeast(principal.role, required)) {
      throw new ApiError("forbidden", `this needs the ${required} role, the token has ${principal.role}`, {
        required_role: required,
      });
    }
    req.principal = principal;
  };
}

function queryToken(req: FastifyRequest): string | undefined {
  if (!req.routeOptions.config.tokenInQuery) return undefined;
  const token = (req.query as { token?: unknown } | undefined)?.token;
  return typeof token === "string" && token !== "" ? token : undefined;
}

/** The audit log's name for whoever made an authenticated request. */
export function actor(req: FastifyRequest): string {
  if (!req.principal) throw new ApiError("unauthorized", "a valid bearer token is required");
  return actorOf(req.principal);
}
