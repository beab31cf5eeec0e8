/**
 * A dev-only aid for a fleet of three: a stage's cohort is drawn per rollout (sha256 of the
 * rollout id and the agent id against the stage's percent), and with three agents at 34% the
 * first stage draws none of them in more than one rollout in four. Such a stage has no
 * candidate traffic, so its gates stay inconclusive and it would wait forever. When a running
 * stage's cohort holds none of the demo agents, this promotes the rollout to its next stage
 * with the dev token — an operator's `rollout promote`, shown as such in the rollout's events —
 * and says so. A stage with at least one agent is left to the controller.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { candidateThreshold, cohortBucket } from "../../services/distributor/cohort.js";

interface LiveRollout {
  readonly id: string;
  readonly phase: string;
  readonly stage: { readonly index: number; readonly name: string; readonly fleet_percent: number };
  readonly stages: readonly unknown[];
}

export interface CohortGuard {
  stop(): Promise<void>;
}

const POLL_MS = 1_000;

export function startCohortGuard(options: {
  readonly server: string;
  readonly token: string;
  readonly fleet: string;
  readonly agentIds: readonly string[];
  readonly say: (line: string) => void;
}): CohortGuard {
  const stop = new AbortController();
  const promoted = new Set<string>();
  const headers = { authorization: `Bearer ${options.token}` };
  const check = async (): Promise<void> => {
    const response = await fetch(`${options.server}/api/v1/rollouts?fleet=${options.fleet}&live=true`, {
      headers,
      signal: stop.signal,
    });
    if (!response.ok) return;
    const { rollouts } = (await response.json()) as { rollouts: LiveRollout[] };
    for (const rollout of rollouts) {
      const { index, name, fleet_percent: percent } = rollout.stage;
      const key = `${rollout.id}/${index}`;
      if (rollout.phase !== "running" || index >= rollout.stages.length - 1 || promoted.has(key)) continue;
      const threshold = candidateThreshold(percent);
      if (options.agentIds.some((agent) => cohortBucket(rollout.id, agent) < threshold)) continue;
      promoted.add(key);
      const answer = await fetch(`${options.server}/api/v1/rollouts/${rollout.id}/promote`, {
        method: "POST",
        headers: { ...headers, "content-type": "application/json" },
        body: "{}",
        signal: stop.signal,
      });
      await answer.arrayBuffer();
      if (answer.ok) {
        options.say(
          `rollout ${rollout.id}: stage ${name} (${percent}%) drew no demo agent, so nothing could judge it; promoted it to the next stage`,
        );
      }
    }
  };
  const loop = (async () => {
    while (!stop.signal.aborted) {
      // The authority may be busy or restarting; the next poll tries again.
      await check().catch(() => undefined);
      await sleep(POLL_MS, undefined, { signal: stop.signal }).catch(() => undefined);
    }
  })();
  return {
    async stop() {
      stop.abort();
      await loop;
    },
  };
}
