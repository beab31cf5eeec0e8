/**
 * `coherentctl rollout start|status|list|pause|resume|promote|abort|rollback`: stage a fleet's
 * candidate version through the plan's stages and watch the rollout controller do it.
 * Starting and acting need an operator token, reading a viewer's. `status` exits 4 when the
 * rollout rolled back or was aborted, so `rollout status ID --watch` is something a deploy
 * script can wait on: it returns when the rollout finishes, 0 for success.
 */
import { type Command, InvalidArgumentError, Option } from "commander";
import { FINISHED_PHASES } from "../../rollout-controller/state-machine.js";
import { formatIssue } from "../../services/config/index.js";
import { parseDuration } from "../../services/config/units.js";
import { ApiError, type AuthorityClient, type Connection, resolveConnection, withClient } from "../client.js";
import { ExitCode } from "../exit-codes.js";
import { createOutput, type Output, outputOption } from "../output.js";
import {
  type PlanJson,
  type RolloutJson,
  type RolloutStatusJson,
  renderRollout,
  rolloutSummary,
  stageText,
} from "../rollout-view.js";
import { formatTable } from "../table.js";
import { confirm } from "./confirm.js";
import { followEvents } from "./event-stream.js";
import { readInput } from "./input.js";
import { limitOption, positiveInteger, type RemoteOptions, shortTime } from "./options.js";
import { describePlan, readPlanText } from "./rollout-plan.js";
import { watchRollout } from "./rollout-watch.js";
import { CliError, runAction } from "./run.js";

interface StartOptions extends RemoteOptions {
  readonly plan?: string;
  readonly yes?: boolean;
}

interface StatusOptions extends RemoteOptions {
  readonly fleet?: string;
  readonly watch?: boolean;
  readonly interval: number;
}

interface ListOptions extends RemoteOptions {
  readonly fleet?: string;
  readonly live?: boolean;
  readonly limit?: number;
}

/** A plan error as the API reports it (422 invalid_plan). */
interface RemoteIssue {
  readonly path: string;
  readonly message: string;
}

const DEFAULT_INTERVAL_MS = 2_000;
const MIN_INTERVAL_MS = 100;

/** The commands that only move a rollout, and the question asked before the ones that cannot be undone. */
const ACTIONS = [
  { name: "pause", description: "pause a running rollout: its stage stays, the bake clock stops" },
  { name: "resume", description: "resume a paused rollout, past the NACKs that paused it" },
  {
    name: "abort",
    description: "stop a rollout and bring its fleet back to the stable version's content",
    ask: "abort",
  },
  {
    name: "rollback",
    description: "roll the fleet back to the version it ran before the rollout, even after success",
    ask: "roll back",
  },
] as const;

export function registerRolloutCommands(program: Command, exit: (code: ExitCode) => void): void {
  const rollout = program
    .command("rollout")
    .description("stage a version across a fleet, gated on health; watch, pause, promote or roll back")
    .addHelpText(
      "after",
      "\nExit codes of `rollout status`: 0 succeeded, running, paused or pending; 4 rolled back or aborted;\n1 the authority could not answer or refused, or --watch was stopped before the end; 2 usage.",
    );

  rollout
    .command("start")
    .description(
      "start rolling VERSION out to FLEET (operator); on a terminal, shows the plan and asks first unless --yes",
    )
    .argument("<fleet>", "the fleet")
    .argument("<version>", "the candidate version, above the fleet's stable one", positiveInteger)
    .option(
      "--plan <file>",
      'a rollout plan: YAML or JSON, a `rollout:` block or its content, "-" for standard input (default: the fleet\'s)',
    )
    .option("-y, --yes", "do not ask for confirmation")
    .addOption(outputOption())
    .action(
      runAction(
        "coherentctl",
        exit,
        async (fleet: string, version: number, _options: unknown, command: Command) =>
          start(fleet, version, command.optsWithGlobals<StartOptions>()),
      ),
    );

  rollout
    .command("status")
    .description(
      "show a rollout: stage, bake time, agents per version, each gate against its threshold, the last events",
    )
    .argument("[id]", "the rollout (default: the fleet's live rollout, else its newest)")
    .addOption(new Option("--fleet <name>", "the fleet whose rollout to show").env("COHERENT_FLEET"))
    .option("-w, --watch", "keep showing it until the rollout finishes; exit as `status` does then")
    .addOption(
      new Option("--interval <duration>", "how often --watch asks (e.g. 500ms, 2s)")
        .argParser(intervalMs)
        .default(DEFAULT_INTERVAL_MS, "2s"),
    )
    .addOption(outputOption())
    .action(
      runAction("coherentctl", exit, async (id: string | undefined, _options: unknown, command: Command) =>
        status(id, command.optsWithGlobals<StatusOptions>()),
      ),
    );

  rollout
    .command("list")
    .alias("history")
    .description("list rollouts, newest first")
    .option("--fleet <name>", "only this fleet's")
    .option("--live", "only pending, running and paused ones")
    .addOption(limitOption("rollouts"))
    .addOption(outputOption())
    .action(
      runAction("coherentctl", exit, async (_options: unknown, command: Command) =>
        list(command.optsWithGlobals<ListOptions>()),
      ),
    );

  for (const action of ACTIONS) {
    const sub = rollout
      .command(action.name)
      .description(`${action.description} (operator)`)
      .argument("<id>", "the rollout");
    if ("ask" in action) sub.option("-y, --yes", "do not ask for confirmation");
    sub.addOption(outputOption()).action(
      runAction("coherentctl", exit, async (id: string, _options: unknown, command: Command) => {
        const options = command.optsWithGlobals<RemoteOptions & { yes?: boolean }>();
        if ("ask" in action && !options.yes) await confirmOrStop(`${action.ask} rollout ${id}?`, id);
        return act(id, action.name, undefined, options);
      }),
    );
  }

  rollout
    .command("promote")
    .description(
      "move a rollout to its next stage now, without waiting for the bake; --full: to every agent at once (operator)",
    )
    .argument("<id>", "the rollout")
    .option("--full", "skip the remaining stages: the candidate becomes the stable version")
    .option("-y, --yes", "do not ask for confirmation (asked for --full)")
    .addOption(outputOption())
    .action(
      runAction("coherentctl", exit, async (id: string, _options: unknown, command: Command) => {
        const options = command.optsWithGlobals<RemoteOptions & { full?: boolean; yes?: boolean }>();
        if (options.full && !options.yes)
          await confirmOrStop(`promote rollout ${id} to the whole fleet?`, id);
        return act(id, "promote", { full: options.full === true }, options);
      }),
    );
}

