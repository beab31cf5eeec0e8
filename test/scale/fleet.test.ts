/**
 * 5,000 agents over two distributors: `coherent authority` on PGlite and two `coherent
 * distributor`s as real processes, the agents simulated (test/bench/support/agent-pool.ts: raw
 * HTTP/2 gRPC clients, one connection each, in child processes; they ACK every BundleUpdate
 * without verifying it). Every agent connects, one submitted bundle reaches and is ACKed by
 * all of them, and the authority's fleet status counts every one of them on it. The times of
 * each step are printed. SCALE_AGENTS changes the count (for a quick look; the record says it).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentPool, type SimAgentSpec } from "../bench/support/agent-pool.js";
import { distributorMetric } from "../e2e/support/coherent.js";
import { waitUntil } from "../e2e/support/processes.js";
import { reportReliability } from "../support/reliability.js";
import {
  type ControlPlane,
  configOf,
  fleetAgents,
  REGION,
  startControlPlane,
} from "./support/control-plane.js";

const AGENTS = Number(process.env.SCALE_AGENTS ?? 5_000);
const FLEET = "scale";
/** Agent processes: the bench's two, each holding half the connections. */
const WORKERS = 2;

describe("a fleet of simulated agents over two real distributors", () => {
  let plane: ControlPlane;
  const pool = new AgentPool(WORKERS);

  beforeAll(async () => {
    plane = await startControlPlane({ fleet: FLEET, distributors: 2 });
  });

  afterAll(async () => {
    await pool.dispose();
    await plane?.close();
  });

  it(`connects ${AGENTS.toLocaleString("en")} agents and delivers a bundle every one ACKs`, async () => {
    const specs: SimAgentSpec[] = Array.from({ length: AGENTS }, (_, i) => ({
      agentId: `agent-${String(i).padStart(5, "0")}`,
      currentVersion: 0,
      currentContentSha256: "",
    }));
    const halves = [specs.filter((_, i) => i % 2 === 0), specs.filter((_, i) => i % 2 === 1)];
    const connectStarted = Date.now();
    let welcomed = 0;
    // One distributor at a time: a worker connects one batch at a time.
    for (const [i, distributor] of plane.distributors.entries()) {
      const result = await pool.connect({
        target: distributor.address,
        fleet: FLEET,
        region: REGION,
        agents: halves[i] ?? [],
      });
      expect(result.failed, `agents refused by ${distributor.id}`).toBe(0);
      welcomed += result.welcomed;
    }
    const connectMs = Date.now() - connectStarted;
    expect(welcomed).toBe(AGENTS);
    const held = await Promise.all(
      plane.distributors.map((d) => distributorMetric(d, "coherent_distributor_connected_agents")),
    );
    expect(held.reduce((a, b) => a + b, 0)).toBe(AGENTS);

    const submitted = Date.now();
    const version = await plane.submit(configOf(50, "v1"));
    const acked = await waitUntil(
      `${AGENTS} agents ACKing v${version}`,
      async () => {
        const stats = await pool.stats();
        return stats.acks >= AGENTS ? stats : undefined;
      },
      120_000,
      100,
    );
    const ackedMs = Date.now() - submitted;
    const status = await waitUntil(
      `the authority counting ${AGENTS} agents acked at v${version}`,
      async () => {
        const agents = await fleetAgents(plane);
        const on = agents.by_version.find((v) => v.version === version);
        return on?.acked === AGENTS && on.running === AGENTS && agents.total === AGENTS ? agents : undefined;
      },
      120_000,
      500,
    );
    const countedMs = Date.now() - submitted;
    const end = await pool.stats();
    console.log(
      `fleet: ${AGENTS} agents connected to 2 distributors (${held.join(" + ")}) in ${connectMs} ms; ` +
        `v${version} ACKed by all ${ackedMs} ms after submit, counted by the authority after ${countedMs} ms; ` +
        `${end.updates} updates, ${end.acks} acks, ${end.lost} streams lost`,
    );
    reportReliability({
      suite: "scale",
      scenario: `fleet of ${AGENTS.toLocaleString("en")} agents`,
      loadHeld: `${AGENTS} simulated agents on 2 distributors`,
      faultsInjected: 0,
      badInputsTried: 0,
      requestsSent: AGENTS,
      requestsFailed: AGENTS - Math.min(acked.acks, AGENTS),
      bundlesLost: 0,
      convergenceMs: ackedMs,
      notes: `connect ${connectMs} ms; authority counts all after ${countedMs} ms`,
    });
    expect(end.lost).toBe(0);
    expect(end.acks).toBe(AGENTS);
    expect(status.stale).toBe(0);
    expect(status.by_version).toHaveLength(1);
  });
});
