/**
 * A rollout while agents come and go: `coherent authority` on PGlite with its rollout
 * controller and two `coherent distributor`s as real processes, SCALE_CHURN_AGENTS (1,000)
 * simulated agents (support/churn-agents.ts: they ACK every push and report traffic on the
 * version they run, so the health gates judge real candidate requests). The rollout goes
 * 10 % → 50 % → 100 %; at each stage 10 % of the agents present leave and as many new ones
 * join, and once more after it finished. Asserted:
 *
 * - the rollout succeeds, through every stage once, in order;
 * - every agent present at the end runs the candidate, by its own count and the authority's;
 * - cohort membership only grows (DESIGN.md, Cohorts): in every sample, the agents on the
 *   candidate are within the cohort of the stage read after them; an agent on the candidate
 *   is on it in every later sample it is present in; no agent ever ACKed a lower version.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { candidateThreshold, cohortBucket } from "../../services/distributor/cohort.js";
import { agentsOf, api } from "../e2e/support/coherent.js";
import { waitUntil } from "../e2e/support/processes.js";
import { reportReliability } from "../support/reliability.js";
import { type ChurnAgentSpec, ChurnPool, type FleetView } from "./support/churn-pool.js";
import { type ControlPlane, configOf, REGION, startControlPlane } from "./support/control-plane.js";

const AGENTS = Number(process.env.SCALE_CHURN_AGENTS ?? 1_000);
const CHURN = 0.1;
const FLEET = "churn";
const MIN_REQUESTS = 50;
const PLAN = {
  stages: [
    { name: "canary", fleet_percent: 10, bake_time: "4s" },
    { name: "half", fleet_percent: 50, bake_time: "4s" },
    { name: "all", fleet_percent: 100 },
  ],
  health_gates: [{ metric: "error_rate", threshold: 0.01 }],
  min_requests: MIN_REQUESTS,
};
const FINISHED = new Set(["succeeded", "rolled_back", "aborted"]);

interface RolloutStatus {
  rollout: { id: string; phase: string; stage: { index: number } };
  events: Array<{ from: string; to: string; from_stage: number; to_stage: number; reason: { kind: string } }>;
}

/** What was seen at one moment: the agents first, then the rollout. */
interface Sample {
  readonly stage: number;
  readonly phase: string;
  readonly present: ReadonlySet<string>;
  readonly onCandidate: ReadonlySet<string>;
}

