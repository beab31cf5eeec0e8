// The dashboard: reads /api/v1 and keeps itself current. The event stream says what changed
// and the page reads it again; the selected rollout is also read every few seconds, so its
// gates' values build up a history to chart. Nothing here writes.
import { ApiFailure, forgetToken, get, savedToken, saveToken, subscribe } from "./api.js";
import { gateChart } from "./chart.js";

const DETAIL_POLL_MS = 3000;
const FULL_POLL_MS = 15_000;
const HISTORY_POINTS = 300;

const $ = (id) => document.getElementById(id);

const state = {
  selected: new URLSearchParams(location.hash.slice(1)).get("rollout"),
  rollouts: [],
  /** Per rollout id, per check: the values seen, oldest first. */
  history: new Map(),
  timers: [],
  unsubscribe: undefined,
  pending: new Set(),
  flush: undefined,
};

function h(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  node.append(...children.filter((child) => child !== undefined && child !== null));
  return node;
}

function fillBody(table, rows, empty) {
  const body = $(table).tBodies[0];
  const columns = $(table).tHead.rows[0].cells.length;
  body.replaceChildren(
    ...(rows.length ? rows : [h("tr", {}, h("td", { colspan: columns, class: "muted" }, empty))]),
  );
}

const time = (iso) => (iso ? new Date(iso).toLocaleTimeString() : "—");
const duration = (ms) => {
  if (ms == null) return "—";
  const s = Math.round(ms / 1000);
  return s >= 60 ? `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s` : `${s}s`;
};
const versionOrDash = (v) => (v == null ? "—" : `v${v}`);
const LIVE = new Set(["pending", "running", "paused"]);

function formatterFor(check) {
  if (check.includes("latency")) return (v) => `${Number(v).toFixed(v < 10 ? 1 : 0)} ms`;
  if (check.includes("error_rate")) return (v) => `${(v * 100).toFixed(2)}%`;
  return (v) => `${Number(v).toFixed(2)}×`;
}

// --- sign in -------------------------------------------------------------------------------

async function signIn(event) {
  event.preventDefault();
  const token = $("token").value.trim();
  $("login-error").textContent = "";
  try {
    await get("/fleets", token);
  } catch (error) {
    $("login-error").textContent =
      error instanceof ApiFailure && error.status === 401
        ? "That token is not valid."
        : `Could not sign in: ${error.message}`;
    return;
  }
  saveToken(token);
  $("token").value = "";
  start();
}

function signOut() {
  forgetToken();
  stop();
  $("dashboard").hidden = true;
  $("forget").hidden = true;
  $("login").hidden = false;
  setLive("not connected");
  $("token").focus();
}

function setLive(text) {
  $("live").textContent = text;
  $("live").dataset.state = text;
}

// --- reading -------------------------------------------------------------------------------

/** Coalesces bursts of events into one read of each part. */
function refresh(...parts) {
  for (const part of parts) state.pending.add(part);
  state.flush ??= setTimeout(async () => {
    const parts = [...state.pending];
    state.pending.clear();
    state.flush = undefined;
    await Promise.all(parts.map((part) => READERS[part]().catch(failed)));
  }, 100);
}

function failed(error) {
  if (error instanceof ApiFailure && error.status === 401) signOut();
  else console.warn("dashboard read failed", error);
}

const READERS = { fleets: readFleets, rollouts: readRollouts, detail: readDetail, audit: readAudit };

