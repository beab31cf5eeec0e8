/**
 * Rollouts end to end, every piece a real process: `coherent authority --no-controller` on
 * Postgres, two `coherent controller`s electing a leader (tick 200 ms), one `coherent
 * distributor` flushing health every 500 ms, six managed agents reporting every 500 ms, and
 * loopback upstreams: blue and green answer 200, broken answers 500. A steady load goes
 * through every agent during each rollout. One fleet, three rollouts in turn:
 *
 * (a) a healthy bundle (blue → green) promotes through 50% → 80% → 100%;
 * (b) a bundle routing to the broken upstream trips the error-rate gate at its first stage,
 *     a restore bundle with the stable content is published and every agent ends on it;
 * (c) the leading controller is killed with SIGKILL mid-stage: the other takes over and the
 *     rollout completes, every stage once, in order.
 *
 * A stage promotes only when its candidate cohort served `min_requests` (gates.ts: below it
 * every check is "inconclusive", which never promotes). The cohort is sha256(rollout id +
 * agent id) mod 10000 against the stage's percent, and the id is random, so six agents at 50%
 * leave the first stage empty once in 64 rollouts; the rollout would then wait forever. The
 * test computes the cohort from the id it got back and, in that case, starts one more agent
 * whose id falls in it — an agent joining mid-rollout, which the distributor must place in
 * its cohort like any other.
 */
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FINISHED_PHASES, type Phase } from "../../rollout-controller/state-machine.js";
import { type WrittenKeyPair, writeKeyPair } from "../../services/bundle/index.js";
import { candidateThreshold, cohortBucket } from "../../services/distributor/cohort.js";
import { startUpstream, type Upstream } from "../support/upstream.js";
import {
  type AuthorityProcess,
  agentsOf,
  api,
  coherentctl,
  controllerLease,
  createAdminToken,
  createPostgresDatabase,
  type DistributorProcess,
  leaseHolderOf,
  NO_POSTGRES,
  type PostgresDatabase,
  startAuthorityProcess,
  startControllerProcess,
  startDistributorProcess,
} from "./support/coherent.js";
import { type SteadyLoad, steadyLoad } from "./support/load.js";
import { type ManagedAgent, routesTo, startManagedAgent } from "./support/managed-agent.js";
import { type LoggedProcess, stopAll, waitUntil } from "./support/processes.js";

const FLEET = "edge";
const AGENTS = 6;
const MIN_REQUESTS = 20;
const ERROR_RATE_THRESHOLD = 0.05;
/** The first stage at 50% leaves six agents' cohort empty once in 64 draws (see above). */
const PLAN = {
  stages: [
    { name: "canary", fleet_percent: 50, bake_time: "2s" },
    { name: "most", fleet_percent: 80, bake_time: "2s" },
    { name: "all", fleet_percent: 100 },
  ],
  health_gates: [{ metric: "error_rate", threshold: ERROR_RATE_THRESHOLD }],
  min_requests: MIN_REQUESTS,
};
/** A rollout that went through every stage of PLAN once, in order. */
const ALL_STAGES = [
  "pending/0 → running/0 (started)",
  "running/0 → running/1 (bake_complete)",
  "running/1 → running/2 (bake_complete)",
  "running/2 → succeeded/2 (bake_complete)",
];

interface RolloutEvent {
  at: string;
  from: string;
  to: string;
  from_stage: number;
  to_stage: number;
  actor: string;
  reason: { kind: string };
}

interface CheckJson {
  check: string;
  bound: string;
  verdict: string;
  observed: number;
  threshold: number;
  summary: string;
}

interface RolloutStatus {
  rollout: {
    id: string;
    phase: Phase;
    stage: { index: number };
    stages: Array<{ fleet_percent: number }>;
    reason: { kind: string; check?: CheckJson; summary: string } | null;
    restore_version: number | null;
    applied: boolean;
  };
  events: RolloutEvent[];
}

/** What the authority showed at one moment of a rollout: agents read first, then the rollout. */
interface Sample {
  readonly at: number;
  readonly phase: string;
  readonly stage: number;
  readonly onCandidate: ReadonlySet<string>;
}

const eventLine = (e: RolloutEvent) => `${e.from}/${e.from_stage} → ${e.to}/${e.to_stage} (${e.reason.kind})`;

