/**
 * The distributor's fan-out against a bare @grpc/grpc-js server, in one run (issue 7). Goals:
 *
 * - a 100 KB signed bundle pushed to 1,000 and to 5,000 agents, all ACKed, within 2× the time
 *   the bare server takes to broadcast the same bytes to the same agents and get their Acks;
 * - 10,000 agents held (connected, heartbeating) by one distributor process;
 * - at most 64 KiB of the distributor's memory per connected agent (RSS after a GC, the growth
 *   from no agent to 10,000, divided by 10,000; the bare server's shown beside it);
 * - a stage change (fleet state only: candidate_percent 10 → 50) ACKed by every agent it moves,
 *   of 5,000, within 2 s. That goal is absolute, so the row shows the bare server's broadcast
 *   to as many agents beside it: on a machine busy with other work both grow alike.
 *
 * The server under test runs alone in a child process (support/fanout-host.ts, --expose-gc);
 * the agents are lightweight protocol clients (support/sim-agents.ts: raw node:http2 and gRPC
 * framing, one HTTP/2 connection each) spread over FANOUT_WORKERS child processes (2), on the
 * same cores. Delivery time is measured inside the server process: from the push (the
 * distributor: the new bundle and fleet state put into its source; the bare server: the write
 * loop) to the last Ack it receives. Each delivery runs FANOUT_ROUNDS times (3), bare and
 * distributor alternating, on fresh connections; the table shows the medians.
 *
 *   npm run bench -- fanout
 *   FANOUT_ONLY=delivery,held,stage npm run bench -- fanout    # a subset
 *   FANOUT_COUNTS=5000 FANOUT_ROUNDS=1 npm run bench -- fanout # fewer deliveries
 *   FANOUT_CPU_PROF=/tmp/prof npm run bench -- fanout          # the distributor under --cpu-prof
 */
import { join } from "node:path";
import type { Bundle, FleetState } from "../../proto/coherent/v1/authority.js";
import {
  BUNDLE_SCHEMA,
  type BundlePayload,
  contentSha256,
  generateSigningKey,
  signBundle,
} from "../../services/bundle/index.js";
import { canonicalize, parseDynamicConfig } from "../../services/config/index.js";
import { desiredVersion } from "../../services/distributor/cohort.js";
import { fleetState } from "../../services/distributor/test-support.js";
import { AgentPool, type SimAgentSpec } from "./support/agent-pool.js";
import type { HostCommand, HostMemory, HostMode, HostReply } from "./support/fanout-host.js";
import { IpcPeer } from "./support/ipc-peer.js";

const HOST = join(import.meta.dirname, "support", "fanout-host.ts");
const WORKERS = Number(process.env.FANOUT_WORKERS ?? 2);
const ROUNDS = Number(process.env.FANOUT_ROUNDS ?? 3);
const ONLY = new Set((process.env.FANOUT_ONLY ?? "delivery,held,stage").split(","));
const CPU_PROF = process.env.FANOUT_CPU_PROF;
const FLEET = "bench";
/** The distributor's default: agents and server send a Heartbeat after 5 s of silence. */
const HEARTBEAT_MS = 5_000;
/** Held agents stay this long: past the silence limit (3 intervals), so only heartbeats keep them. */
const HOLD_MS = 20_000;
const GOALS = { deliveryRatio: 2, held: 10_000, bytesPerAgent: 64 * 1024, stageMs: 2_000 } as const;

/** A signed bundle of about `kib` KiB: a config of as many routes as it takes. */
async function bundleOf(
  version: number,
  kib: number,
  sign: (p: BundlePayload) => Promise<string>,
): Promise<Bundle> {
  const routes = Math.round(kib * 7.4);
  const yaml = [
    "pools:",
    "  - id: pool-0",
    "    endpoints:",
    "      - address: 10.0.0.1:8000",
    "routes:",
    ...Array.from({ length: routes }, (_, r) =>
      [
        `  - id: route-${r}-v${version}`,
        `    host: svc-${r % 40}.example.com`,
        `    path_prefix: /api/v1/resource-${r}`,
        "    pool: pool-0",
      ].join("\n"),
    ),
  ].join("\n");
  const parsed = parseDynamicConfig(yaml);
  if (!parsed.ok) throw new Error(`bench config invalid: ${JSON.stringify(parsed.errors.slice(0, 3))}`);
  const config = canonicalize(parsed.value);
  const payload: BundlePayload = {
    schema: BUNDLE_SCHEMA,
    fleet: FLEET,
    version,
    parent: version > 1 ? version - 1 : null,
    created_at: new Date().toISOString(),
    created_by: "bench",
    content_sha256: contentSha256(config),
    config,
  };
  const jws = await sign(payload);
  return {
    fleet: FLEET,
    version,
    contentSha256: payload.content_sha256,
    signedBundle: Buffer.from(jws, "latin1"),
  };
}

function state(fields: Partial<FleetState>): FleetState {
  return fleetState({ fleet: FLEET, ...fields });
}

function agents(count: number, running: Bundle): SimAgentSpec[] {
  return Array.from({ length: count }, (_, i) => ({
    agentId: `agent-${String(i).padStart(5, "0")}`,
    currentVersion: running.version,
    currentContentSha256: running.contentSha256,
  }));
}