async function readFleets() {
  const { fleets } = await get("/fleets");
  const statuses = await Promise.all(
    fleets.map((fleet) => get(`/fleets/${encodeURIComponent(fleet.name)}/status`).catch(() => undefined)),
  );
  fillBody(
    "fleets",
    fleets.map((fleet, i) => {
      const status = statuses[i];
      const versions = (status?.agents.by_version ?? []).map((v) =>
        h(
          "li",
          {},
          `${versionOrDash(v.version)}: ${v.running} running`,
          v.nacked ? `, ${v.nacked} refused` : "",
        ),
      );
      return h(
        "tr",
        {},
        h("th", { scope: "row" }, fleet.name),
        h("td", {}, versionOrDash(status?.stable_version)),
        h(
          "td",
          {},
          status?.candidate_version == null
            ? "—"
            : `${versionOrDash(status.candidate_version)} on ${status.candidate_percent}%`,
        ),
        h(
          "td",
          {},
          versions.length ? h("ul", { class: "plain" }, ...versions) : "no agents",
          status?.agents.stale ? h("span", { class: "muted" }, ` (${status.agents.stale} stale)`) : undefined,
        ),
      );
    }),
    "No fleets yet.",
  );
}

async function readRollouts() {
  let rollouts;
  try {
    ({ rollouts } = await get("/rollouts?limit=20"));
  } catch (error) {
    if (!(error instanceof ApiFailure) || error.status !== 404) throw error;
    rollouts = [];
  }
  state.rollouts = rollouts;
  // Nothing chosen yet: follow the newest live rollout, else the newest.
  if (!state.selected && rollouts.length) {
    state.selected = (rollouts.find((r) => LIVE.has(r.phase)) ?? rollouts[0]).id;
    refresh("detail");
  }
  fillBody(
    "rollouts",
    rollouts.map((r) =>
      h(
        "tr",
        { class: r.id === state.selected ? "selected" : undefined, "data-rollout": r.id },
        h(
          "th",
          { scope: "row" },
          h(
            "button",
            {
              type: "button",
              class: "link",
              "aria-pressed": String(r.id === state.selected),
              onclick: () => select(r.id),
            },
            r.id,
          ),
        ),
        h("td", {}, r.fleet),
        h("td", {}, `${versionOrDash(r.stable_version)} → ${versionOrDash(r.candidate_version)}`),
        h("td", {}, h("span", { class: `phase phase-${r.phase}` }, r.phase.replace("_", " "))),
        h("td", {}, stageLabel(r)),
        h("td", {}, time(r.updated_at)),
      ),
    ),
    "No rollouts yet.",
  );
}

function stageLabel(rollout) {
  const stage = rollout.stage;
  if (!stage || rollout.phase === "pending") return "—";
  return `${stage.name} (${stage.fleet_percent}%)`;
}

function select(id) {
  state.selected = id;
  history.replaceState(null, "", `#rollout=${encodeURIComponent(id)}`);
  refresh("rollouts", "detail");
}

async function readDetail() {
  const id = state.selected;
  if (!id) return;
  const status = await get(`/rollouts/${encodeURIComponent(id)}`);
  if (id !== state.selected) return;
  remember(id, status.checks ?? []);
  renderDetail(status);
}

function remember(id, checks) {
  const perCheck = state.history.get(id) ?? new Map();
  state.history.set(id, perCheck);
  const t = Date.now();
  for (const check of checks) {
    const key = `${check.check} (${check.bound})`;
    const points = perCheck.get(key) ?? [];
    points.push({ t, observed: check.observed ?? null, threshold: check.threshold ?? null });
    perCheck.set(key, points.slice(-HISTORY_POINTS));
  }
}

