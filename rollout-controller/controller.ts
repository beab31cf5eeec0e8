/**
 * The controller's loop. While it leads, every `tickMs`: each live rollout is observed and
 * stepped (state-machine.ts) and its transition saved; then every rollout whose fleet state
 * does not yet match it is applied — the stage's split published, the candidate promoted, or
 * the stable content restored as a new version. Each write carries the leadership's epoch, so
 * a controller that lost the lock a moment ago writes nothing; the one that took over picks up
 * from what is stored (a transition saved but not applied is applied by the next leader, never
 * stepped twice, since `applied` and `revision` are in the row).
 */
import type { Transaction } from "kysely";
import type { AuthorityStore, StoredRollout, Tables } from "../authority/store/index.js";
import type { Logger } from "../services/telemetry/logger.js";
import type { Leadership } from "./leader.js";
import type { WebhookNotifier } from "./notifier.js";
import { describeReason } from "./notifier.js";
import { observe, observedSince } from "./observe.js";
import { command, fleetTarget, LIVE_PHASES, type Step, step } from "./state-machine.js";

/** The actor of the controller's own transitions and writes, in events and the audit log. */
export const CONTROLLER_ACTOR = "rollout-controller";

/** Publishes the content of `contentOf` as the fleet's next version; BundleService.restore. */
export type Restorer = (fleet: string, contentOf: number, rollbackOf: number) => Promise<number>;

export interface ControllerOptions {
  readonly store: AuthorityStore;
  readonly restore: Restorer;
  readonly leadership: Leadership;
  readonly logger: Logger;
  /** Names this controller in the lease. */
  readonly id: string;
  readonly notifier?: WebhookNotifier;
  readonly now?: () => number;
  /** 1 s by default. */
  readonly tickMs?: number;
}

export class RolloutController {
  readonly #options: ControllerOptions;
  readonly #now: () => number;
  readonly #tickMs: number;
  #epoch: number | undefined;
  #timer: NodeJS.Timeout | undefined;
  #ticking: Promise<void> | undefined;
  #unsubscribe: (() => void) | undefined;
  #passes = 0;

  constructor(options: ControllerOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#tickMs = options.tickMs ?? 1000;
  }

  /** Scheduled passes completed since start; tests wait for the first before driving ticks. */
  get passes(): number {
    return this.#passes;
  }

  /** The epoch of the current leadership; undefined while following. */
  get epoch(): number | undefined {
    return this.#epoch;
  }

  start(): void {
    const { leadership } = this.#options;
    this.#unsubscribe = leadership.onChange((leader) => (leader ? void this.#lead() : this.#follow()));
    leadership.start();
  }

  async stop(): Promise<void> {
    this.#unsubscribe?.();
    this.#follow();
    await this.#ticking;
    await this.#options.leadership.stop();
  }

  async #lead(): Promise<void> {
    const { store, id, logger, leadership } = this.#options;
    try {
      const epoch = await store.rollouts.acquireEpoch(id);
      if (!leadership.isLeader) return;
      this.#epoch = epoch;
      logger.info({ epoch }, "rollout controller leading");
      this.#schedule(0);
    } catch (error) {
      logger.error({ err: error }, "rollout controller could not take the lease; retrying");
      if (leadership.isLeader) setTimeout(() => void this.#lead(), this.#tickMs).unref();
    }
  }

