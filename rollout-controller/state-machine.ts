/**
 * The rollout state machine, pure: a rollout and what the controller observed (or an
 * operator's command) in, the next rollout and the transition that led there out. No clock,
 * no I/O: the caller passes `now`, persists the transition with its reason, and publishes the
 * fleet state `fleetTarget` names.
 *
 *   pending ──start──▶ running(stage k, baking) ──bake done, checks pass──▶ running(k+1) … ──▶ succeeded
 *                        │  ▲                        │
 *                  pause │  │ resume                 ├─ a check fails / budget burns ──▶ rolled_back
 *                        ▼  │                        └─ a NACK in the cohort ──▶ paused (halted)
 *                       paused ──abort──▶ aborted    (abort / rollback from any live phase)
 *
 * A stage promotes only after its bake time, with every health gate passing on enough
 * candidate traffic; "inconclusive" keeps it baking. A stage whose cohort holds none of the
 * fleet's connected agents (three agents at 1% usually draw none) and saw no candidate traffic
 * exposes nobody and has nothing to judge: it moves on once baked rather than wait for traffic
 * that cannot come.
 * The last stage, the whole fleet, is always judged. A failed gate or burn rate rolls back at
 * once, without waiting for the bake to end. Paused time does not count as baking.
 */
import { RolloutError, RolloutErrorCode } from "./errors.js";
import { type CheckResult, evaluateBurnRate, evaluateGates } from "./gates.js";
import type { TrafficWindow } from "./health.js";
import type { Plan } from "./plan.js";

export type Phase = "pending" | "running" | "paused" | "succeeded" | "rolled_back" | "aborted";

export const LIVE_PHASES: ReadonlySet<Phase> = new Set(["pending", "running", "paused"]);
export const FINISHED_PHASES: ReadonlySet<Phase> = new Set(["succeeded", "rolled_back", "aborted"]);

export interface Rollout {
  readonly id: string;
  readonly fleet: string;
  readonly candidateVersion: number;
  /** The fleet's stable version when the rollout started: what a rollback restores. */
  readonly stableVersion: number;
  readonly plan: Plan;
  readonly phase: Phase;
  /** Index into plan.stages; meaningful once running. */
  readonly stage: number;
  /** When the current stage was published, ms. */
  readonly stageStartedAt: number;
  /** Bake time the stage accumulated before the current running period (pauses stop it). */
  readonly bakedMs: number;
  /** When the current running period began, ms. */
  readonly runningSince: number;
  /** NACKs of the candidate an operator resumed past; more than these halt again. */
  readonly acceptedNacks: number;
  readonly createdAt: number;
  readonly updatedAt: number;
  /** Why the rollout is where it is: the last transition's reason. */
  readonly reason: TransitionReason | undefined;
}

export type Command =
  | { readonly kind: "pause" }
  | { readonly kind: "resume"; readonly nacks: number }
  | { readonly kind: "promote"; readonly full: boolean }
  | { readonly kind: "abort" }
  | { readonly kind: "rollback" };

export type TransitionReason =
  | { readonly kind: "started" }
  | { readonly kind: "bake_complete"; readonly checks: readonly CheckResult[] }
  | { readonly kind: "empty_stage" }
  | { readonly kind: "check_failed"; readonly check: CheckResult }
  | { readonly kind: "nack"; readonly nacks: number; readonly agentId?: string; readonly detail?: string }
  | {
      readonly kind: "command";
      readonly command: Command["kind"];
      readonly actor: string;
      readonly full?: boolean;
    };

export interface Transition {
  readonly from: Phase;
  readonly to: Phase;
  readonly fromStage: number;
  readonly toStage: number;
  readonly at: number;
  readonly reason: TransitionReason;
}

/** What the controller measured for one tick of a running rollout. */
export interface Observation {
  readonly now: number;
  /** Candidate traffic since the stage started. */
  readonly candidate: TrafficWindow;
  /** Stable traffic over the same window. */
  readonly stable: TrafficWindow;
  /** Candidate traffic over the last short and long burn windows, since the rollout started. */
  readonly burnShort: TrafficWindow;
  readonly burnLong: TrafficWindow;
  /** Agents of the fleet that refused the candidate, with the most recent one. */
  readonly nacks: { readonly count: number; readonly agentId?: string; readonly detail?: string };
  /** Connected agents of the fleet in the current stage's cohort. */
  readonly cohortAgents: number;
}

