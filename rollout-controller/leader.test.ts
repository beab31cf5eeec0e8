import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { TEST_POSTGRES_URL } from "../authority/store/test-databases.js";
import { EmbeddedLeadership, lockName, PostgresLeadership } from "./leader.js";

const running: PostgresLeadership[] = [];

function elector(schema: string): PostgresLeadership {
  const leadership = new PostgresLeadership({ url: TEST_POSTGRES_URL, schema, checkMs: 50 });
  running.push(leadership);
  leadership.start();
  return leadership;
}

async function until(what: string, ok: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

afterEach(async () => {
  await Promise.all(running.splice(0).map((l) => l.stop()));
});

describe("Postgres leadership", () => {
  it("lets exactly one of two controllers lead, and the other take over when it stops", async () => {
    const schema = `leader_${process.pid}_a`;
    const a = elector(schema);
    await until("a leader", () => a.isLeader);
    const b = elector(schema);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect([a.isLeader, b.isLeader]).toEqual([true, false]);
    await a.stop();
    await until("b to take over", () => b.isLeader);
    expect(a.isLeader).toBe(false);
  });

  it("ends leadership at once when its connection is killed; one of the two leads again", async () => {
    const schema = `leader_${process.pid}_b`;
    const a = elector(schema);
    await until("a leader", () => a.isLeader);
    const b = elector(schema);
    const changes: boolean[] = [];
    a.onChange((leader) => changes.push(leader));
    const admin = new pg.Client({ connectionString: TEST_POSTGRES_URL });
    await admin.connect();
    try {
      // The backend holding the lock, found through pg_locks, is terminated as a crash would.
      await admin.query(
        `SELECT pg_terminate_backend(l.pid) FROM pg_locks l
          WHERE l.locktype = 'advisory' AND l.granted AND l.objid = (hashtext($1)::bigint & 4294967295)::oid`,
        [lockName(schema)],
      );
    } finally {
      await admin.end();
    }
    await until("a to notice", () => changes.length > 0, 2_000);
    expect(changes[0]).toBe(false);
    // Whichever tries first wins the free lock; never both.
    await until("a new leader", () => a.isLeader || b.isLeader, 5_000);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(Number(a.isLeader) + Number(b.isLeader)).toBe(1);
  });

  it("does not compete across schemas", async () => {
    const a = elector(`leader_${process.pid}_c`);
    const b = elector(`leader_${process.pid}_d`);
    await until("both lead", () => a.isLeader && b.isLeader);
    expect([a.isLeader, b.isLeader]).toEqual([true, true]);
  });
});

describe("embedded leadership", () => {
  it("leads from start to stop", async () => {
    const leadership = new EmbeddedLeadership();
    const seen: boolean[] = [];
    leadership.onChange((leader) => seen.push(leader));
    expect(leadership.isLeader).toBe(false);
    leadership.start();
    expect(leadership.isLeader).toBe(true);
    await leadership.stop();
    expect(seen).toEqual([true, false]);
  });
});
