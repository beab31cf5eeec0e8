/**
 * The rollout status view of `coherentctl rollout status`: what the authority reports about
 * one rollout (RolloutStatusJson, see rollout-controller/README.md) as lines of text, once or
 * redrawn in place by `--watch`. Pure: the time and the terminal width come in, so the same
 * answer always draws the same lines, and no line is wider than the terminal.
 *
 *   rollout r-edge-7-k3x9  fleet edge  v6 → v7  running
 *   stage 2/4 small  [████░░░░░░░░░░░░░░░░]  10% of agents  bake 2m00s of 10m00s, 8m00s left
 *   reason: baked with every gate passing
 *
 *   VERSION  ACKED  PENDING  NACKED
 *   …
 */
import { FINISHED_PHASES, type Phase } from "../rollout-controller/state-machine.js";
import type { HealthGate } from "../services/config/index.js";
import { formatTable } from "./table.js";

export interface RolloutStageJson {
  readonly name: string;
  readonly fleet_percent: number;
  readonly bake_ms: number;
  readonly min_requests: number;
}

/** A plan as the API shows one (`GET /fleets/{fleet}/plan`, a rollout's `plan`). */
export interface PlanJson {
  readonly stages: readonly RolloutStageJson[];
  readonly health_gates: readonly HealthGate[];
  readonly burn_rate: {
    readonly threshold: number;
    readonly objective: number;
    readonly short_window_ms: number;
    readonly long_window_ms: number;
  } | null;
}

/** A rollout as the API sends it (`RolloutJson`). */
export interface RolloutJson {
  readonly id: string;
  readonly fleet: string;
  readonly candidate_version: number;
  readonly stable_version: number;
  readonly phase: Phase;
  /**
   * The current stage (the first while pending); `index` counts from 0, `count` is the
   * number of stages. Name and share are null when the index is past the plan's stages.
   */
  readonly stage: {
    readonly index: number;
    readonly name: string | null;
    readonly fleet_percent: number | null;
    readonly count: number;
  } | null;
  readonly stages: readonly RolloutStageJson[];
  readonly bake: {
    readonly required_ms: number;
    readonly done_ms: number;
    readonly remaining_ms: number;
  } | null;
  readonly reason: { readonly kind: string; readonly summary: string } | null;
  readonly created_by: string;
  readonly created_at: string;
  readonly updated_at: string;
  readonly finished_at: string | null;
  readonly restore_version: number | null;
  readonly plan: PlanJson;
}

export type Verdict = "pass" | "fail" | "inconclusive";

export interface CheckJson {
  readonly check: "error_rate" | "p95_latency" | "burn_rate";
  readonly bound: "absolute" | "relative_to_stable" | "burn_short" | "burn_long";
  readonly verdict: Verdict;
  readonly observed: number | null;
  readonly threshold: number | null;
  readonly window_ms: number;
  readonly summary: string;
}

export interface TrafficJson {
  readonly requests: number;
  readonly errors_5xx: number;
  readonly p95_ms: number | null;
}

export interface VersionAgentsJson {
  readonly version: number | null;
  readonly acked: number;
  readonly pending: number;
  readonly nacked: number;
}

export interface RolloutEventJson {
  readonly at: string;
  readonly from: Phase;
  readonly to: Phase;
  readonly from_stage: number;
  readonly to_stage: number;
  readonly actor: string;
  readonly reason: { readonly kind: string };
  readonly summary: string;
}

/** `GET /rollouts/{id}`: the rollout and what the controller sees now. */
export interface RolloutStatusJson {
  readonly rollout: RolloutJson;
  readonly checks: readonly CheckJson[];
  readonly traffic: { readonly candidate: TrafficJson; readonly stable: TrafficJson } | null;
  readonly agents: {
    readonly total: number;
    /** Agents not heard of lately; they count in `total` but not in `by_version`'s columns. */
    readonly stale?: number;
    readonly by_version: readonly VersionAgentsJson[];
  };
  readonly events: readonly RolloutEventJson[];
}