function renderDetail(status) {
  const r = status.rollout;
  $("detail-empty").hidden = true;
  $("detail-body").hidden = false;
  $("detail-title").textContent = `Rollout ${r.id}`;
  $("detail-summary").replaceChildren(
    h("span", { class: `phase phase-${r.phase}` }, r.phase.replace("_", " ")),
    ` ${r.fleet}: ${versionOrDash(r.stable_version)} → ${versionOrDash(r.candidate_version)}`,
    r.reason?.summary ? ` — ${r.reason.summary}` : "",
  );

  const current = r.stage?.index ?? 0;
  const finished = !LIVE.has(r.phase);
  $("timeline").replaceChildren(
    ...(r.stages ?? []).map((stage, i) => {
      const isCurrent = i === current && !finished && r.phase !== "pending";
      const done = i < current || (finished && r.phase === "succeeded");
      const bake = isCurrent && r.bake?.required_ms ? r.bake : undefined;
      return h(
        "li",
        {
          class: isCurrent ? "current" : done ? "done" : "upcoming",
          "aria-current": isCurrent ? "step" : undefined,
        },
        h("span", { class: "stage-name" }, stage.name),
        h("span", { class: "stage-percent" }, `${stage.fleet_percent}%`),
        h("span", { class: "muted" }, stage.bake_ms ? `bake ${duration(stage.bake_ms)}` : "no bake"),
        bake
          ? h(
              "label",
              { class: "bake" },
              `baked ${duration(bake.done_ms)} of ${duration(bake.required_ms)}`,
              h("progress", { max: bake.required_ms, value: bake.done_ms }),
            )
          : undefined,
      );
    }),
  );

  const perCheck = state.history.get(r.id) ?? new Map();
  const summaries = new Map((status.checks ?? []).map((c) => [`${c.check} (${c.bound})`, c]));
  $("gates").replaceChildren(
    ...(perCheck.size
      ? [...perCheck].map(([key, points]) => {
          const check = summaries.get(key);
          return h(
            "figure",
            { class: `gate verdict-${check?.verdict ?? "unknown"}` },
            gateChart(key, points, formatterFor(key)),
            h(
              "figcaption",
              {},
              h("strong", {}, `${key}: ${check?.verdict ?? "not evaluated"}`),
              h("br"),
              check?.summary ?? "",
            ),
          );
        })
      : [h("p", { class: "muted" }, "No gate values yet: gates are judged once the candidate has traffic.")]),
  );

  const events = status.events ?? [];
  $("events").replaceChildren(
    ...(events.length
      ? events
          .slice(-15)
          .reverse()
          .map((e) =>
            h(
              "li",
              {},
              h("time", { datetime: e.at }, time(e.at)),
              ` ${e.from} → ${e.to}`,
              e.to_stage !== e.from_stage ? ` (stage ${e.from_stage + 1} → ${e.to_stage + 1})` : "",
              `: ${e.summary ?? e.reason?.kind ?? ""}`,
              // Commands name their actor in the summary already.
              e.summary?.includes(e.actor) ? "" : ` — ${e.actor}`,
            ),
          )
      : [h("li", { class: "muted" }, "No events yet.")]),
  );
}

async function readAudit() {
  const { entries } = await get("/audit?limit=20");
  fillBody(
    "audit",
    entries.map((e) =>
      h(
        "tr",
        {},
        h("td", {}, h("time", { datetime: e.at }, time(e.at))),
        h("td", {}, e.actor),
        h("td", {}, e.action),
        h("td", {}, e.target),
      ),
    ),
    "Nothing audited yet.",
  );
}

// --- lifecycle -----------------------------------------------------------------------------

function start() {
  $("login").hidden = true;
  $("dashboard").hidden = false;
  $("forget").hidden = false;
  refresh("fleets", "rollouts", "detail", "audit");
  state.unsubscribe = subscribe(
    {
      rollout: (rollout) => {
        refresh("rollouts", "audit");
        if (!state.selected || rollout.id === state.selected) refresh("detail");
      },
      fleet_state: () => refresh("fleets", "audit"),
    },
    (connection) => {
      setLive(connection === "live" ? "live" : connection === "closed" ? "disconnected" : "reconnecting…");
      // Whatever happened while the stream was down is read again once it is back.
      if (connection === "live") refresh("fleets", "rollouts", "detail", "audit");
    },
  );
  state.timers.push(
    setInterval(() => refresh("detail"), DETAIL_POLL_MS),
    setInterval(() => refresh("fleets", "rollouts", "audit"), FULL_POLL_MS),
  );
}

function stop() {
  state.unsubscribe?.();
  state.unsubscribe = undefined;
  for (const timer of state.timers) clearInterval(timer);
  state.timers = [];
}

$("login").addEventListener("submit", signIn);
$("forget").addEventListener("click", signOut);
if (savedToken()) start();
else {
  $("login").hidden = false;
  $("token").focus();
}
