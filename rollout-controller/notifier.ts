/**
 * Webhooks on rollout transitions, as Flagger's and Argo's notifications: a JSON POST per
 * transition to each hook whose fleet matches, signed with HMAC-SHA256 when the hook has a
 * secret (`X-Coherent-Signature: sha256=<hex>`, as GitHub signs its webhooks).
 *
 * Never in the controller's way: `notify` only queues. Each hook has its own queue, sent in
 * order, one request at a time; a failure (network, 429, 5xx) is retried with backoff and full
 * jitter up to `maxAttempts`, then dropped and logged. A queue that fills up drops its oldest
 * notice. Hook URLs often carry a token (chat webhooks do), so they are never logged whole.
 */
import { createHmac } from "node:crypto";
import { request } from "undici";
import { Backoff } from "../services/net/backoff.js";
import type { Logger } from "../services/telemetry/logger.js";
import type { Rollout, Transition } from "./state-machine.js";

export interface WebhookSettings {
  /** A fleet's name, or "*" for every fleet. */
  readonly fleet: string;
  readonly url: string;
  /** Signs each body; from the controller's config, never from the database. */
  readonly secret?: string;
}

export interface NotifierOptions {
  readonly hooks: readonly WebhookSettings[];
  readonly logger: Logger;
  readonly maxQueue?: number;
  readonly maxAttempts?: number;
  readonly timeoutMs?: number;
  readonly backoff?: { readonly baseMs: number; readonly capMs: number };
  readonly random?: () => number;
}

/** The body of each POST. */
export interface RolloutNotice {
  readonly event: "rollout.transition";
  readonly rollout: {
    readonly id: string;
    readonly fleet: string;
    readonly candidate_version: number;
    readonly stable_version: number;
    readonly phase: string;
    readonly stage: number;
    readonly stage_name: string | undefined;
    readonly fleet_percent: number | undefined;
  };
  readonly transition: {
    readonly from: string;
    readonly to: string;
    readonly from_stage: number;
    readonly to_stage: number;
    readonly at: string;
    readonly reason: Transition["reason"];
  };
  /** One line for chat: "edge v7: running → rolled_back (error rate 3.00% > 1.00% …)". */
  readonly text: string;
}

export function rolloutNotice(rollout: Rollout, transition: Transition): RolloutNotice {
  const stage = rollout.plan.stages[rollout.stage];
  return {
    event: "rollout.transition",
    rollout: {
      id: rollout.id,
      fleet: rollout.fleet,
      candidate_version: rollout.candidateVersion,
      stable_version: rollout.stableVersion,
      phase: rollout.phase,
      stage: rollout.stage,
      stage_name: stage?.name,
      fleet_percent: stage?.fleetPercent,
    },
    transition: {
      from: transition.from,
      to: transition.to,
      from_stage: transition.fromStage,
      to_stage: transition.toStage,
      at: new Date(transition.at).toISOString(),
      reason: transition.reason,
    },
    text: `${rollout.fleet} v${rollout.candidateVersion}: ${transition.from} → ${transition.to}${stage && rollout.phase === "running" ? ` (stage ${stage.name}, ${stage.fleetPercent}%)` : ""}: ${describeReason(transition.reason)}`,
  };
}

export function describeReason(reason: Transition["reason"]): string {
  switch (reason.kind) {
    case "started":
      return "started";
    case "bake_complete":
      return "baked with every gate passing";
    case "empty_stage":
      return "baked with no connected agent in its cohort: nothing to judge, moved on";
    case "check_failed":
      return reason.check.summary;
    case "nack":
      return `halted: ${reason.nacks} agent(s) refused the bundle${reason.agentId ? ` (${reason.agentId}${reason.detail ? `: ${reason.detail}` : ""})` : ""}`;
    case "command":
      return `${reason.command}${reason.full ? " --full" : ""} by ${reason.actor}`;
  }
}

