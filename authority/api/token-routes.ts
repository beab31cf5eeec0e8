/** /tokens: admins make, list and revoke API tokens; a token's value is returned once, at creation. */
import type { FastifyInstance } from "fastify";
import { ApiError } from "../errors.js";
import type { AuthorityStore, TokenRow } from "../store/index.js";
import { issueToken, ROLES, type Role, revokeToken } from "../tokens.js";
import { actor } from "./auth.js";
import { errorResponses } from "./schemas.js";

export function registerTokenRoutes(api: FastifyInstance, store: AuthorityStore): void {
  api.post<{ Body: { name: string; role: Role } }>(
    "/tokens",
    {
      config: { role: "admin" },
      schema: {
        tags: ["tokens"],
        summary: "Create a token; its value is in this answer only",
        body: {
          type: "object",
          required: ["name", "role"],
          additionalProperties: false,
          properties: {
            name: { type: "string", minLength: 1, maxLength: 200 },
            role: { type: "string", enum: [...ROLES] },
          },
        },
        response: errorResponses,
      },
    },
    async (req, reply) => {
      const issued = await issueToken(store, { name: req.body.name, role: req.body.role, actor: actor(req) });
      return reply.code(201).send(issued);
    },
  );

  api.get(
    "/tokens",
    {
      config: { role: "admin" },
      schema: { tags: ["tokens"], summary: "List tokens (never their values)", response: errorResponses },
    },
    async () => ({ tokens: (await store.listTokens()).map(tokenJson) }),
  );

  api.delete<{ Params: { id: string } }>(
    "/tokens/:id",
    {
      config: { role: "admin" },
      schema: {
        tags: ["tokens"],
        summary: "Revoke a token; requests with it are refused from then on",
        params: { type: "object", required: ["id"], properties: { id: { type: "string", minLength: 1 } } },
        response: errorResponses,
      },
    },
    async (req) => {
      if (!(await revokeToken(store, req.params.id, actor(req)))) {
        throw new ApiError("unknown_token", `no live token with id "${req.params.id}"`);
      }
      return { id: req.params.id, revoked: true };
    },
  );
}

function tokenJson(row: TokenRow) {
  return {
    id: row.id,
    name: row.name,
    role: row.role,
    created_by: row.createdBy,
    created_at: row.createdAt,
    revoked_at: row.revokedAt,
  };
}