export interface ViewOptions {
  /** Epoch ms, for the age of events. */
  readonly now: number;
  /** Terminal columns; Infinity when the output is not a terminal. */
  readonly width: number;
  /** ANSI colours for the phase and the verdicts (a terminal, NO_COLOR unset). */
  readonly color?: boolean;
}

/** How many of the newest events the view shows. */
export const VIEW_EVENTS = 5;

const BAR_MIN = 10;
const BAR_MAX = 30;

const MARK: Record<Verdict, string> = { pass: "✓", fail: "✗", inconclusive: "?" };
const VERDICT_COLOR: Record<Verdict, string> = { pass: "32", fail: "31", inconclusive: "33" };
const PHASE_COLOR: Record<Phase, string> = {
  pending: "36",
  running: "36",
  paused: "33",
  succeeded: "32",
  rolled_back: "31",
  aborted: "31",
};

export function renderRollout(status: RolloutStatusJson, options: ViewOptions): string[] {
  const paint = (code: string, text: string) => (options.color ? `\x1b[${code}m${text}\x1b[0m` : text);
  const { rollout } = status;
  const lines = [
    `rollout ${rollout.id}  fleet ${rollout.fleet}  v${rollout.stable_version} → v${rollout.candidate_version}  ${paint(
      `1;${PHASE_COLOR[rollout.phase]}`,
      rollout.phase,
    )}`,
    ...progressLines(rollout, options.width),
  ];
  const outcome = outcomeLine(rollout);
  if (outcome) lines.push(outcome);
  if (rollout.reason) lines.push(`reason: ${rollout.reason.summary}`);

  const stale = status.agents.stale ? ` (${status.agents.stale} stale)` : "";
  lines.push("", `agents: ${status.agents.total}${stale}`);
  if (status.agents.by_version.length > 0) {
    lines.push(
      ...formatTable(
        [
          { header: "VERSION", cell: (row: VersionAgentsJson) => versionLabel(rollout, row.version) },
          { header: "ACKED", cell: (row) => row.acked },
          { header: "PENDING", cell: (row) => row.pending },
          { header: "NACKED", cell: (row) => row.nacked },
        ],
        status.agents.by_version,
      ).split("\n"),
    );
  }

  if (status.checks.length > 0) {
    lines.push(
      "",
      ...formatTable(
        [
          { header: "GATE", cell: (row: CheckJson) => gateLabel(row) },
          { header: "VALUE", cell: (row) => measure(row.check, row.observed) },
          { header: "THRESHOLD", cell: (row) => measure(row.check, row.threshold) },
          { header: "VERDICT", cell: (row) => `${MARK[row.verdict]} ${row.verdict}` },
        ],
        status.checks,
      )
        .split("\n")
        // The verdict is the last column, so colouring it after the table is laid out keeps
        // the escape codes out of the column widths.
        .map((line, index) => {
          const check = status.checks[index - 1];
          if (!check) return line;
          const cell = `${MARK[check.verdict]} ${check.verdict}`;
          return line.slice(0, line.length - cell.length) + paint(VERDICT_COLOR[check.verdict], cell);
        }),
    );
  }
  if (status.traffic) {
    const { candidate, stable } = status.traffic;
    lines.push(`traffic: candidate ${trafficText(candidate)}; stable ${trafficText(stable)}`);
  }

  const events = status.events.slice(-VIEW_EVENTS);
  if (events.length > 0) {
    lines.push("", "events:");
    for (const event of events) lines.push(`  ${eventText(event, options.now)}`);
  }
  return lines.map((line) => fitWidth(line, options.width));
}