describe("a rollout while agents join and leave", () => {
  let plane: ControlPlane;
  let pool: ChurnPool;
  let joined = 0;

  beforeAll(async () => {
    plane = await startControlPlane({ fleet: FLEET, distributors: 2, healthFlush: "500ms" });
    pool = new ChurnPool({ workers: 2, fleet: FLEET, region: REGION });
  });

  afterAll(async () => {
    await pool?.dispose();
    await plane?.close();
  });

  /** `count` new agents, alternating between the distributors. */
  const newAgents = (count: number, tag: string): ChurnAgentSpec[] =>
    Array.from({ length: count }, (_, i) => ({
      agentId: `agent-${tag}-${String(i).padStart(5, "0")}`,
      target: plane.distributors[(joined + i) % plane.distributors.length]?.address ?? "",
    }));

  const join = async (agents: ChurnAgentSpec[]): Promise<void> => {
    const { welcomed, failed } = await pool.join(agents);
    joined += agents.length;
    expect({ welcomed, failed }).toEqual({ welcomed: agents.length, failed: 0 });
  };

  /** 10 % of the agents present leave, picked at random, and as many new ones join. */
  const churn = async (view: FleetView, tag: string): Promise<{ left: number; joined: number }> => {
    const present = [...view.agents.keys()];
    const count = Math.round(present.length * CHURN);
    for (let i = present.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [present[i], present[j]] = [present[j] as string, present[i] as string];
    }
    const left = await pool.leave(present.slice(0, count));
    await join(newAgents(count, tag));
    return { left, joined: count };
  };

  const rolloutStatus = async (id: string): Promise<RolloutStatus> => {
    const response = await api<RolloutStatus>(plane.authority.url, plane.token, "GET", `/rollouts/${id}`);
    if (response.status !== 200) throw new Error(`GET /rollouts/${id} answered ${response.status}`);
    return response.body;
  };

  const everyAgentRuns = (version: number) =>
    waitUntil(
      `every agent present running v${version}`,
      async () => {
        const view = await pool.view();
        return [...view.agents.values()].every((a) => a.running === version) ? view : undefined;
      },
      60_000,
      100,
    );

  it("completes, every agent present ends on the candidate, and the candidate cohort only grows", async () => {
    const stable = await plane.submit(configOf(20, "stable"));
    await join(newAgents(AGENTS, "initial"));
    await everyAgentRuns(stable);
    const candidate = await plane.submit(configOf(20, "candidate"));

    const started = Date.now();
    const created = await api<{ id: string }>(
      plane.authority.url,
      plane.token,
      "POST",
      `/fleets/${FLEET}/rollouts`,
      { version: candidate, plan: PLAN },
    );
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const id = created.body.id;

    const samples: Sample[] = [];
    const churned = new Set<number>();
    let left = 0;
    let joinedDuring = 0;
    let final: RolloutStatus;
    const deadline = Date.now() + 120_000;
    for (;;) {
      const view = await pool.view();
      const now = await rolloutStatus(id);
      const onCandidate = new Set(
        [...view.agents.values()].filter((a) => a.running === candidate).map((a) => a.agentId),
      );
      samples.push({
        stage: now.rollout.stage.index,
        phase: now.rollout.phase,
        present: new Set(view.agents.keys()),
        onCandidate,
      });
      if (FINISHED.has(now.rollout.phase)) {
        final = now;
        break;
      }
      if (Date.now() > deadline)
        throw new Error(`rollout ${id} still ${now.rollout.phase} at stage ${now.rollout.stage.index}`);
      const stage = now.rollout.stage.index;
      if (now.rollout.phase === "running" && !churned.has(stage)) {
        churned.add(stage);
        const moved = await churn(view, `stage${stage}`);
        left += moved.left;
        joinedDuring += moved.joined;
      } else await sleep(200);
    }
    const rolloutMs = Date.now() - started;
    expect(final.rollout.phase, JSON.stringify(final.events)).toBe("succeeded");
    expect(
      final.events.map((e) => `${e.from}/${e.from_stage} → ${e.to}/${e.to_stage} (${e.reason.kind})`),
    ).toEqual([
      "pending/0 → running/0 (started)",
      "running/0 → running/1 (bake_complete)",
      "running/1 → running/2 (bake_complete)",
      "running/2 → succeeded/2 (bake_complete)",
    ]);

    // Agents joining after the rollout get the new stable version too.
    const after = await churn(await pool.view(), "after");
    left += after.left;
    joinedDuring += after.joined;
    const end = await everyAgentRuns(candidate);
    const convergedMs = Date.now() - started;
    const listed = await waitUntil(
      `the authority showing every connected agent acked at v${candidate}`,
      async () => {
        const agents = await agentsOf(plane.authority.url, plane.token, FLEET);
        const connected = [...agents.values()].filter((a) => a.connected);
        const ok =
          connected.length === end.agents.size &&
          connected.every(
            (a) => a.running_version === candidate && a.state === "acked" && end.agents.has(a.id),
          );
        return ok ? connected : undefined;
      },
      60_000,
      500,
    );

    let outsideCohort = 0;
    let leftCandidate = 0;
    for (const [i, sample] of samples.entries()) {
      const percent = PLAN.stages[sample.stage]?.fleet_percent ?? 0;
      const threshold = sample.phase === "pending" ? 0 : candidateThreshold(percent);
      for (const agentId of sample.onCandidate) if (cohortBucket(id, agentId) >= threshold) outsideCohort++;
      const next = samples[i + 1];
      if (next === undefined) continue;
      for (const agentId of sample.onCandidate)
        if (next.present.has(agentId) && !next.onCandidate.has(agentId)) leftCandidate++;
    }
    const downgraded = [...end.agents.values()].filter((a) =>
      a.acked.some((version, k) => k > 0 && version < (a.acked[k - 1] ?? 0)),
    ).length;
    /** The most agents seen on the candidate at each stage. */
    const perStage = PLAN.stages.map((_, k) =>
      Math.max(0, ...samples.filter((s) => s.stage === k).map((s) => s.onCandidate.size)),
    );

    console.log(
      `churn: ${AGENTS} agents, ${left} left and ${joinedDuring} joined during and after the rollout; ` +
        `succeeded in ${rolloutMs} ms, all ${end.agents.size} present on v${candidate} after ${convergedMs} ms; ` +
        `${samples.length} samples, candidate agents per stage ${perStage.join(" → ")}; ${end.healthReports} health reports; ` +
        `${outsideCohort} outside their cohort, ${leftCandidate} left the candidate, ${downgraded} downgraded, ${end.lost} streams lost`,
    );
    reportReliability({
      suite: "scale",
      scenario: "rollout with agent churn",
      loadHeld: `${AGENTS} simulated agents on 2 distributors, 10% leaving and 10% joining per stage`,
      faultsInjected: left,
      badInputsTried: 0,
      requestsSent: end.agents.size,
      requestsFailed: end.agents.size - listed.length,
      bundlesLost: 0,
      convergenceMs: convergedMs,
      notes: `faults = agents that left, requests = agents present at the end; ${end.lost} streams lost; rollout succeeded in ${rolloutMs} ms; ${outsideCohort} outside cohort, ${leftCandidate} left the candidate`,
    });
    expect(outsideCohort).toBe(0);
    expect(leftCandidate).toBe(0);
    expect(downgraded).toBe(0);
    expect(end.lost).toBe(0);
    expect(end.agents.size).toBe(AGENTS);
    expect(listed).toHaveLength(AGENTS);
  });
});