async function start(fleet: string, version: number, options: StartOptions): Promise<ExitCode> {
  const out = createOutput(options.output);
  const path = `/fleets/${encodeURIComponent(fleet)}`;
  let block: unknown;
  let plan: PlanJson | undefined;
  let source = "the plan";
  if (options.plan !== undefined) {
    const input = await readInput(options.plan);
    source = input.source;
    const read = readPlanText(input.text);
    if (!read.ok)
      return reportInvalidPlan(
        out,
        source,
        read.errors.map((issue) => formatIssue(issue, source)),
        read.errors,
      );
    ({ block, plan } = read.value);
  }
  return withClient(options, async (client) => {
    if (process.stdin.isTTY && !options.yes) {
      const shown =
        plan === undefined ? await fleetPlanText(client, path) : `${source}:\n${describePlan(plan)}`;
      process.stderr.write(`${shown}\n`);
      if (!(await confirm(`start rolling v${version} out to fleet ${fleet} with this plan?`))) {
        throw new CliError(`not started: fleet ${fleet} is unchanged`);
      }
    }
    let created: RolloutJson;
    try {
      ({ body: created } = await client.request<RolloutJson>("POST", `${path}/rollouts`, {
        body: { version, ...(block === undefined ? {} : { plan: block }) },
      }));
    } catch (err) {
      if (err instanceof ApiError && err.code === "invalid_plan") {
        const errors = Array.isArray(err.body.errors) ? (err.body.errors as RemoteIssue[]) : [];
        const where = block === undefined ? `fleet ${fleet}'s default plan` : source;
        return reportInvalidPlan(
          out,
          where,
          errors.map((issue) => `${where} ${issue.path || "(root)"}: ${issue.message}`),
          errors,
        );
      }
      throw err;
    }
    out.result(created, () =>
      [
        rolloutSummary(created),
        describePlan(created.plan),
        `watch it: coherentctl rollout status ${created.id} --watch`,
      ].join("\n"),
    );
    return ExitCode.Ok;
  });
}

/** The fleet's own default plan, or the built-in one, shown before asking. */
async function fleetPlanText(client: AuthorityClient, path: string): Promise<string> {
  const { body } = await client.request<{ plan: PlanJson; source: "fleet" | "default" }>(
    "GET",
    `${path}/plan`,
  );
  return `${body.source === "fleet" ? "the fleet's default plan" : "the built-in plan"}:\n${describePlan(body.plan)}`;
}

/** Every error with its path, the way `bundle validate` prints a config's; exit 3. */
function reportInvalidPlan(
  out: Output,
  source: string,
  lines: readonly string[],
  errors: readonly unknown[],
): ExitCode {
  const count = `${errors.length} error${errors.length === 1 ? "" : "s"}`;
  out.result({ valid: false, errors }, () =>
    [...lines, `${source}: invalid rollout plan (${count})`].join("\n"),
  );
  return ExitCode.Invalid;
}