/** `2/4 small (10%)`: the stage for one-line summaries and tables; `-/4` before the first. */
export function stageText(rollout: RolloutJson): string {
  const stage = startedStage(rollout);
  if (!stage) return `-/${rollout.stage?.count ?? rollout.stages.length}`;
  const share = stage.fleet_percent === null ? "" : ` (${formatNumber(stage.fleet_percent)}%)`;
  return `${stageLabel(stage)}${share}`;
}

/** The stage a rollout is in, once it has started one. */
function startedStage(rollout: RolloutJson): RolloutJson["stage"] {
  return rollout.phase === "pending" ? null : rollout.stage;
}

function stageLabel(stage: NonNullable<RolloutJson["stage"]>): string {
  return `${stage.index + 1}/${stage.count}${stage.name === null ? "" : ` ${stage.name}`}`;
}

/** `rollout r-1 (fleet edge, v6 → v7): paused at stage 2/4 small (10%)`, for the commands that act on one. */
export function rolloutSummary(rollout: RolloutJson): string {
  const head = `rollout ${rollout.id} (fleet ${rollout.fleet}, v${rollout.stable_version} → v${rollout.candidate_version})`;
  const phase = rollout.phase.replace("_", " ");
  const where =
    FINISHED_PHASES.has(rollout.phase) || !startedStage(rollout) ? "" : ` at stage ${stageText(rollout)}`;
  return `${head}: ${phase}${where}`;
}

/**
 * The stage, a bar of the share of agents on the candidate, and the bake time; the bake time
 * on a line of its own when a terminal is too narrow for all of it with the shortest bar.
 */
function progressLines(rollout: RolloutJson, width: number): string[] {
  const percent = shareOnCandidate(rollout);
  const current = startedStage(rollout);
  const stage = current
    ? `stage ${stageLabel(current)}`
    : `stage -/${rollout.stage?.count ?? rollout.stages.length}`;
  const share = `${formatNumber(percent)}% of agents`;
  const bake = bakeText(rollout);
  // Two spaces between the parts, two brackets around the bar.
  const room = (parts: string[]) => width - parts.join("  ").length - 4;
  const together = bake !== "" && room([stage, share, bake]) >= BAR_MIN;
  const barWidth = Math.max(
    BAR_MIN,
    Math.min(BAR_MAX, room(together ? [stage, share, bake] : [stage, share])),
  );
  const line = [stage, bar(percent, barWidth), share];
  if (together) return [[...line, bake].join("  ")];
  return bake === "" ? [line.join("  ")] : [line.join("  "), bake];
}

/** Where the fleet stands: the stage's share while live, all or none once finished. */
function shareOnCandidate(rollout: RolloutJson): number {
  if (rollout.phase === "succeeded") return 100;
  if (rollout.phase === "rolled_back" || rollout.phase === "aborted" || rollout.phase === "pending") return 0;
  return rollout.stage?.fleet_percent ?? 0;
}

function bar(percent: number, width: number): string {
  const filled = Math.round((Math.min(100, Math.max(0, percent)) / 100) * width);
  return `[${"█".repeat(filled)}${"░".repeat(width - filled)}]`;
}

function bakeText(rollout: RolloutJson): string {
  const { bake } = rollout;
  if (!bake || FINISHED_PHASES.has(rollout.phase) || rollout.phase === "pending") return "";
  if (bake.required_ms === 0) return "no bake time";
  const done = `bake ${formatDuration(bake.done_ms)} of ${formatDuration(bake.required_ms)}`;
  if (rollout.phase === "paused") return `${done} (paused)`;
  return bake.remaining_ms > 0 ? `${done}, ${formatDuration(bake.remaining_ms)} left` : `${done}, baked`;
}

function outcomeLine(rollout: RolloutJson): string | undefined {
  switch (rollout.phase) {
    case "pending":
      return "waiting for the rollout controller to start it";
    case "succeeded":
      return `succeeded: v${rollout.candidate_version} is the fleet's stable version`;
    case "rolled_back":
    case "aborted": {
      const restored =
        rollout.restore_version === null
          ? `v${rollout.stable_version}'s content is being restored`
          : `v${rollout.stable_version}'s content restored as v${rollout.restore_version}`;
      return `${rollout.phase === "aborted" ? "aborted" : "rolled back"}: ${restored}`;
    }
    default:
      return undefined;
  }
}

