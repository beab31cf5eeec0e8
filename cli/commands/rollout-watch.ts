/**
 * `coherentctl rollout status --watch`: polls the rollout until it finishes, at once when the
 * event stream says it changed, else every interval. On a terminal the text view is redrawn
 * in place (cursor up, each line cleared and rewritten, the rest of the screen below cleared),
 * with the cursor hidden and given back however the watch ends. Piped, or with --output json,
 * it prints the whole status again only when something in it changed: text separated by a
 * blank line, JSON one document per line.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { FINISHED_PHASES } from "../../rollout-controller/state-machine.js";
import { ApiError } from "../client.js";
import type { OutputFormat } from "../output.js";
import { type RolloutStatusJson, renderRollout } from "../rollout-view.js";
import { CliError } from "./run.js";

export interface WatchTarget {
  write(text: string): unknown;
  readonly isTTY?: boolean;
  readonly columns?: number;
}

export interface WatchOptions {
  /** One `GET /rollouts/{id}`. */
  readonly fetch: () => Promise<RolloutStatusJson>;
  readonly intervalMs: number;
  readonly format: OutputFormat;
  readonly out: WatchTarget;
  /** Where a failed poll is reported when the output is not redrawn. */
  readonly err: WatchTarget;
  readonly color: boolean;
  /** Ends the watch early (Ctrl-C). */
  readonly signal: AbortSignal;
  /**
   * Registers for hints that the rollout changed (the event stream), each of which makes the
   * next poll come at once instead of after the interval; returns how to stop them.
   */
  readonly subscribe?: (changed: () => void) => () => void;
  readonly now?: () => number;
}

const HIDE_CURSOR = "\x1b[?25l";
const SHOW_CURSOR = "\x1b[?25h";
const CLEAR_LINE = "\x1b[2K";
const CLEAR_BELOW = "\x1b[J";

/**
 * Resolves with the last status seen: a finished rollout's, or the one on screen when
 * `signal` stopped the watch (undefined if none arrived). Rejects when the authority answers
 * with an error (the rollout is gone, the token is refused); an authority that cannot be
 * reached is retried on the next tick, so a watch outlives a restart.
 */
export async function watchRollout(options: WatchOptions): Promise<RolloutStatusJson | undefined> {
  const now = options.now ?? Date.now;
  const redraw = options.format === "text" && options.out.isTTY === true;
  let last: RolloutStatusJson | undefined;
  let shownKey: string | undefined;
  let shownLines = 0;
  let problem: string | undefined;

  const draw = (lines: string[]) => {
    const up = shownLines > 0 ? `\x1b[${shownLines}A\r` : "";
    options.out.write(`${up}${lines.map((line) => `${CLEAR_LINE}${line}\n`).join("")}${CLEAR_BELOW}`);
    shownLines = lines.length;
  };

  // Aborted by a hint; a hint that comes during a poll makes the next wait end at once.
  let nudge = new AbortController();
  const unsubscribe = options.subscribe?.(() => nudge.abort());
  if (redraw) options.out.write(HIDE_CURSOR);
  try {
    while (!options.signal.aborted) {
      try {
        last = await options.fetch();
        problem = undefined;
      } catch (err) {
        if (err instanceof ApiError || !(err instanceof CliError)) throw err;
        if (!redraw && problem !== err.message) options.err.write(`coherentctl: ${err.message}; retrying\n`);
        problem = err.message;
      }
      if (last) {
        if (redraw) {
          // One column spare: a line that fills the row exactly wraps on some terminals.
          const width = Math.max(20, (options.out.columns ?? 80) - 1);
          const lines = renderRollout(last, { now: now(), width, color: options.color });
          draw(problem === undefined ? lines : [...lines, "", `${problem}; retrying`]);
        } else {
          const key = changeKey(last);
          if (key !== shownKey) {
            shownKey = key;
            options.out.write(
              options.format === "json"
                ? `${JSON.stringify(last)}\n`
                : `${renderRollout(last, { now: now(), width: Infinity, color: false }).join("\n")}\n\n`,
            );
          }
        }
        if (FINISHED_PHASES.has(last.rollout.phase)) return last;
      }
      const wait = AbortSignal.any([options.signal, nudge.signal]);
      await sleep(options.intervalMs, undefined, { signal: wait }).catch(() => undefined);
      if (nudge.signal.aborted) nudge = new AbortController();
    }
    return last;
  } finally {
    unsubscribe?.();
    if (redraw) options.out.write(SHOW_CURSOR);
  }
}

/**
 * What counts as a change worth printing again when the output is not redrawn: the rollout
 * record, the agents, the verdicts and the events; not the bake clock or the gates' values,
 * which move on every poll.
 */
function changeKey(status: RolloutStatusJson): string {
  const { rollout } = status;
  return JSON.stringify([
    rollout.phase,
    rollout.stage?.index,
    rollout.updated_at,
    rollout.restore_version,
    status.agents,
    status.checks.map((check) => [check.check, check.bound, check.verdict]),
    status.events.length,
    status.events.at(-1)?.at,
  ]);
}