type Host = IpcPeer<HostCommand, HostReply>;

async function request<Op extends HostReply["op"]>(
  host: Host,
  command: HostCommand,
  op: Op,
): Promise<Extract<HostReply, { op: Op }>> {
  const reply = await host.request(command);
  if (reply.op !== op) throw new Error(`expected ${op}, got ${reply.op}`);
  return reply as Extract<HostReply, { op: Op }>;
}

/** Runs `body` against a fresh host process, then ends it (cleanly, so a profile is written). */
async function withHost<T>(
  mode: HostMode,
  start: { bundles: Bundle[]; state: FleetState },
  body: (host: Host, target: string) => Promise<T>,
): Promise<T> {
  const profile =
    CPU_PROF !== undefined && mode === "distributor" ? ["--cpu-prof", `--cpu-prof-dir=${CPU_PROF}`] : [];
  const host: Host = new IpcPeer(HOST, ["--expose-gc", ...profile]);
  try {
    const { port } = await request(
      host,
      { op: "start", mode, heartbeatIntervalMs: HEARTBEAT_MS, bundles: start.bundles, state: start.state },
      "started",
    );
    return await body(host, `127.0.0.1:${port}`);
  } finally {
    await request(host, { op: "exit" }, "exiting").catch(() => undefined);
    await host.stop(10_000);
  }
}

