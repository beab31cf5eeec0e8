import { describe, expect, it } from "vitest";
import { AgentState } from "../../proto/coherent/v1/authority.js";
import type { Hello } from "../../proto/coherent/v1/distribution.js";
import { cohortBucket } from "./cohort.js";
import { type AgentRecord, DistributorCore } from "./core.js";
import { MemoryFleetSource } from "./memory-fleet-source.js";
import { fakeBundle, fleetState } from "./test-support.js";

function setup(): { core: DistributorCore; source: MemoryFleetSource; clock: { ms: number } } {
  const clock = { ms: 1_000 };
  const source = new MemoryFleetSource();
  source.putBundle(fakeBundle(1));
  source.putBundle(fakeBundle(2));
  source.putBundle(fakeBundle(3));
  source.putState(fleetState({ stableVersion: 1 }));
  const core = new DistributorCore({ source, distributorId: "dist-1", now: () => clock.ms });
  return { core, source, clock };
}

function hello(agentId: string, fields: Partial<Hello> = {}): Hello {
  return {
    agentId,
    fleet: "edge",
    region: "eu-west",
    labels: {},
    currentVersion: 0,
    currentContentSha256: "",
    softwareVersion: "test",
    ...fields,
  };
}

describe("DistributorCore", () => {
  it("wants the stable version pushed to a new agent", () => {
    const { core } = setup();
    const agent = core.hello(hello("a"));
    expect(core.bundleToPush(agent)?.version).toBe(1);
  });

  it("pushes nothing to an agent already running the desired version with the same content", () => {
    const { core } = setup();
    const running = fakeBundle(1);
    const agent = core.hello(hello("a", { currentVersion: 1, currentContentSha256: running.contentSha256 }));
    expect(core.bundleToPush(agent)).toBeUndefined();
    expect(agent.state).toBe(AgentState.AGENT_STATE_ACKED);
  });

  it("pushes again when the agent runs the desired version with other content", () => {
    const { core } = setup();
    const agent = core.hello(hello("a", { currentVersion: 1, currentContentSha256: "f".repeat(64) }));
    expect(core.bundleToPush(agent)?.version).toBe(1);
  });

  it("does not push the same version twice while the first push is unanswered", () => {
    const { core } = setup();
    const agent = core.hello(hello("a"));
    core.pushed(agent, 1, "n1");
    expect(core.bundleToPush(agent)).toBeUndefined();
    expect(agent.state).toBe(AgentState.AGENT_STATE_PENDING);
  });

  it("matches an Ack by nonce and measures the push-to-ack latency", () => {
    const { core, clock } = setup();
    const agent = core.hello(hello("a"));
    core.pushed(agent, 1, "n1");
    clock.ms += 250;
    expect(core.ack(agent, { version: 1, nonce: "n1", contentSha256: fakeBundle(1).contentSha256 })).toEqual({
      version: 1,
      latencyMs: 250,
    });
    expect(agent.runningVersion).toBe(1);
    expect(agent.state).toBe(AgentState.AGENT_STATE_ACKED);
    expect(core.bundleToPush(agent)).toBeUndefined();
  });

  it("never re-pushes a NACKed version, even after a reconnect, but pushes a newer one", () => {
    const { core, source } = setup();
    let agent = core.hello(hello("a"));
    core.pushed(agent, 1, "n1");
    expect(
      core.nack(agent, { version: 1, nonce: "n1", errors: [{ path: "routes[0]", message: "x", code: "c" }] }),
    ).toBe(1);
    expect(agent.state).toBe(AgentState.AGENT_STATE_NACKED);
    expect(core.bundleToPush(agent)).toBeUndefined();
    core.disconnected(agent);
    agent = core.hello(hello("a"));
    expect(core.bundleToPush(agent)).toBeUndefined();
    source.putState(fleetState({ stableVersion: 2, generation: 2 }));
    expect(core.bundleToPush(agent)?.version).toBe(2);
  });

  it("ignores an Ack or a Nack without a nonce, and an Ack of no newer version", () => {
    const { core } = setup();
    const agent = core.hello(
      hello("a", { currentVersion: 2, currentContentSha256: fakeBundle(2).contentSha256 }),
    );
    core.pushed(agent, 3, "n3");
    expect(core.nack(agent, { version: 3, nonce: "", errors: [] })).toBeUndefined();
    expect(
      core.ack(agent, { version: 3, nonce: "", contentSha256: fakeBundle(3).contentSha256 }),
    ).toBeUndefined();
    expect(
      core.ack(agent, { version: 2, nonce: "old", contentSha256: fakeBundle(2).contentSha256 }),
    ).toBeUndefined();
    expect(
      core.ack(agent, { version: 1, nonce: "older", contentSha256: fakeBundle(1).contentSha256 }),
    ).toBeUndefined();
    expect(agent).toMatchObject({
      runningVersion: 2,
      pendingNonce: "n3",
      state: AgentState.AGENT_STATE_PENDING,
    });
    expect(agent.nacked.size).toBe(0);
  });

  describe("when a newer push went out before the previous one was answered", () => {
    /** Running 1; v2 pushed as n2, then v3 as n3 once the fleet moved on, both unanswered. */
    function superseded(): ReturnType<typeof setup> & { agent: AgentRecord } {
      const setUp = setup();
      const { core, source, clock } = setUp;
      const agent = core.hello(
        hello("a", { currentVersion: 1, currentContentSha256: fakeBundle(1).contentSha256 }),
      );
      source.putState(fleetState({ stableVersion: 2, generation: 2 }));
      expect(core.bundleToPush(agent)?.version).toBe(2);
      core.pushed(agent, 2, "n2");
      clock.ms += 100;
      source.putState(fleetState({ stableVersion: 3, generation: 3 }));
      expect(core.bundleToPush(agent)?.version).toBe(3);
      core.pushed(agent, 3, "n3");
      core.drainStatuses();
      return { ...setUp, agent };
    }

    it("takes the Ack of the older push as the running version and keeps waiting for the newer", () => {
      const { core, agent, clock } = superseded();
      clock.ms += 50;
      expect(
        core.ack(agent, { version: 2, nonce: "n2", contentSha256: fakeBundle(2).contentSha256 }),
      ).toEqual({
        version: 2,
        latencyMs: undefined,
      });
      expect(agent).toMatchObject({
        runningVersion: 2,
        runningContentSha256: fakeBundle(2).contentSha256,
        pendingNonce: "n3",
        pendingVersion: 3,
        state: AgentState.AGENT_STATE_PENDING,
      });
      expect(core.bundleToPush(agent)).toBeUndefined();
      expect(core.drainStatuses()).toMatchObject([
        { agentId: "a", runningVersion: 2, desiredVersion: 3, state: AgentState.AGENT_STATE_PENDING },
      ]);
    });

    it("shows running 2, nacked 3 with the errors, after an Ack of 2 then a Nack of 3", () => {
      const { core, agent } = superseded();
      core.ack(agent, { version: 2, nonce: "n2", contentSha256: fakeBundle(2).contentSha256 });
      const errors = [{ path: "config.routes[0].pool", message: "unknown pool", code: "unknown_reference" }];
      expect(core.nack(agent, { version: 3, nonce: "n3", errors })).toBe(3);
      expect(core.statusOf(agent)).toMatchObject({
        runningVersion: 2,
        desiredVersion: 3,
        state: AgentState.AGENT_STATE_NACKED,
        nackVersion: 3,
        nackErrors: errors,
      });
      expect(agent.pendingNonce).toBe("");
      expect(core.bundleToPush(agent)).toBeUndefined();
    });

    it("shows running 3, acked, after an Ack of 2 then of 3, timing only the push of 3", () => {
      const { core, agent, clock } = superseded();
      clock.ms += 30;
      core.ack(agent, { version: 2, nonce: "n2", contentSha256: fakeBundle(2).contentSha256 });
      clock.ms += 20;
      expect(
        core.ack(agent, { version: 3, nonce: "n3", contentSha256: fakeBundle(3).contentSha256 }),
      ).toEqual({
        version: 3,
        latencyMs: 50,
      });
      expect(core.statusOf(agent)).toMatchObject({
        runningVersion: 3,
        desiredVersion: 3,
        state: AgentState.AGENT_STATE_ACKED,
        nackVersion: 0,
      });
      expect(agent.pendingNonce).toBe("");
      expect(core.bundleToPush(agent)).toBeUndefined();
    });

    it("records a Nack of the older push as refused without touching the pending one", () => {
      const { core, agent, source } = superseded();
      const errors = [{ path: "signed_bundle", message: "bad signature", code: "bad_signature" }];
      expect(core.nack(agent, { version: 2, nonce: "n2", errors })).toBe(2);
      expect(agent).toMatchObject({
        runningVersion: 1,
        pendingNonce: "n3",
        pendingVersion: 3,
        state: AgentState.AGENT_STATE_PENDING,
        nackVersion: 2,
        nackErrors: errors,
      });
      expect([...agent.nacked]).toEqual([2]);
      // Were the fleet to go back to 2, it would not be sent again.
      source.putState(fleetState({ stableVersion: 2, generation: 4 }));
      expect(core.bundleToPush(agent)).toBeUndefined();
      source.putState(fleetState({ stableVersion: 3, generation: 5 }));
      expect(
        core.ack(agent, { version: 3, nonce: "n3", contentSha256: fakeBundle(3).contentSha256 })?.version,
      ).toBe(3);
      expect(agent.state).toBe(AgentState.AGENT_STATE_ACKED);
      expect(agent.nacked.size).toBe(0);
    });
  });

  it("sends the candidate to the agents whose bucket is in the stage, the stable to the rest", () => {
    const { core, source } = setup();
    const ids = Array.from({ length: 40 }, (_, i) => `agent-${i}`);
    const agents = ids.map((id) => core.hello(hello(id)));
    source.putState(
      fleetState({
        stableVersion: 1,
        candidateVersion: 2,
        rolloutId: "r1",
        candidatePercent: 50,
        generation: 2,
      }),
    );
    for (const agent of agents) {
      const expected = cohortBucket("r1", agent.agentId) < 5_000 ? 2 : 1;
      expect(core.bundleToPush(agent)?.version).toBe(expected);
    }
    expect(new Set(agents.map((a) => core.bundleToPush(a)?.version))).toEqual(new Set([1, 2]));
  });

  it("takes each agent's bucket in the current rollout, a new rollout's too", () => {
    const { core, source } = setup();
    const agents = Array.from({ length: 40 }, (_, i) => core.hello(hello(`agent-${i}`)));
    const rollout = { stableVersion: 1, candidateVersion: 2, candidatePercent: 50 };
    let generation = 1;
    for (const rolloutId of ["r1", "r2", "r1"]) {
      source.putState(fleetState({ ...rollout, rolloutId, generation: ++generation }));
      const desired = agents.map((agent) => core.desiredFor(agent));
      expect(desired).toEqual(
        agents.map((agent) => (cohortBucket(rolloutId, agent.agentId) < 5_000 ? 2 : 1)),
      );
    }
  });

  it("pushes nothing when the desired bundle is not held yet", () => {
    const { core, source } = setup();
    source.putState(fleetState({ stableVersion: 9, generation: 2 }));
    expect(core.bundleToPush(core.hello(hello("a")))).toBeUndefined();
  });

  it("lists each changed agent once per drain, connected or not", () => {
    const { core } = setup();
    const agent = core.hello(hello("a", { labels: { zone: "z1" } }));
    core.pushed(agent, 1, "n1");
    const [status, ...rest] = core.drainStatuses();
    expect(rest).toEqual([]);
    expect(status).toMatchObject({
      agentId: "a",
      distributorId: "dist-1",
      desiredVersion: 1,
      state: AgentState.AGENT_STATE_PENDING,
      connected: true,
      labels: { zone: "z1" },
    });
    expect(core.drainStatuses()).toEqual([]);
    core.disconnected(agent);
    expect(core.drainStatuses()).toMatchObject([{ agentId: "a", connected: false }]);
    expect(core.connectedCount()).toBe(0);
  });

  it("reports every agent of a changed fleet again and yields only the connected ones", () => {
    const { core, source } = setup();
    const gone = core.hello(hello("gone"));
    core.hello(hello("here"));
    core.hello(hello("elsewhere", { fleet: "other" }));
    core.disconnected(gone);
    core.drainStatuses();
    source.putState(fleetState({ stableVersion: 2, generation: 2 }));
    expect([...core.fleetChanged("edge")].map((a) => a.agentId)).toEqual(["here"]);
    expect(
      core
        .drainStatuses()
        .map((s) => [s.agentId, s.desiredVersion])
        .sort(),
    ).toEqual([
      ["gone", 2],
      ["here", 2],
    ]);
  });

  it("forgets agents gone longer than the prune horizon, keeps connected ones", () => {
    const { core, clock } = setup();
    const gone = core.hello(hello("gone"));
    core.hello(hello("here"));
    core.disconnected(gone);
    core.drainStatuses();
    clock.ms += 10_000;
    core.prune(clock.ms - 5_000);
    expect(core.get("gone")).toBeUndefined();
    expect(core.get("here")).toBeDefined();
  });
});