  /** Stops acting at once: no tick starts after this, and the running one's writes are fenced. */
  #follow(): void {
    if (this.#epoch !== undefined)
      this.#options.logger.warn({ epoch: this.#epoch }, "rollout controller no longer leading");
    this.#epoch = undefined;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(delay: number): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#ticking = this.tick().finally(() => {
        this.#ticking = undefined;
        this.#passes++;
        if (this.#epoch !== undefined) this.#schedule(this.#tickMs);
      });
    }, delay);
  }

  /** One pass over every rollout with work; exported for tests that drive the clock. */
  async tick(): Promise<void> {
    const epoch = this.#epoch;
    if (epoch === undefined) return;
    const { store, logger } = this.#options;
    let work: StoredRollout[];
    try {
      work = await store.rollouts.pendingWork();
    } catch (error) {
      // The database is away (a restart, a failover): a pass that threw would end the process.
      logger.error({ err: error }, "could not read the rollouts; retrying next tick");
      return;
    }
    for (const rollout of work) {
      if (this.#epoch !== epoch) return;
      try {
        await this.#advance(rollout, epoch);
      } catch (error) {
        const code = (error as { code?: string }).code;
        // Someone else moved the rollout (a command) or took over: the next tick reads again.
        if (code === "conflict" || code === "stale_leader")
          logger.info({ rollout: rollout.id, code }, "rollout moved meanwhile");
        else logger.error({ err: error, rollout: rollout.id }, "rollout step failed; retrying next tick");
      }
    }
  }

  async #advance(rollout: StoredRollout, epoch: number): Promise<void> {
    const { store } = this.#options;
    let current = rollout;
    if (LIVE_PHASES.has(current.phase)) {
      const now = this.#now();
      const state = await store.getFleetState(current.fleet);
      // Someone promoted past the candidate (the emergency path): the rollout means nothing now.
      if (
        current.phase !== "pending" &&
        state?.stableVersion != null &&
        state.stableVersion >= current.candidateVersion
      ) {
        const ended = command(current, { kind: "abort" }, CONTROLLER_ACTOR, now);
        current = await this.#save(current, ended, epoch);
        await store.rollouts.setRestoreVersion(current.id, state.stableVersion, epoch);
        current = { ...current, restoreVersion: state.stableVersion };
      } else {
        const [samples, agents] = await Promise.all([
          store.listHealthSamples({ fleet: current.fleet, since: new Date(observedSince(current, now)) }),
          store.listAgents({ fleet: current.fleet }),
        ]);
        current = await this.#save(current, step(current, observe(current, samples, agents, now)), epoch);
      }
    }
    if (!current.applied) await this.#apply(current, epoch);
  }

  async #save(before: StoredRollout, next: Step, epoch: number): Promise<StoredRollout> {
    if (!next.transition) return before;
    const saved = await this.#options.store.rollouts.save(before, next, CONTROLLER_ACTOR, epoch);
    this.#options.logger.info(
      {
        rollout: saved.id,
        fleet: saved.fleet,
        from: next.transition.from,
        to: next.transition.to,
        stage: saved.plan.stages[saved.stage]?.name,
        reason: describeReason(next.transition.reason),
      },
      "rollout transition",
    );
    this.#options.notifier?.notify(saved, next.transition);
    return saved;
  }

  /** Makes the fleet state match the rollout, then marks it applied. */
  async #apply(rollout: StoredRollout, epoch: number): Promise<void> {
    const { store, restore } = this.#options;
    const guard = (trx: Transaction<Tables>) => store.rollouts.requireEpoch(trx, epoch);
    const target = fleetTarget(rollout);
    const state = await store.getFleetState(rollout.fleet);
    switch (target.kind) {
      case "split":
        await store.setFleetState(
          rollout.fleet,
          {
            candidateVersion: target.candidateVersion,
            rolloutId: rollout.id,
            candidatePercent: target.percent,
          },
          CONTROLLER_ACTOR,
          guard,
        );
        break;
      case "promote_candidate":
        if ((state?.stableVersion ?? 0) < target.version)
          await store.setFleetState(rollout.fleet, ended(target.version), CONTROLLER_ACTOR, guard);
        break;
      case "restore_stable": {
        // Only while the fleet still runs this rollout's candidate; a fleet that moved on stays.
        const touched = state?.rolloutId === rollout.id || state?.stableVersion === rollout.candidateVersion;
        if (!touched && rollout.restoreVersion === undefined) break;
        let version = rollout.restoreVersion;
        if (version === undefined) {
          version = await restore(rollout.fleet, target.contentOf, rollout.candidateVersion);
          await store.rollouts.setRestoreVersion(rollout.id, version, epoch);
        }
        if ((state?.stableVersion ?? 0) <= version)
          await store.setFleetState(rollout.fleet, ended(version), CONTROLLER_ACTOR, guard);
        break;
      }
      case "unchanged":
        break;
    }
    await store.rollouts.markApplied(rollout.id, rollout.revision, epoch);
  }
}

/** Every agent on `version`, no rollout. */
function ended(version: number) {
  return { stableVersion: version, candidateVersion: null, rolloutId: null, candidatePercent: 0 };
}
