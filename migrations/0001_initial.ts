/**
 * The authority's first schema. Tables are created unqualified, so they land in the first
 * schema of the connection's search_path (tests isolate themselves that way).
 *
 * bundles and audit_log are append-only by contract: the code has no UPDATE or DELETE for them.
 * audit_log.seq is assigned by the appender under a table lock (previous seq + 1) rather than by
 * a sequence, so the chain has no gaps and a deleted entry shows up as one.
 */
import { type Kysely, sql } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("fleets")
    .addColumn("name", "text", (c) => c.primaryKey())
    .addColumn("description", "text")
    .addColumn("created_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  await db.schema
    .createTable("bundles")
    .addColumn("fleet", "text", (c) => c.notNull().references("fleets.name"))
    .addColumn("version", "integer", (c) => c.notNull().check(sql`version > 0`))
    .addColumn("parent", "integer")
    .addColumn("content_sha256", "text", (c) => c.notNull())
    .addColumn("jws", "text", (c) => c.notNull())
    .addColumn("config", "jsonb", (c) => c.notNull())
    .addColumn("created_by", "text", (c) => c.notNull())
    .addColumn("created_at", "timestamptz", (c) => c.notNull())
    .addColumn("message", "text")
    .addColumn("rollback_of", "integer")
    .addPrimaryKeyConstraint("bundles_pk", ["fleet", "version"])
    .addCheckConstraint("bundles_parent_before", sql`parent is null or parent < version`)
    .addCheckConstraint("bundles_rollback_before", sql`rollback_of is null or rollback_of < version`)
    .execute();

  await db.schema
    .createTable("rollouts")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("fleet", "text", (c) => c.notNull().references("fleets.name"))
    .addColumn("candidate_version", "integer", (c) => c.notNull())
    .addColumn("stable_version", "integer")
    .addColumn("state", "text", (c) => c.notNull())
    .addColumn("stage", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("plan", "jsonb", (c) => c.notNull())
    .addColumn("created_by", "text", (c) => c.notNull())
    .addColumn("created_at", "timestamptz", (c) => c.notNull())
    .addColumn("updated_at", "timestamptz", (c) => c.notNull())
    .addColumn("finished_at", "timestamptz")
    .addForeignKeyConstraint("rollouts_candidate_fk", ["fleet", "candidate_version"], "bundles", [
      "fleet",
      "version",
    ])
    .execute();
  await db.schema.createIndex("rollouts_fleet_state").on("rollouts").columns(["fleet", "state"]).execute();

  await db.schema
    .createTable("agents")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("fleet", "text", (c) => c.notNull().references("fleets.name"))
    .addColumn("region", "text", (c) => c.notNull())
    .addColumn("version", "integer")
    .addColumn("state", "text", (c) => c.notNull())
    .addColumn("last_seen", "timestamptz", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("agents_fleet").on("agents").columns(["fleet", "region"]).execute();

  await db.schema
    .createTable("health_samples")
    .addColumn("fleet", "text", (c) => c.notNull().references("fleets.name"))
    .addColumn("version", "integer", (c) => c.notNull())
    .addColumn("region", "text", (c) => c.notNull())
    .addColumn("window_start", "timestamptz", (c) => c.notNull())
    .addColumn("requests", "bigint", (c) => c.notNull())
    .addColumn("errors_5xx", "bigint", (c) => c.notNull())
    .addColumn("latency_buckets", "jsonb", (c) => c.notNull())
    .addPrimaryKeyConstraint("health_samples_pk", ["fleet", "version", "region", "window_start"])
    .execute();

  await db.schema
    .createTable("audit_log")
    .addColumn("seq", "bigint", (c) => c.primaryKey())
    .addColumn("at", "timestamptz", (c) => c.notNull())
    .addColumn("actor", "text", (c) => c.notNull())
    .addColumn("action", "text", (c) => c.notNull())
    .addColumn("target", "text", (c) => c.notNull())
    .addColumn("details", "jsonb", (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn("prev_hash", "text", (c) => c.notNull())
    .addColumn("hash", "text", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("audit_log_actor").on("audit_log").columns(["actor", "seq"]).execute();
  await db.schema.createIndex("audit_log_action").on("audit_log").columns(["action", "seq"]).execute();
  await db.schema.createIndex("audit_log_target").on("audit_log").columns(["target", "seq"]).execute();
  await db.schema.createIndex("audit_log_at").on("audit_log").column("at").execute();

  await db.schema
    .createTable("api_tokens")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("role", "text", (c) => c.notNull().check(sql`role in ('viewer', 'operator', 'admin')`))
    .addColumn("token_hash", "text", (c) => c.notNull().unique())
    .addColumn("created_by", "text", (c) => c.notNull())
    .addColumn("created_at", "timestamptz", (c) => c.notNull())
    .addColumn("revoked_at", "timestamptz")
    .execute();

  await db.schema
    .createTable("signing_keys")
    .addColumn("kid", "text", (c) => c.primaryKey())
    .addColumn("public_jwk", "jsonb", (c) => c.notNull())
    .addColumn("status", "text", (c) => c.notNull().check(sql`status in ('active', 'trusted', 'retired')`))
    .addColumn("created_at", "timestamptz", (c) => c.notNull())
    .addColumn("updated_at", "timestamptz", (c) => c.notNull())
    .execute();
  // At most one key signs at a time; a rotation demotes the old one in the same transaction.
  await db.schema
    .createIndex("signing_keys_one_active")
    .on("signing_keys")
    .column("status")
    .unique()
    .where(sql.ref("status"), "=", "active")
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of [
    "signing_keys",
    "api_tokens",
    "audit_log",
    "health_samples",
    "agents",
    "rollouts",
    "bundles",
    "fleets",
  ]) {
    await db.schema.dropTable(table).execute();
  }
}