async function connectAll(pool: AgentPool, host: Host, target: string, specs: SimAgentSpec[]): Promise<void> {
  const { welcomed, failed } = await pool.connect({ target, fleet: FLEET, agents: specs });
  const { count } = await request(host, { op: "connected" }, "connected");
  if (welcomed !== specs.length || count !== specs.length) {
    throw new Error(
      `${specs.length} agents: ${welcomed} welcomed, ${failed} failed, ${count} held by the server`,
    );
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

interface Bundles {
  readonly v1: Bundle;
  readonly v2: Bundle;
  readonly v3: Bundle;
}

/**
 * One push of v2 to `count` agents running v1, until all ACKed: milliseconds. The bare server
 * can be told to broadcast to only `recipients` of them.
 */
async function deliver(
  pool: AgentPool,
  mode: HostMode,
  count: number,
  b: Bundles,
  recipients = count,
): Promise<number> {
  return withHost(mode, { bundles: [b.v1], state: state({ stableVersion: 1 }) }, async (host, target) => {
    await connectAll(pool, host, target, agents(count, b.v1));
    try {
      const push: HostCommand =
        mode === "bare"
          ? { op: "push", bundle: b.v2, expectAcks: recipients, recipients, timeoutMs: 60_000 }
          : {
              op: "push",
              bundle: b.v2,
              state: state({ stableVersion: 2, generation: 2 }),
              expectAcks: count,
              timeoutMs: 60_000,
            };
      const { ms, acks } = await request(host, push, "pushed");
      if (Number.isNaN(ms)) {
        const agentsSaw = JSON.stringify(await pool.stats());
        throw new Error(`${mode}, ${count} agents: ${acks} Acks before the timeout; agents: ${agentsSaw}`);
      }
      return ms;
    } finally {
      await pool.closeAgents();
    }
  });
}

interface Held {
  readonly connected: number;
  readonly lost: number;
  readonly heartbeatsReceived: number;
  readonly before: HostMemory;
  readonly after: HostMemory;
}

/** `count` agents connected and held HOLD_MS; the server's memory before and after. */
async function hold(pool: AgentPool, mode: HostMode, count: number, b: Bundles): Promise<Held> {
  return withHost(mode, { bundles: [b.v1], state: state({ stableVersion: 1 }) }, async (host, target) => {
    const before = (await request(host, { op: "memory" }, "memory")).memory;
    await connectAll(pool, host, target, agents(count, b.v1));
    try {
      const start = await pool.stats();
      await new Promise((resolve) => setTimeout(resolve, HOLD_MS));
      const end = await pool.stats();
      const { count: connected } = await request(host, { op: "connected" }, "connected");
      const after = (await request(host, { op: "memory" }, "memory")).memory;
      return {
        connected,
        lost: end.lost,
        heartbeatsReceived: end.heartbeatsReceived - start.heartbeatsReceived,
        before,
        after,
      };
    } finally {
      await pool.closeAgents();
    }
  });
}

/** 5,000 agents on stable v2 with a rollout of v3 at 10 %; the move to 50 %: ms and agents moved. */
async function stageChange(
  pool: AgentPool,
  count: number,
  b: Bundles,
): Promise<{ ms: number; moved: number }> {
  const rollout = { stableVersion: 2, candidateVersion: 3, rolloutId: "rollout-bench" };
  const at10 = state({ ...rollout, candidatePercent: 10, generation: 1 });
  const at50 = state({ ...rollout, candidatePercent: 50, generation: 2 });
  const specs = agents(count, b.v2);
  const onCandidate = (s: FleetState) => specs.filter((a) => desiredVersion(s, a.agentId) === 3).length;
  const first = onCandidate(at10);
  const moved = onCandidate(at50) - first;
  return withHost("distributor", { bundles: [b.v2, b.v3], state: at10 }, async (host, target) => {
    await connectAll(pool, host, target, specs);
    try {
      // The 10 % got the candidate on Hello; the stage starts once they all answered.
      for (let waited = 0; (await pool.stats()).acks < first; waited += 50) {
        if (waited > 30_000) throw new Error("the first stage's agents did not all ACK");
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const { ms, acks } = await request(
        host,
        { op: "push", state: at50, expectAcks: moved, timeoutMs: 30_000 },
        "pushed",
      );
      if (Number.isNaN(ms)) {
        const agentsSaw = JSON.stringify(await pool.stats());
        throw new Error(`stage change: ${acks} of ${moved} Acks before the timeout; agents: ${agentsSaw}`);
      }
      return { ms, moved };
    } finally {
      await pool.closeAgents();
    }
  });
}

const verdict = (ok: boolean): string => (ok ? "PASS" : "FAIL");
const kib = (bytes: number): string => `${(bytes / 1024).toFixed(1)} KiB`;

const { key } = await generateSigningKey();
const sign = (payload: BundlePayload) => signBundle(payload, key);
const bundles: Bundles = {
  v1: await bundleOf(1, 1, sign),
  v2: await bundleOf(2, 100, sign),
  v3: await bundleOf(3, 100, sign),
};
console.log(
  `fan-out bench: bundle ${kib(bundles.v2.signedBundle.byteLength)} signed, ${WORKERS} agent processes, ` +
    `heartbeat ${HEARTBEAT_MS} ms, ${ROUNDS} rounds per delivery`,
);
const pool = new AgentPool(WORKERS);
const lines: string[] = [];
try {
  if (ONLY.has("delivery")) {
    for (const count of (process.env.FANOUT_COUNTS ?? "1000,5000").split(",").map(Number)) {
      const times: Record<HostMode, number[]> = { bare: [], distributor: [] };
      for (let round = 0; round < ROUNDS; round++) {
        for (const mode of ["bare", "distributor"] as const)
          times[mode].push(await deliver(pool, mode, count, bundles));
      }
      const bare = median(times.bare);
      const dist = median(times.distributor);
      const ratio = dist / bare;
      const rounds = (values: number[]) => values.map((v) => v.toFixed(0)).join("/");
      lines.push(
        `push ${kib(bundles.v2.signedBundle.byteLength)} to ${count.toLocaleString("en")} agents, all ACKed: ` +
          `distributor ${dist.toFixed(0)} ms (${rounds(times.distributor)}), bare ${bare.toFixed(0)} ms (${rounds(times.bare)}), ` +
          `ratio ${ratio.toFixed(2)}x  goal <= ${GOALS.deliveryRatio}x  ${verdict(ratio <= GOALS.deliveryRatio)}`,
      );
      console.log(lines.at(-1));
    }
  }
  if (ONLY.has("held")) {
    const count = GOALS.held;
    const dist = await hold(pool, "distributor", count, bundles);
    const bare = await hold(pool, "bare", count, bundles);
    const held = dist.connected === count && dist.lost === 0 && dist.heartbeatsReceived > 0;
    lines.push(
      `${count.toLocaleString("en")} agents held ${HOLD_MS / 1000} s by one distributor: ${dist.connected} connected, ` +
        `${dist.lost} lost, ${dist.heartbeatsReceived} heartbeats received by agents  ${verdict(held)}`,
    );
    const per = (h: Held, field: keyof HostMemory) => (h.after[field] - h.before[field]) / count;
    const rss = per(dist, "rss");
    lines.push(
      `memory per connected agent (after GC): distributor RSS ${kib(rss)} (heap ${kib(per(dist, "heapUsed"))}, ` +
        `external ${kib(per(dist, "external"))}), bare RSS ${kib(per(bare, "rss"))} (heap ${kib(per(bare, "heapUsed"))}), ` +
        `ratio ${(rss / per(bare, "rss")).toFixed(2)}x  goal <= ${kib(GOALS.bytesPerAgent)}  ${verdict(rss <= GOALS.bytesPerAgent)}`,
    );
    console.log(lines.slice(-2).join("\n"));
  }
  if (ONLY.has("stage")) {
    const { ms, moved } = await stageChange(pool, 5_000, bundles);
    // The goal is absolute; the bare server holding as many agents and broadcasting to as many
    // as moved shows what the machine allows.
    const bare = await deliver(pool, "bare", 5_000, bundles, moved);
    lines.push(
      `stage change 10 % -> 50 % (fleet state only), ${moved} of 5,000 agents moved, all ACKed: ${ms.toFixed(0)} ms ` +
        `(bare broadcast to ${moved} of 5,000: ${bare.toFixed(0)} ms)  goal <= ${GOALS.stageMs} ms  ${verdict(ms <= GOALS.stageMs)}`,
    );
    console.log(lines.at(-1));
  }
} finally {
  await pool.dispose();
}
console.log("\nsummary");
for (const line of lines) console.log(`  ${line}`);
if (lines.some((line) => line.endsWith("FAIL"))) process.exitCode = 1;
