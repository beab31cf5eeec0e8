/**
 * The plan file of `coherentctl rollout start --plan FILE`: a document with a `rollout:` block
 * (a whole config may be given; only its `rollout:` is read) or the block's content alone,
 * YAML or JSON. It is checked here with the config model, so a mistake is shown with its line
 * before anything is sent, and the block goes to the authority as written, which checks it again.
 */

import { planJson } from "../../authority/api/rollout-json.js";
import { resolvePlan } from "../../rollout-controller/plan.js";
import {
  ConfigErrorCode,
  type ConfigResult,
  type ParsedSource,
  readConfigText,
  validateDynamicConfig,
} from "../../services/config/index.js";
import { isRecord } from "../../services/config/issues.js";
import { formatDuration, type PlanJson, type RolloutStageJson } from "../rollout-view.js";
import { formatTable } from "../table.js";

export interface PlanFile {
  /** The `rollout:` block as written, for the API. */
  readonly block: unknown;
  /** With defaults filled in, as the API shows a plan. */
  readonly plan: PlanJson;
}

/** Every error has its path under `rollout` (`rollout.stages[1].fleet_percent`) and its line. */
export function readPlanText(text: string): ConfigResult<PlanFile> {
  const read = readConfigText(text);
  if (!read.ok) return read;
  const { data, locate } = read.value;
  const wrapped = isRecord(data) && Object.hasOwn(data, "rollout");
  const block = wrapped ? data.rollout : data;
  // The content alone sits one level up from where its paths (rollout.…) say.
  const where: ParsedSource["locate"] = wrapped ? locate : (path) => locate(path.slice(1));
  const result = validateDynamicConfig({ rollout: block }, where);
  if (!result.ok) return result;
  const plan = result.value.rollout;
  if (plan === undefined) {
    return {
      ok: false,
      errors: [{ code: ConfigErrorCode.MissingField, path: "rollout", message: "the plan is empty" }],
    };
  }
  return { ok: true, value: { block, plan: planJson(resolvePlan(plan)) } };
}

/** The stages, gates and rollback rule, as shown before a rollout starts. */
export function describePlan(plan: PlanJson): string {
  const stages = formatTable(
    [
      { header: "STAGE", cell: (row: RolloutStageJson) => row.name },
      { header: "AGENTS", cell: (row) => `${row.fleet_percent}%` },
      { header: "BAKE", cell: (row) => (row.bake_ms === 0 ? null : formatDuration(row.bake_ms)) },
      { header: "MIN REQUESTS", cell: (row) => row.min_requests },
    ],
    plan.stages,
  );
  const gates = plan.health_gates.map((gate) => {
    const show = (value: number) =>
      gate.metric === "error_rate" ? `${(value * 100).toFixed(2)}%` : `${value}ms`;
    const bounds = [
      gate.threshold === undefined ? undefined : `<= ${show(gate.threshold)}`,
      gate.relative_to_stable === undefined ? undefined : `<= ${gate.relative_to_stable}x stable`,
    ].filter(Boolean);
    return `${gate.metric} ${bounds.join(" and ")}`;
  });
  const burn = plan.burn_rate;
  return [
    stages,
    `gates: ${gates.length === 0 ? "none" : gates.join(", ")}`,
    `auto rollback: ${
      burn === null
        ? "none"
        : `error budget burning faster than ${burn.threshold}x (SLO ${burn.objective}%, windows ${formatDuration(
            burn.short_window_ms,
          )} and ${formatDuration(burn.long_window_ms)})`
    }`,
  ].join("\n");
}