/** Milliseconds each stage lasted, from the events of a rollout. */
const stageTimes = (events: readonly RolloutEvent[]) =>
  events.slice(1).map((e, i) => Date.parse(e.at) - Date.parse(events[i]?.at ?? e.at));

// Two controller processes elect a leader on a shared Postgres: skipped only without one
// (COHERENT_TEST_NO_POSTGRES=1).
describe.skipIf(NO_POSTGRES)("rollouts across real processes", { timeout: 60_000 }, () => {
  let database: PostgresDatabase;
  let dir: string;
  let keys: WrittenKeyPair;
  let token: string;
  let authority: AuthorityProcess;
  let distributor: DistributorProcess;
  let blue: Upstream;
  let green: Upstream;
  let broken: Upstream;
  const controllers: LoggedProcess[] = [];
  const agents = new Map<string, ManagedAgent>();
  /** Each agent's listener, for the load. */
  const listeners = new Map<string, string>();

  const startAgent = async (agentId: string): Promise<ManagedAgent> => {
    const agentDir = join(dir, agentId);
    await mkdir(agentDir, { recursive: true });
    const agent = await startManagedAgent({
      agentId,
      fleet: FLEET,
      distributors: [distributor.address],
      trustedKeys: [{ kid: keys.kid, publicFile: keys.publicFile }],
      dir: agentDir,
    });
    agents.set(agentId, agent);
    listeners.set(agentId, await waitUntil(`${agentId} listening`, () => agent.listenerUrl(), 20_000));
    return agent;
  };

  beforeAll(async () => {
    database = await createPostgresDatabase();
    dir = await mkdtemp(join(tmpdir(), "coherent-rollout-e2e-"));
    keys = await writeKeyPair(join(dir, "keys"));
    token = await createAdminToken(database);
    const controller = (name: string) =>
      startControllerProcess({ database, signingKeyFile: keys.privateFile, tick: "200ms", name });
    let first: LoggedProcess;
    let second: LoggedProcess;
    [authority, first, second, blue, green, broken] = await Promise.all([
      startAuthorityProcess({ database, signingKeyFile: keys.privateFile, controller: false }),
      controller("controller a"),
      controller("controller b"),
      startUpstream({ name: "blue" }),
      startUpstream({ name: "green" }),
      startUpstream({ name: "broken", status: 500 }),
    ]);
    controllers.push(first, second);
    expect((await api(authority.url, token, "POST", "/fleets", { name: FLEET })).status).toBe(201);
    expect(await submit(blue)).toBe(1);
    distributor = await startDistributorProcess({
      id: "d1",
      region: "eu-west",
      authorities: [authority.feed],
      cacheDir: join(dir, "d1"),
      trustedKeys: [keys.publicFile],
      healthFlush: "500ms",
    });
    // Three at a time: six tsx processes compiling at once starve each other on two cores.
    for (let i = 0; i < AGENTS; i += 3)
      await Promise.all(
        Array.from({ length: Math.min(3, AGENTS - i) }, (_, k) => startAgent(`agent-${i + k + 1}`)),
      );
    await everyAgentServes(blue);
  }, 180_000);

  afterAll(async () => {
    await stopAll([
      ...[...agents.values()].map((a) => a.process),
      distributor?.process,
      ...controllers,
      authority?.process,
    ]);
    await Promise.all([blue?.close(), green?.close(), broken?.close()]);
    if (dir) await rm(dir, { recursive: true, force: true });
    await database?.drop();
  });

  async function submit(upstream: Upstream): Promise<number> {
    const response = await api(authority.url, token, "POST", `/fleets/${FLEET}/bundles`, {
      config: routesTo(upstream),
    });
    expect(response.status, JSON.stringify(response.body)).toBe(201);
    return Number(response.body.version);
  }

  /** Every agent serves through `upstream`: each of a few requests through each lands there. */
  function everyAgentServes(upstream: Upstream): Promise<true> {
    return waitUntil(
      `every agent serving ${upstream.name}`,
      async () => {
        for (const agent of agents.values()) {
          for (let i = 0; i < 3; i++) {
            const served = await agent.servedBy();
            if (served?.upstream !== upstream.name) return undefined;
          }
        }
        return true;
      },
      20_000,
    );
  }

  /** The authority's agent list shows every agent connected and ACKed at `version`. */
  function everyAgentAcked(version: number) {
    return waitUntil(`every agent acked at v${version}`, async () => {
      const listed = await agentsOf(authority.url, token, FLEET);
      const ok = [...agents.keys()].every((id) => {
        const view = listed.get(id);
        return view?.running_version === version && view.state === "acked" && view.connected;
      });
      return ok ? listed : undefined;
    });
  }

  const status = async (id: string): Promise<RolloutStatus> => {
    const response = await api<RolloutStatus>(authority.url, token, "GET", `/rollouts/${id}`);
    expect(response.status).toBe(200);
    return response.body;
  };

  /** The agents of `agentIds` whose bucket in `rolloutId` is below the percent's threshold. */
  const cohort = (rolloutId: string, percent: number, agentIds: Iterable<string> = agents.keys()) =>
    new Set([...agentIds].filter((id) => cohortBucket(rolloutId, id) < candidateThreshold(percent)));

  /**
   * Starts a rollout of `version` with PLAN and follows it to its end; meanwhile an agent that
   * falls in its first cohort joins if none does (see above), then `during` runs.
   */
  async function runRollout(
    version: number,
    load: SteadyLoad,
    during?: (rolloutId: string) => Promise<void>,
  ): Promise<{ id: string; final: RolloutStatus; samples: Sample[] }> {
    const response = await api<RolloutStatus["rollout"]>(
      authority.url,
      token,
      "POST",
      `/fleets/${FLEET}/rollouts`,
      { version, plan: PLAN },
    );
    expect(response.status, JSON.stringify(response.body)).toBe(201);
    const { id } = response.body;
    const firstPercent = PLAN.stages[0]?.fleet_percent ?? 0;
    const join = async () => {
      if (cohort(id, firstPercent).size > 0) return;
      let n = agents.size + 1;
      while (cohort(id, firstPercent, [`agent-${n}`]).size === 0) n++;
      console.log(`rollout: no agent in ${id}'s first cohort; agent-${n}, which is, joins`);
      await startAgent(`agent-${n}`);
      load.add(`${listeners.get(`agent-${n}`)}/load`);
    };
    const [followed] = await Promise.all([follow(id, version), join().then(() => during?.(id))]);
    return { id, ...followed };
  }

  /** Samples the rollout every 200 ms until it finishes; the agents are read before the rollout. */
  async function follow(id: string, candidate: number): Promise<{ final: RolloutStatus; samples: Sample[] }> {
    const samples: Sample[] = [];
    const deadline = Date.now() + 45_000;
    for (;;) {
      const listed = await agentsOf(authority.url, token, FLEET);
      const now = await status(id);
      const onCandidate = new Set(
        [...listed.values()].filter((a) => a.running_version === candidate).map((a) => a.id),
      );
      samples.push({ at: Date.now(), phase: now.rollout.phase, stage: now.rollout.stage.index, onCandidate });
      // Applied, not only finished: a rollback's restore bundle is published after its phase.
      if (FINISHED_PHASES.has(now.rollout.phase) && now.rollout.applied) return { final: now, samples };
      if (Date.now() > deadline)
        throw new Error(`rollout ${id} still ${now.rollout.phase} at stage ${now.rollout.stage.index}`);
      await sleep(200);
    }
  }

  /**
   * Candidate agents only ever joined: each sample's are within the cohort of the stage read
   * after them, their number never fell, and the first stage had at least one.
   */
  function expectCohortsGrew(id: string, samples: readonly Sample[]): void {
    let before = 0;
    for (const sample of samples) {
      if (sample.phase === "running") {
        const percent = PLAN.stages[sample.stage]?.fleet_percent ?? 0;
        const allowed = cohort(id, percent);
        for (const agentId of sample.onCandidate)
          expect(allowed, `${agentId} at stage ${sample.stage}`).toContain(agentId);
      }
      expect(sample.onCandidate.size).toBeGreaterThanOrEqual(before);
      before = sample.onCandidate.size;
    }
    expect(samples.some((s) => s.phase === "running" && s.stage === 0 && s.onCandidate.size > 0)).toBe(true);
  }

  const loadUrls = () => [...listeners.values()].map((url) => `${url}/load`);

  it("promotes a healthy bundle through 50% → 80% → 100% while every request succeeds", async () => {
    const candidate = await submit(green);
    expect(candidate).toBe(2);
    const load = steadyLoad(loadUrls(), 50);
    const rollout = await runRollout(candidate, load);
    const { final, samples } = rollout;
    const result = await load.stop();

    expect(final.rollout.phase).toBe("succeeded");
    expect(final.events.map(eventLine)).toEqual(ALL_STAGES);
    expect(final.events.every((e) => e.actor === "rollout-controller")).toBe(true);
    expectCohortsGrew(rollout.id, samples);
    const state = await api(authority.url, token, "GET", `/fleets/${FLEET}/state`);
    expect(state.body).toMatchObject({
      stable_version: candidate,
      candidate_version: null,
      rollout_id: null,
    });
    await everyAgentAcked(candidate);
    await everyAgentServes(green);
    console.log(
      `rollout (a): stages took ${stageTimes(final.events).join(", ")} ms (bake 2000, 2000, 0); ` +
        `cohorts seen ${[0, 1, 2].map((k) => Math.max(0, ...samples.filter((s) => s.stage === k).map((s) => s.onCandidate.size))).join(" → ")} of ${agents.size} agents; ` +
        `${result.sent} requests, ${result.failures.length} failed, by upstream ${JSON.stringify(result.byUpstream)}`,
    );
    expect(result.failures).toEqual([]);
    expect(result.byUpstream.blue).toBeGreaterThan(0);
    expect(result.byUpstream.green).toBeGreaterThan(MIN_REQUESTS);
  });

  it("rolls a failing bundle back at its first stage and puts every agent on the stable content", async () => {
    const stable = 2;
    const candidate = await submit(broken);
    const load = steadyLoad(loadUrls(), 50);
    const rollout = await runRollout(candidate, load);
    const { final, samples } = rollout;
    const rolledBackAt = Date.now();
    const firstCohort = cohort(rollout.id, PLAN.stages[0]?.fleet_percent ?? 0);

    expect(final.rollout.phase).toBe("rolled_back");
    expect(final.rollout.stage.index).toBe(0);
    expect(final.events.map(eventLine)).toEqual([
      "pending/0 → running/0 (started)",
      "running/0 → rolled_back/0 (check_failed)",
    ]);
    const check = final.rollout.reason?.check;
    expect(final.rollout.reason?.kind).toBe("check_failed");
    expect(check).toMatchObject({ check: "error_rate", bound: "absolute", verdict: "fail" });
    expect(check?.threshold).toBe(ERROR_RATE_THRESHOLD);
    expect(check?.observed).toBeGreaterThan(ERROR_RATE_THRESHOLD);
    // Only the first cohort ever ran the candidate.
    for (const sample of samples) for (const id of sample.onCandidate) expect(firstCohort).toContain(id);

    // The restore: a newer version with the stable's content, naming what it undoes.
    const restore = final.rollout.restore_version ?? 0;
    expect(restore).toBeGreaterThan(candidate);
    const [restored, original] = await Promise.all([
      api(authority.url, token, "GET", `/fleets/${FLEET}/bundles/${restore}`),
      api(authority.url, token, "GET", `/fleets/${FLEET}/bundles/${stable}`),
    ]);
    expect(restored.body).toMatchObject({
      rollback_of: candidate,
      content_sha256: original.body.content_sha256,
    });
    const state = await api(authority.url, token, "GET", `/fleets/${FLEET}/state`);
    expect(state.body).toMatchObject({ stable_version: restore, candidate_version: null });
    await everyAgentAcked(restore);
    await everyAgentServes(green);
    const restoredMs = Date.now() - rolledBackAt;
    const result = await load.stop();

    // The reason, as an operator finds it: `rollout status` (exit 4: rolled back) and the audit log.
    const ctl = await coherentctl(["rollout", "status", rollout.id, "-o", "json"], {
      url: authority.url,
      token,
    });
    expect(ctl.code, ctl.stderr).toBe(4);
    const shown = JSON.parse(ctl.stdout) as RolloutStatus;
    expect(shown.rollout).toMatchObject({
      id: rollout.id,
      phase: "rolled_back",
      restore_version: restore,
      applied: true,
    });
    expect(shown.rollout.reason?.check).toMatchObject({
      check: "error_rate",
      observed: check?.observed,
      threshold: ERROR_RATE_THRESHOLD,
    });
    const audit = await api<{ entries: Array<{ actor: string; details: Record<string, unknown> }> }>(
      authority.url,
      token,
      "GET",
      "/audit?action=rollout.rolled_back",
    );
    const entry = audit.body.entries.find((e) => e.details.rollout_id === rollout.id);
    expect(entry).toMatchObject({
      actor: "rollout-controller",
      details: {
        from: "running",
        to: "rolled_back",
        from_stage: "canary",
        reason: {
          kind: "check_failed",
          check: { check: "error_rate", observed: check?.observed, threshold: ERROR_RATE_THRESHOLD },
        },
      },
    });

    const [started, rolledBack] = final.events.map((e) => Date.parse(e.at));
    console.log(
      `rollout (b): rolled back ${(rolledBack ?? 0) - (started ?? 0)} ms into its first stage (${check?.summary}); ` +
        `every agent on restore v${restore} ${restoredMs} ms after; ${result.sent} requests, ${result.failures.length} answered 5xx by the ${firstCohort.size} candidate agents`,
    );
    // The failures are the broken upstream's answers, through candidate agents only.
    const candidateUrls = new Set([...firstCohort].map((id) => `${listeners.get(id)}/load`));
    for (const failure of result.failures) {
      const [, url, what] = /^GET (\S+): (.*)$/.exec(failure) ?? [];
      expect(candidateUrls, failure).toContain(url);
      // 500 from the upstream as it is; a 5xx of the proxy's own (a breaker opening) would be fair too.
      expect(what).toMatch(/^5\d\d$/);
    }
    // And now nothing fails anywhere.
    const after = steadyLoad(loadUrls(), 50);
    await sleep(500);
    expect((await after.stop()).failures).toEqual([]);
  });

  it("completes a rollout under the other controller when the leader is killed mid-stage", async () => {
    const leaseHolder = () => controllerLease(database.url);
    const before = await leaseHolder();
    const leader = controllers.find((p) => leaseHolderOf(p) === before.holder);
    const survivor = controllers.find((p) => p !== leader);
    if (!leader || !survivor) throw new Error(`no controller holds the lease (${before.holder})`);
    expect(leader.lines.some((l) => l.msg === "rollout controller leading")).toBe(true);

    const candidate = await submit(blue);
    const load = steadyLoad(loadUrls(), 50);
    let killedAt = 0;
    let takeoverMs = 0;
    const { final, samples, id } = await runRollout(candidate, load, async (rolloutId) => {
      // Mid-stage: the second stage entered, its bake not done.
      await waitUntil(
        "the rollout at its second stage",
        async () => ((await status(rolloutId)).rollout.stage.index === 1 ? true : undefined),
        30_000,
      );
      const seen = survivor.lines.length;
      killedAt = Date.now();
      await leader.stop("SIGKILL");
      await survivor.waitFor(
        (line) => line.msg === "rollout controller leading" && survivor.lines.indexOf(line) >= seen,
        15_000,
      );
      takeoverMs = Date.now() - killedAt;
    });
    const result = await load.stop();

    expect(takeoverMs).toBeLessThan(15_000);
    const after = await leaseHolder();
    expect(after.holder).toBe(leaseHolderOf(survivor));
    expect(after.epoch).toBeGreaterThan(before.epoch);
    expect(final.rollout.phase).toBe("succeeded");
    expect(final.events.map(eventLine)).toEqual(ALL_STAGES);
    // The stage the leader was in, and the last, were ended by the survivor.
    for (const event of final.events.slice(2)) expect(Date.parse(event.at)).toBeGreaterThan(killedAt);
    expectCohortsGrew(id, samples);
    await everyAgentAcked(candidate);
    await everyAgentServes(blue);
    const verified = await api(authority.url, token, "GET", "/audit/verify");
    expect(verified.body).toMatchObject({ ok: true });
    console.log(
      `rollout (c): SIGKILL of the leader in the second stage; the other led ${takeoverMs} ms later (epoch ${before.epoch} → ${after.epoch}); ` +
        `stages took ${stageTimes(final.events).join(", ")} ms; ${result.sent} requests, ${result.failures.length} failed`,
    );
    expect(result.failures).toEqual([]);
  });
});