export interface Step {
  readonly rollout: Rollout;
  readonly transition: Transition | undefined;
  /** Every check of this tick, for the live view, whether or not it changed anything. */
  readonly checks: readonly CheckResult[];
  /** Bake time the stage still needs, ms (0 once baked). */
  readonly bakeRemainingMs: number;
}

export function newRollout(init: {
  id: string;
  fleet: string;
  candidateVersion: number;
  stableVersion: number;
  plan: Plan;
  now: number;
}): Rollout {
  return {
    ...init,
    phase: "pending",
    stage: 0,
    stageStartedAt: init.now,
    bakedMs: 0,
    runningSince: init.now,
    acceptedNacks: 0,
    createdAt: init.now,
    updatedAt: init.now,
    reason: undefined,
  };
}

/** Bake time the current stage has had, ms. */
export function bakedMs(rollout: Rollout, now: number): number {
  return rollout.phase === "running"
    ? rollout.bakedMs + Math.max(0, now - rollout.runningSince)
    : rollout.bakedMs;
}

/** Bake time the current stage still needs, ms; 0 once baked or when the rollout is over. */
export function bakeRemainingMs(rollout: Rollout, now: number): number {
  const stage = rollout.plan.stages[rollout.stage];
  if (!stage || !LIVE_PHASES.has(rollout.phase)) return 0;
  return Math.max(0, stage.bakeMs - bakedMs(rollout, now));
}

/** One tick: a pending rollout starts; a running one is judged; others stay as they are. */
export function step(rollout: Rollout, seen: Observation): Step {
  const now = seen.now;
  if (rollout.phase === "pending")
    return moved(rollout, enterStage(rollout, 0, now), { kind: "started" }, now);
  if (rollout.phase !== "running") return unchanged(rollout, [], now);

  if (seen.nacks.count > rollout.acceptedNacks) {
    const reason: TransitionReason = {
      kind: "nack",
      nacks: seen.nacks.count,
      ...(seen.nacks.agentId === undefined ? {} : { agentId: seen.nacks.agentId }),
      ...(seen.nacks.detail === undefined ? {} : { detail: seen.nacks.detail }),
    };
    return moved(rollout, pause(rollout, now), reason, now);
  }

  const stage = rollout.plan.stages[rollout.stage];
  if (!stage) return unchanged(rollout, [], now);
  const checks = evaluateGates({
    gates: rollout.plan.gates,
    candidate: seen.candidate,
    stable: seen.stable,
    windowMs: now - rollout.stageStartedAt,
    minRequests: stage.minRequests,
  });
  if (rollout.plan.burnRate) {
    const [short, long] = evaluateBurnRate({
      rule: rollout.plan.burnRate,
      short: seen.burnShort,
      long: seen.burnLong,
      minRequests: stage.minRequests,
    });
    checks.push(short, long);
    if (short.verdict === "fail" && long.verdict === "fail")
      return {
        ...moved(rollout, finish(rollout, "rolled_back", now), { kind: "check_failed", check: long }, now),
        checks,
      };
  }
  const failed = checks.find((check) => check.check !== "burn_rate" && check.verdict === "fail");
  if (failed)
    return {
      ...moved(rollout, finish(rollout, "rolled_back", now), { kind: "check_failed", check: failed }, now),
      checks,
    };

  const remaining = bakeRemainingMs(rollout, now);
  const last = rollout.stage === rollout.plan.stages.length - 1;
  if (remaining === 0 && seen.cohortAgents === 0 && seen.candidate.requests === 0 && !last)
    return { ...moved(rollout, advance(rollout, false, now), { kind: "empty_stage" }, now), checks };
  const enoughTraffic = seen.candidate.requests >= stage.minRequests;
  const conclusive = checks.every((check) => check.check === "burn_rate" || check.verdict === "pass");
  if (remaining > 0 || !enoughTraffic || !conclusive) return unchanged(rollout, checks, now);
  const next = advance(rollout, false, now);
  return { ...moved(rollout, next, { kind: "bake_complete", checks }, now), checks };
}

