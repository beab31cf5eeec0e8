/**
 * Which versions a fleet runs: one row per fleet once it has a stable version (its first
 * bundle makes one), absent before — so "no state yet" is a missing row, not a row of nulls.
 *
 * A table of its own rather than columns on fleets: the state points into bundles, and bundles
 * point at fleets, so columns on fleets would make the two tables reference each other (a cycle
 * of foreign keys, which creating a fleet, truncating or dropping would have to break first).
 * Here every reference runs one way: fleet_states → bundles → fleets.
 *
 * The checks repeat the store's rules so no writer, however it gets here, can store a state
 * distributors cannot apply. rollout_id is plain text: the rollout's record is [7/9]'s.
 */
import { type Kysely, sql } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("fleet_states")
    .addColumn("fleet", "text", (c) => c.primaryKey().references("fleets.name"))
    .addColumn("stable_version", "integer", (c) => c.notNull())
    .addColumn("candidate_version", "integer")
    .addColumn("rollout_id", "text")
    .addColumn("candidate_percent", "double precision", (c) => c.notNull().defaultTo(0))
    .addColumn("generation", "bigint", (c) => c.notNull().check(sql`generation > 0`))
    .addColumn("updated_at", "timestamptz", (c) => c.notNull())
    .addForeignKeyConstraint("fleet_states_stable_fk", ["fleet", "stable_version"], "bundles", [
      "fleet",
      "version",
    ])
    .addForeignKeyConstraint("fleet_states_candidate_fk", ["fleet", "candidate_version"], "bundles", [
      "fleet",
      "version",
    ])
    .addCheckConstraint("fleet_states_percent", sql`candidate_percent >= 0 and candidate_percent <= 100`)
    .addCheckConstraint(
      "fleet_states_rollout",
      sql`(candidate_version is null) = (rollout_id is null) and (candidate_version is not null or candidate_percent = 0)`,
    )
    .addCheckConstraint(
      "fleet_states_candidate_above",
      sql`candidate_version is null or candidate_version > stable_version`,
    )
    .execute();

  // Fleets that had bundles before fleet states existed: their latest bundle was the only notion
  // of "current" there was, and agents refuse a version below one they have seen, so the latest
  // (not the first) is the one stable version that cannot strand an agent.
  await sql`
    insert into fleet_states (fleet, stable_version, generation, updated_at)
    select fleet, max(version), 1, now() from bundles group by fleet
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable("fleet_states").execute();
}
