/** /audit: the hash-chained log of control-plane actions, and the walk that checks the chain. */
import type { FastifyInstance } from "fastify";
import type { AuditRow, AuthorityStore } from "../store/index.js";
import { errorResponses } from "./schemas.js";

interface AuditQuery {
  actor?: string;
  action?: string;
  target?: string;
  since?: string;
  limit?: number;
}

const DEFAULT_LIMIT = 100;

export function registerAuditRoutes(api: FastifyInstance, store: AuthorityStore): void {
  api.get<{ Querystring: AuditQuery }>(
    "/audit",
    {
      config: { role: "viewer" },
      schema: {
        tags: ["audit"],
        summary: "List audit entries, newest first",
        querystring: {
          type: "object",
          properties: {
            actor: { type: "string" },
            action: { type: "string" },
            target: { type: "string" },
            since: { type: "string", format: "date-time", description: "Only entries at or after this time" },
            limit: { type: "integer", minimum: 1, maximum: 1000, default: DEFAULT_LIMIT },
          },
        },
        response: errorResponses,
      },
    },
    async (req) => {
      const { actor, action, target, since, limit } = req.query;
      const rows = await store.listAudit({
        ...(actor === undefined ? {} : { actor }),
        ...(action === undefined ? {} : { action }),
        ...(target === undefined ? {} : { target }),
        ...(since === undefined ? {} : { since: new Date(since) }),
        limit: limit ?? DEFAULT_LIMIT,
      });
      return { entries: rows.map(auditJson) };
    },
  );

  api.get(
    "/audit/verify",
    {
      config: { role: "admin" },
      schema: {
        tags: ["audit"],
        summary: "Walk the hash chain; names the first entry that does not match",
        response: errorResponses,
      },
    },
    async () => {
      const result = await store.verifyAudit();
      return result.ok
        ? { ok: true, entries: result.entries }
        : { ok: false, entries: result.entries, broken_at: result.brokenAt };
    },
  );
}

function auditJson(row: AuditRow) {
  return {
    seq: row.seq,
    at: row.at,
    actor: row.actor,
    action: row.action,
    target: row.target,
    details: row.details,
    prev_hash: row.prevHash,
    hash: row.hash,
  };
}
