/**
 * A managed agent with `workers: 2`: the workers serve the traffic, the primary talks to the
 * distributor. The HealthReports it sends must count every request any worker served, once.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeDistributor } from "../../agent/control/test-support.js";
import type { VersionHealth } from "../../proto/coherent/v1/distribution.js";
import { generateSigningKey, signBundle } from "../../services/bundle/index.js";
import { canonicalConfig, payloadFor } from "../../services/bundle/test-support.js";
import { type AgentProcess, startAgent } from "../support/agent-process.js";
import { request } from "../support/http.js";
import { startUpstream, type Upstream } from "../support/upstream.js";

const LISTENER = "127.0.0.1:0";
const BUNDLE_VERSION = 2;
const REPORT_INTERVAL_MS = 300;
const OK_REQUESTS = 30;
const FAILED_REQUESTS = 10;

let distributor: FakeDistributor;
let agent: AgentProcess;
let ok: Upstream;
let failing: Upstream;
let base: string;

beforeAll(async () => {
  [ok, failing] = await Promise.all([startUpstream(), startUpstream({ status: 500 })]);
  distributor = await new FakeDistributor().start();
  const { key } = await generateSigningKey();
  agent = await startAgent({
    staticConfig: [
      "workers: 2",
      "shutdown:",
      "  drain_delay: 0s",
      "  drain_timeout: 2s",
      "control_plane:",
      `  distributors: ["${distributor.address}"]`,
      "  fleet: edge",
      "  region: eu-west",
      `  health_report_interval: ${REPORT_INTERVAL_MS}ms`,
      "  trusted_keys:",
      `    - kid: ${key.kid}`,
      `      public_key: '${JSON.stringify(key.publicJwk)}'`,
      "",
    ].join("\n"),
  });
  await distributor.waitFor("hello", 1, 15_000);
  const config = canonicalConfig(
    [
      "listeners:",
      `  - address: "${LISTENER}"`,
      "routes:",
      "  - id: ok",
      "    path_prefix: /ok/",
      "    pool: ok",
      "  - id: failing",
      "    path_prefix: /fail/",
      "    pool: failing",
      "pools:",
      "  - id: ok",
      `    endpoints: [{address: "${ok.address}"}]`,
      "  - id: failing",
      `    endpoints: [{address: "${failing.address}"}]`,
      "",
    ].join("\n"),
  );
  const payload = payloadFor(config, { fleet: "edge", version: BUNDLE_VERSION, parent: 1 });
  distributor.push({
    fleet: "edge",
    version: BUNDLE_VERSION,
    nonce: "n-1",
    contentSha256: payload.content_sha256,
    signedBundle: Buffer.from(await signBundle(payload, key)),
  });
  const [answer] = await distributor.waitFor("ack", 1, 15_000);
  expect(answer?.version).toBe(BUNDLE_VERSION);
  base = `http://127.0.0.1:${await agent.port(LISTENER)}`;
}, 30_000);

afterAll(async () => {
  await agent?.stop("SIGKILL");
  await distributor?.stop();
  await Promise.all([ok?.close(), failing?.close()]);
});

/** The bundle's counters summed over every HealthReport received so far. */
function reported(): { requests: number; errors5xx: number; buckets: number } {
  const versions: VersionHealth[] = distributor
    .all("healthReport")
    .flatMap((r) => r.versions.filter((v) => v.version === BUNDLE_VERSION));
  return {
    requests: versions.reduce((n, v) => n + v.requests, 0),
    errors5xx: versions.reduce((n, v) => n + v.errors5xx, 0),
    buckets: versions.reduce((n, v) => n + (v.latency?.counts.reduce((a, b) => a + b, 0) ?? 0), 0),
  };
}

/** A new connection each time: the primary hands connections to the workers in turn. */
async function send(path: string): Promise<number> {
  const res = await request(`${base}${path}`, { headers: { connection: "close" } });
  await res.drain();
  return res.status;
}

/** Waits until the reports count `requests`, then a few reports more, so a double count would show. */
async function settle(requests: number): Promise<void> {
  const deadline = Date.now() + 8_000;
  while (reported().requests < requests && Date.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 100));
  await distributor.waitFor("healthReport", distributor.all("healthReport").length + 3);
}

describe("a clustered managed agent's health reports", () => {
  it("count every worker's requests and 5xx answers, once", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < OK_REQUESTS; i++) statuses.push(await send(`/ok/${i}`));
    for (let i = 0; i < FAILED_REQUESTS; i++) statuses.push(await send(`/fail/${i}`));
    expect(statuses.filter((s) => s === 500)).toHaveLength(FAILED_REQUESTS);
    const workers = new Set(agent.lines.filter((l) => l.msg === "listening").map((l) => l.pid));
    expect(workers.size).toBe(2);

    const total = OK_REQUESTS + FAILED_REQUESTS;
    await settle(total);
    expect(reported()).toEqual({ requests: total, errors5xx: FAILED_REQUESTS, buckets: total });
  });

  it("count the requests of a worker started in place of one that died, under the bundle's version", async () => {
    const before = reported();
    const victim = Number(agent.lines.find((l) => l.msg === "listening")?.pid);
    process.kill(victim, "SIGKILL");
    await agent.waitFor((l) => l.msg === "config applied" && l.source === "worker restart", 30_000);
    const more = 20;
    for (let i = 0; i < more; i++) expect(await send(`/ok/after-${i}`)).toBe(200);
    await settle(before.requests + more);
    expect(reported()).toEqual({
      requests: before.requests + more,
      errors5xx: before.errors5xx,
      buckets: before.requests + more,
    });
  }, 45_000);
});
