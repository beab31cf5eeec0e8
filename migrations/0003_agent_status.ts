/**
 * Everything a distributor reports, kept: the full agent status (proto AgentStatus) and the
 * health samples with their window end, agent count and histogram bounds.
 *
 * agents: `state` becomes the rollout progress alone (pending | acked | nacked | unknown) and an
 * open stream is `connected`; before, a closed stream overwrote the state with "disconnected",
 * which lost whether the agent had acked. `version` is renamed `running_version` beside the new
 * `desired_version`. Rows stored before carry no distributor (null) and no labels.
 *
 * distributors: when the authority last heard from each distributor on its feed. A distributor
 * reports an agent again only when something about it changes, and reports it disconnected when
 * its stream closes; so a connected agent is live as long as its distributor is heard from.
 *
 * health_samples: the key gains distributor_id, so two distributors of one region reporting the
 * same (fleet, version, window) are two samples that both count, while the same distributor
 * sending a window again replaces its sample. Rows stored before get distributor "" and their
 * start as their end (their length was not kept), 0 agents and no bounds.
 */
import { type Kysely, sql } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable("agents").renameColumn("version", "running_version").execute();
  await db.schema
    .alterTable("agents")
    .addColumn("distributor_id", "text")
    .addColumn("desired_version", "integer")
    .addColumn("nack_version", "integer")
    .addColumn("nack_errors", "jsonb", (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn("labels", "jsonb", (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn("connected", "boolean", (c) => c.notNull().defaultTo(true))
    .addColumn("updated_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await sql`update agents set connected = false where state = 'disconnected'`.execute(db);
  await sql`update agents set state = 'unknown' where state not in ('pending', 'acked', 'nacked')`.execute(
    db,
  );
  await db.schema
    .alterTable("agents")
    .addCheckConstraint("agents_state", sql`state in ('pending', 'acked', 'nacked', 'unknown')`)
    .execute();
  await db.schema.createIndex("agents_fleet_state").on("agents").columns(["fleet", "state"]).execute();

  await db.schema
    .createTable("distributors")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("region", "text", (c) => c.notNull())
    .addColumn("last_heard", "timestamptz", (c) => c.notNull())
    .execute();

  await db.schema
    .alterTable("health_samples")
    .addColumn("distributor_id", "text", (c) => c.notNull().defaultTo(""))
    .addColumn("window_end", "timestamptz")
    .addColumn("agents", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("latency_bounds_ms", "jsonb", (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn("latency_sum_ms", "double precision", (c) => c.notNull().defaultTo(0))
    .execute();
  await sql`update health_samples set window_end = window_start`.execute(db);
  await db.schema
    .alterTable("health_samples")
    .alterColumn("window_end", (c) => c.setNotNull())
    .execute();
  await db.schema.alterTable("health_samples").dropConstraint("health_samples_pk").execute();
  await db.schema
    .alterTable("health_samples")
    .addPrimaryKeyConstraint("health_samples_pk", [
      "fleet",
      "version",
      "region",
      "distributor_id",
      "window_start",
    ])
    .execute();
  // The rollout controller reads one fleet's windows of a time range, every version at once.
  await db.schema
    .createIndex("health_samples_fleet_window")
    .on("health_samples")
    .columns(["fleet", "window_start"])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex("health_samples_fleet_window").execute();
  await db.schema.alterTable("health_samples").dropConstraint("health_samples_pk").execute();
  await sql`delete from health_samples a using health_samples b
    where a.fleet = b.fleet and a.version = b.version and a.region = b.region
      and a.window_start = b.window_start and a.distributor_id > b.distributor_id`.execute(db);
  await db.schema
    .alterTable("health_samples")
    .addPrimaryKeyConstraint("health_samples_pk", ["fleet", "version", "region", "window_start"])
    .execute();
  for (const column of ["distributor_id", "window_end", "agents", "latency_bounds_ms", "latency_sum_ms"]) {
    await db.schema.alterTable("health_samples").dropColumn(column).execute();
  }

  await db.schema.dropTable("distributors").execute();
  await db.schema.dropIndex("agents_fleet_state").execute();
  await db.schema.alterTable("agents").dropConstraint("agents_state").execute();
  await sql`update agents set state = 'disconnected' where not connected`.execute(db);
  for (const column of [
    "distributor_id",
    "desired_version",
    "nack_version",
    "nack_errors",
    "labels",
    "connected",
    "updated_at",
  ]) {
    await db.schema.alterTable("agents").dropColumn(column).execute();
  }
  await db.schema.alterTable("agents").renameColumn("running_version", "version").execute();
}