/** The hook's scheme, host and port: enough to tell hooks apart in logs, no path or token. */
function safeTarget(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return "(invalid url)";
  }
}

class HookQueue {
  readonly #queue: string[] = [];
  #sending = false;
  #idle: (() => void) | undefined;

  constructor(
    readonly hook: WebhookSettings,
    private readonly options: Required<Omit<NotifierOptions, "hooks" | "backoff">> & {
      backoff: { baseMs: number; capMs: number };
    },
    private readonly counters: { sent: number; failed: number; dropped: number },
  ) {}

  push(body: string): void {
    if (this.#queue.length >= this.options.maxQueue) {
      this.#queue.shift();
      this.counters.dropped++;
    }
    this.#queue.push(body);
    if (!this.#sending) void this.#drain();
  }

  /** Resolves once the queue is empty (or `timeoutMs` from now). */
  drained(timeoutMs: number): Promise<void> {
    if (!this.#sending) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.#idle = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  async #drain(): Promise<void> {
    this.#sending = true;
    for (let body = this.#queue.shift(); body !== undefined; body = this.#queue.shift()) {
      await this.#deliver(body);
    }
    this.#sending = false;
    this.#idle?.();
  }

  async #deliver(body: string): Promise<void> {
    const { logger, maxAttempts, timeoutMs, random } = this.options;
    const backoff = new Backoff({ ...this.options.backoff, random });
    const headers: Record<string, string> = {
      "content-type": "application/json",
      "user-agent": "coherent-rollout-controller",
    };
    if (this.hook.secret)
      headers["x-coherent-signature"] =
        `sha256=${createHmac("sha256", this.hook.secret).update(body).digest("hex")}`;
    for (let attempt = 1; ; attempt++) {
      let failure: string;
      try {
        const res = await request(this.hook.url, {
          method: "POST",
          headers,
          body,
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs,
        });
        await res.body.dump();
        if (res.statusCode < 300) {
          this.counters.sent++;
          return;
        }
        // Other 4xx say the hook will not take it however often it is sent.
        if (res.statusCode !== 429 && res.statusCode < 500) {
          this.counters.failed++;
          logger.warn(
            { hook: safeTarget(this.hook.url), status: res.statusCode },
            "webhook refused a rollout notice",
          );
          return;
        }
        failure = `status ${res.statusCode}`;
      } catch (error) {
        failure = (error as Error).message;
      }
      if (attempt >= maxAttempts) {
        this.counters.failed++;
        logger.warn(
          { hook: safeTarget(this.hook.url), attempts: attempt, failure },
          "webhook unreachable: rollout notice dropped",
        );
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, backoff.next()).unref());
    }
  }
}

export class WebhookNotifier {
  /** Counts for metrics and tests. */
  readonly counters = { sent: 0, failed: 0, dropped: 0 };
  readonly #queues: HookQueue[];

  constructor(options: NotifierOptions) {
    const settings = {
      logger: options.logger,
      maxQueue: options.maxQueue ?? 1000,
      maxAttempts: options.maxAttempts ?? 8,
      timeoutMs: options.timeoutMs ?? 5_000,
      backoff: options.backoff ?? { baseMs: 500, capMs: 60_000 },
      random: options.random ?? Math.random,
    };
    this.#queues = options.hooks.map((hook) => new HookQueue(hook, settings, this.counters));
  }

  /** Queues the transition for every matching hook; returns at once. */
  notify(rollout: Rollout, transition: Transition): void {
    const matching = this.#queues.filter((q) => q.hook.fleet === "*" || q.hook.fleet === rollout.fleet);
    if (matching.length === 0) return;
    const body = JSON.stringify(rolloutNotice(rollout, transition));
    for (const queue of matching) queue.push(body);
  }

  /** Waits up to `timeoutMs` for queued notices to go out, as a process stops. */
  async flush(timeoutMs: number): Promise<void> {
    await Promise.all(this.#queues.map((q) => q.drained(timeoutMs)));
  }
}