async function status(id: string | undefined, options: StatusOptions): Promise<ExitCode> {
  const last = await withClient(options, async (client) => {
    const rolloutId = id ?? (await findRollout(client, options.fleet));
    const fetch = async () =>
      (await client.request<RolloutStatusJson>("GET", `/rollouts/${encodeURIComponent(rolloutId)}`)).body;
    if (!options.watch) {
      const answer = await fetch();
      createOutput(options.output).result(answer, () =>
        renderRollout(answer, { now: Date.now(), width: Number.POSITIVE_INFINITY, color: useColor() }).join(
          "\n",
        ),
      );
      return answer;
    }
    const connection = await resolveConnection(options);
    const stop = new AbortController();
    const interrupt = () => stop.abort();
    process.once("SIGINT", interrupt);
    process.once("SIGTERM", interrupt);
    try {
      const seen = await watchRollout({
        fetch,
        intervalMs: options.interval,
        format: options.output,
        out: process.stdout,
        err: process.stderr,
        color: useColor(),
        signal: stop.signal,
        subscribe: (changed) => hintsFor(connection, rolloutId, changed),
      });
      if (stop.signal.aborted) {
        // Not finished: neither success nor failure of the rollout, so neither 0 nor 4.
        throw new CliError(
          `stopped watching rollout ${rolloutId}${seen ? `, which is ${seen.rollout.phase}` : ""}`,
        );
      }
      return seen;
    } finally {
      process.off("SIGINT", interrupt);
      process.off("SIGTERM", interrupt);
    }
  });
  return last && FINISHED_PHASES.has(last.rollout.phase) && last.rollout.phase !== "succeeded"
    ? ExitCode.RolledBack
    : ExitCode.Ok;
}

/** Calls `changed` whenever the event stream announces a change of the rollout; returns how to stop. */
function hintsFor(connection: Connection, rolloutId: string, changed: () => void): () => void {
  const stop = new AbortController();
  void followEvents(
    connection,
    ({ event, data }) => {
      if (event !== "rollout") return;
      try {
        if ((JSON.parse(data) as { id?: unknown }).id === rolloutId) changed();
      } catch {
        // Not JSON: not an event this watch can use.
      }
    },
    stop.signal,
  );
  return () => stop.abort();
}

/** The fleet's live rollout, else its newest: what "the fleet's rollout" means to an operator. */
async function findRollout(client: AuthorityClient, fleet: string | undefined): Promise<string> {
  if (fleet === undefined) {
    throw new CliError("name a rollout ID, or its fleet with --fleet (or COHERENT_FLEET)", ExitCode.Usage);
  }
  for (const live of [true, false]) {
    const { body } = await client.request<{ rollouts: RolloutJson[] }>("GET", "/rollouts", {
      query: { fleet, live: live ? "true" : undefined, limit: 1 },
    });
    const [found] = body.rollouts;
    if (found) return found.id;
  }
  throw new CliError(
    `fleet ${fleet} has had no rollout yet: start one with coherentctl rollout start ${fleet} VERSION`,
  );
}

async function list(options: ListOptions): Promise<ExitCode> {
  const { body } = await withClient(options, (client) =>
    client.request<{ rollouts: RolloutJson[] }>("GET", "/rollouts", {
      query: { fleet: options.fleet, live: options.live ? "true" : undefined, limit: options.limit },
    }),
  );
  createOutput(options.output).result(body, () =>
    body.rollouts.length === 0
      ? "no rollouts match"
      : formatTable(
          [
            { header: "ID", cell: (row: RolloutJson) => row.id },
            { header: "FLEET", cell: (row) => row.fleet },
            { header: "VERSIONS", cell: (row) => `v${row.stable_version} → v${row.candidate_version}` },
            { header: "PHASE", cell: (row) => row.phase },
            { header: "STAGE", cell: (row) => (FINISHED_PHASES.has(row.phase) ? null : stageText(row)) },
            { header: "CREATED", cell: (row) => shortTime(row.created_at) },
            { header: "BY", cell: (row) => row.created_by },
            { header: "REASON", cell: (row) => row.reason?.summary },
          ],
          body.rollouts,
        ),
  );
  return ExitCode.Ok;
}

async function act(
  id: string,
  action: (typeof ACTIONS)[number]["name"] | "promote",
  body: unknown,
  options: RemoteOptions,
): Promise<ExitCode> {
  const { body: rollout } = await withClient(options, (client) =>
    client.request<RolloutJson>("POST", `/rollouts/${encodeURIComponent(id)}/${action}`, {
      ...(body === undefined ? {} : { body }),
    }),
  );
  createOutput(options.output).result(rollout, () => rolloutSummary(rollout));
  return ExitCode.Ok;
}

async function confirmOrStop(question: string, id: string): Promise<void> {
  if (!(await confirm(question))) throw new CliError(`not done: rollout ${id} is unchanged`);
}

function intervalMs(value: string): number {
  const parsed = parseDuration(value);
  if (!parsed.ok || parsed.value < MIN_INTERVAL_MS) {
    throw new InvalidArgumentError(`must be a duration of at least ${MIN_INTERVAL_MS}ms, e.g. 2s.`);
  }
  return parsed.value;
}

/** Colours only for a person at a terminal who has not asked for none (no-color.org). */
function useColor(): boolean {
  return process.stdout.isTTY === true && !process.env.NO_COLOR;
}