/** An operator's command; throws RolloutError(invalid_transition) where it does not apply. */
export function command(rollout: Rollout, cmd: Command, actor: string, now: number): Step {
  const reason: TransitionReason = {
    kind: "command",
    command: cmd.kind,
    actor,
    ...(cmd.kind === "promote" && cmd.full ? { full: true } : {}),
  };
  const refuse = (why: string): never => {
    throw new RolloutError(
      RolloutErrorCode.InvalidTransition,
      `cannot ${cmd.kind} rollout ${rollout.id}: it is ${rollout.phase}${why ? `, ${why}` : ""}`,
    );
  };
  switch (cmd.kind) {
    case "pause":
      if (rollout.phase !== "running") refuse("not running");
      return moved(rollout, pause(rollout, now), reason, now);
    case "resume":
      if (rollout.phase !== "paused") refuse("not paused");
      return moved(
        rollout,
        {
          ...rollout,
          phase: "running",
          runningSince: now,
          acceptedNacks: Math.max(rollout.acceptedNacks, cmd.nacks),
        },
        reason,
        now,
      );
    case "promote":
      if (!LIVE_PHASES.has(rollout.phase)) refuse("already finished");
      return moved(rollout, advance(rollout, cmd.full, now), reason, now);
    case "abort":
      if (!LIVE_PHASES.has(rollout.phase)) refuse("already finished");
      return moved(rollout, finish(rollout, "aborted", now), reason, now);
    case "rollback":
      // A finished rollout can be undone too: its fleet goes back to the stable it started from.
      if (rollout.phase === "rolled_back" || rollout.phase === "aborted")
        refuse("its fleet already runs the stable content");
      return moved(rollout, finish(rollout, "rolled_back", now), reason, now);
  }
}

/** What the fleet's state must become for the rollout as it now stands. */
export type FleetTarget =
  | { readonly kind: "split"; readonly candidateVersion: number; readonly percent: number }
  | { readonly kind: "promote_candidate"; readonly version: number }
  | { readonly kind: "restore_stable"; readonly contentOf: number }
  | { readonly kind: "unchanged" };

export function fleetTarget(rollout: Rollout): FleetTarget {
  switch (rollout.phase) {
    case "running": {
      const stage = rollout.plan.stages[rollout.stage];
      return stage
        ? { kind: "split", candidateVersion: rollout.candidateVersion, percent: stage.fleetPercent }
        : { kind: "unchanged" };
    }
    case "succeeded":
      return { kind: "promote_candidate", version: rollout.candidateVersion };
    case "rolled_back":
    case "aborted":
      return { kind: "restore_stable", contentOf: rollout.stableVersion };
    default:
      return { kind: "unchanged" };
  }
}

function enterStage(rollout: Rollout, stage: number, now: number): Rollout {
  return { ...rollout, phase: "running", stage, stageStartedAt: now, bakedMs: 0, runningSince: now };
}

/** The next stage, or success past the last; `full` goes straight to success. */
function advance(rollout: Rollout, full: boolean, now: number): Rollout {
  const next = rollout.phase === "pending" && !full ? 0 : rollout.stage + 1;
  if (full || next >= rollout.plan.stages.length) return finish(rollout, "succeeded", now);
  return enterStage(rollout, next, now);
}

function pause(rollout: Rollout, now: number): Rollout {
  return { ...rollout, phase: "paused", bakedMs: bakedMs(rollout, now) };
}

function finish(rollout: Rollout, phase: "succeeded" | "rolled_back" | "aborted", now: number): Rollout {
  return { ...rollout, phase, bakedMs: bakedMs(rollout, now) };
}

function moved(before: Rollout, after: Rollout, reason: TransitionReason, now: number): Step {
  const rollout = { ...after, updatedAt: now, reason };
  const stage = rollout.plan.stages[rollout.stage];
  return {
    rollout,
    transition: {
      from: before.phase,
      to: rollout.phase,
      fromStage: before.stage,
      toStage: rollout.stage,
      at: now,
      reason,
    },
    checks: [],
    bakeRemainingMs: rollout.phase === "running" && stage ? stage.bakeMs : 0,
  };
}

function unchanged(rollout: Rollout, checks: readonly CheckResult[], now: number): Step {
  return { rollout, transition: undefined, checks, bakeRemainingMs: bakeRemainingMs(rollout, now) };
}