function versionLabel(rollout: RolloutJson, version: number | null): string {
  if (version === null) return "none";
  if (version === rollout.candidate_version) return `v${version} (candidate)`;
  if (version === rollout.stable_version) return `v${version} (stable)`;
  return `v${version}`;
}

function gateLabel(check: CheckJson): string {
  switch (check.bound) {
    case "absolute":
      return check.check;
    case "relative_to_stable":
      return `${check.check} (vs stable)`;
    case "burn_short":
      return "burn_rate (short window)";
    case "burn_long":
      return "burn_rate (long window)";
  }
}

/** A check's value in its unit: a ratio as a percentage, a latency in ms, a burn rate as a multiple. */
function measure(check: CheckJson["check"], value: number | null): string {
  if (value === null) return "-";
  switch (check) {
    case "error_rate":
      return `${(value * 100).toFixed(2)}%`;
    case "p95_latency":
      return `${formatNumber(value)}ms`;
    case "burn_rate":
      return `${formatNumber(value)}x`;
  }
}

function trafficText(traffic: TrafficJson): string {
  const p95 = traffic.p95_ms === null ? "" : `, p95 ${formatNumber(traffic.p95_ms)}ms`;
  return `${traffic.requests} requests, ${traffic.errors_5xx} 5xx${p95}`;
}

function eventText(event: RolloutEventJson, now: number): string {
  const at = new Date(event.at);
  const clock = Number.isNaN(at.getTime()) ? event.at : at.toISOString().slice(11, 19);
  const age = Number.isNaN(at.getTime()) ? "" : ` (${formatDuration(Math.max(0, now - at.getTime()))} ago)`;
  const move =
    event.from === event.to && event.from_stage !== event.to_stage
      ? `stage ${event.from_stage + 1} → ${event.to_stage + 1}`
      : `${event.from} → ${event.to}`;
  // An operator's command names its actor in the summary already ("pause by alice").
  const by = event.summary.includes(event.actor) ? "" : `  by ${event.actor}`;
  return `${clock}${age}  ${move}  ${event.summary}${by}`;
}

/** 1h05m, 8m00s, 45s: the two units that matter at a glance. */
export function formatDuration(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  const hours = Math.floor(seconds / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  const rest = seconds % 60;
  if (hours > 0) return `${hours}h${String(minutes).padStart(2, "0")}m`;
  if (minutes > 0) return `${minutes}m${String(rest).padStart(2, "0")}s`;
  return `${rest}s`;
}

function formatNumber(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toFixed(1);
}

const ESC = "\x1b";

/**
 * The line cut to `width` visible characters, the last one an ellipsis when cut. Colour codes
 * (ESC [ … m, the only codes the view emits) take no room and are kept.
 */
export function fitWidth(line: string, width: number): string {
  if (visibleLength(line) <= width) return line;
  let out = "";
  let shown = 0;
  let coloured = false;
  const chars = [...line];
  for (let index = 0; index < chars.length; index++) {
    let char = chars[index] as string;
    if (char === ESC) {
      while (index + 1 < chars.length && !char.endsWith("m")) char += chars[++index];
      out += char;
      coloured = true;
    } else if (shown < width - 1) {
      out += char;
      shown += 1;
    }
  }
  return `${out}${width > 0 ? "…" : ""}${coloured ? `${ESC}[0m` : ""}`;
}

export function visibleLength(line: string): number {
  let length = 0;
  let inCode = false;
  for (const char of line) {
    if (char === ESC) inCode = true;
    else if (inCode) inCode = char !== "m";
    else length += 1;
  }
  return length;
}
