/**
 * API tokens: 32 random bytes, shown once when made and stored only as their sha256, so the
 * database never holds a usable credential. Roles are ordered: a viewer reads, an operator
 * also submits, an admin also manages fleets and tokens.
 */
import { createHash, randomBytes } from "node:crypto";
import type { AuthorityStore } from "./store/index.js";

export const ROLES = ["viewer", "operator", "admin"] as const;
export type Role = (typeof ROLES)[number];

/** Marks a string as a Coherent token, for people and for secret scanners. */
const TOKEN_PREFIX = "coh_";

/** Whether `held` grants what `required` asks for. */
export function roleAtLeast(held: Role, required: Role): boolean {
  return ROLES.indexOf(held) >= ROLES.indexOf(required);
}

export function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

export function generateToken(): { token: string; tokenHash: string } {
  const token = `${TOKEN_PREFIX}${randomBytes(32).toString("base64url")}`;
  return { token, tokenHash: hashToken(token) };
}

/** Who a request acts as, as the audit log names it. */
export interface Principal {
  readonly tokenId: string;
  readonly name: string;
  readonly role: Role;
}

export function actorOf(principal: Principal): string {
  return `token:${principal.name}`;
}

/** The principal a bearer token stands for; undefined when it is unknown or revoked. */
export async function authenticate(store: AuthorityStore, token: string): Promise<Principal | undefined> {
  if (!token.startsWith(TOKEN_PREFIX)) return undefined;
  const row = await store.findToken(hashToken(token));
  if (!row) return undefined;
  return { tokenId: row.id, name: row.name, role: row.role };
}

export interface IssuedToken {
  readonly id: string;
  readonly name: string;
  readonly role: Role;
  /** The only time the token's value exists outside its holder's hands. */
  readonly token: string;
}

/** Makes a token and records "token.create"; `actor` is who asked (a CLI user at bootstrap). */
export async function issueToken(
  store: AuthorityStore,
  input: { name: string; role: Role; actor: string },
): Promise<IssuedToken> {
  const { token, tokenHash } = generateToken();
  const row = await store.createToken({
    name: input.name,
    role: input.role,
    tokenHash,
    createdBy: input.actor,
  });
  await store.appendAudit({
    actor: input.actor,
    action: "token.create",
    target: `token:${row.id}`,
    details: { name: input.name, role: input.role },
  });
  return { id: row.id, name: input.name, role: input.role, token };
}

/** Revokes a token and records "token.revoke"; false when there is no such live token. */
export async function revokeToken(store: AuthorityStore, id: string, actor: string): Promise<boolean> {
  if (!(await store.revokeToken(id))) return false;
  await store.appendAudit({ actor, action: "token.revoke", target: `token:${id}` });
  return true;
}
