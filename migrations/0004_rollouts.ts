/**
 * Rollouts as the controller runs them ([7/9]): the table 0001 made ahead of its use (never written)
 * gains everything the state machine keeps (rollout-controller/state-machine.ts), the events
 * table records each transition with its reason, and controller_lease numbers leaderships.
 *
 * - `phase` replaces `state`; a partial unique index allows one live rollout per fleet, so two
 *   operators starting rollouts at once cannot both succeed, whichever replica they reach.
 * - `revision` grows with every write: commands (any authority replica) and the controller
 *   (the leader) write with compare-and-set on it, so neither overwrites the other unseen.
 * - `applied` is false from a transition until the fleet state matches the rollout (and, for a
 *   rollback, the restoring bundle is published: `restore_version`); the controller retries
 *   until it is true, so a crash between the two writes loses nothing.
 * - controller_lease holds one row; each new leader increments `epoch` and stamps its writes
 *   with it, so a deposed leader's late write is refused.
 * - fleets.default_plan: the plan `rollout start` uses when it is given none.
 */
import { type Kysely, sql } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex("rollouts_fleet_state").execute();
  await db.schema.alterTable("rollouts").renameColumn("state", "phase").execute();
  await db.schema
    .alterTable("rollouts")
    .addColumn("stage_started_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn("baked_ms", "bigint", (c) => c.notNull().defaultTo(0))
    .addColumn("running_since", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn("accepted_nacks", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("reason", "jsonb")
    .addColumn("applied", "boolean", (c) => c.notNull().defaultTo(false))
    .addColumn("restore_version", "integer")
    .addColumn("revision", "integer", (c) => c.notNull().defaultTo(1))
    .execute();
  await db.schema
    .alterTable("rollouts")
    .addCheckConstraint(
      "rollouts_phase",
      sql`phase in ('pending', 'running', 'paused', 'succeeded', 'rolled_back', 'aborted')`,
    )
    .execute();
  await sql`create unique index rollouts_one_live on rollouts (fleet) where phase in ('pending', 'running', 'paused')`.execute(
    db,
  );
  await db.schema
    .createIndex("rollouts_fleet_created")
    .on("rollouts")
    .columns(["fleet", "created_at"])
    .execute();
  await sql`create index rollouts_unapplied on rollouts (id) where not applied`.execute(db);

  await db.schema
    .createTable("rollout_events")
    .addColumn("id", "bigserial", (c) => c.primaryKey())
    .addColumn("rollout_id", "text", (c) => c.notNull().references("rollouts.id"))
    .addColumn("at", "timestamptz", (c) => c.notNull())
    .addColumn("from_phase", "text", (c) => c.notNull())
    .addColumn("to_phase", "text", (c) => c.notNull())
    .addColumn("from_stage", "integer", (c) => c.notNull())
    .addColumn("to_stage", "integer", (c) => c.notNull())
    .addColumn("reason", "jsonb", (c) => c.notNull())
    .addColumn("actor", "text", (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex("rollout_events_rollout")
    .on("rollout_events")
    .columns(["rollout_id", "id"])
    .execute();

  await db.schema
    .createTable("controller_lease")
    .addColumn("id", "integer", (c) => c.primaryKey().check(sql`id = 1`))
    .addColumn("epoch", "bigint", (c) => c.notNull())
    .addColumn("holder", "text", (c) => c.notNull())
    .addColumn("acquired_at", "timestamptz", (c) => c.notNull())
    .execute();
  await sql`insert into controller_lease (id, epoch, holder, acquired_at) values (1, 0, '', now())`.execute(
    db,
  );

  await db.schema.alterTable("fleets").addColumn("default_plan", "jsonb").execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable("fleets").dropColumn("default_plan").execute();
  await db.schema.dropTable("controller_lease").execute();
  await db.schema.dropTable("rollout_events").execute();
  await sql`drop index rollouts_unapplied`.execute(db);
  await sql`drop index rollouts_fleet_created`.execute(db);
  await sql`drop index rollouts_one_live`.execute(db);
  await db.schema.alterTable("rollouts").dropConstraint("rollouts_phase").execute();
  await db.schema
    .alterTable("rollouts")
    .dropColumn("stage_started_at")
    .dropColumn("baked_ms")
    .dropColumn("running_since")
    .dropColumn("accepted_nacks")
    .dropColumn("reason")
    .dropColumn("applied")
    .dropColumn("restore_version")
    .dropColumn("revision")
    .execute();
  await db.schema.alterTable("rollouts").renameColumn("phase", "state").execute();
  await db.schema.createIndex("rollouts_fleet_state").on("rollouts").columns(["fleet", "state"]).execute();
}
