/**
 * Chaos: a pool of three endpoints under steady load, one of which turns bad — first half of
 * its answers 5xx, then it hangs — and recovers. Health checks, outlier detection, retries and
 * hedging together must keep the client-visible error rate under 1% once the detection window
 * has passed, and put the endpoint back in rotation within its ejection time once it is well.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AgentProcess, startAgent } from "../support/agent-process.js";
import { request } from "../support/http.js";
import { startUpstream, type Upstream } from "../support/upstream.js";

const LISTENER = "127.0.0.1:0";
const CLIENTS = 8;
const DETECTION_MS = 1_000;
const PHASE_MS = 3_000;

let agent: AgentProcess;
let ups: Upstream[];
let base: string;

beforeAll(async () => {
  ups = await Promise.all(["c1", "c2", "c3"].map((name) => startUpstream({ name })));
  agent = await startAgent({
    config: `listeners:
  - address: "${LISTENER}"
routes:
  - id: chaos
    pool: chaos
    policy:
      timeout: 3s
      retries: {max_attempts: 2, backoff: {base: 1ms, max: 5ms}}
      hedging: {delay: 100ms}
pools:
  - id: chaos
    balancer: round_robin
    endpoints: [${ups.map((u) => `{address: "${u.address}"}`).join(", ")}]
    health:
      active: {interval: 250ms, timeout: 200ms, path: /health, unhealthy_threshold: 2, healthy_threshold: 1}
    outlier_detection: {consecutive_failures: 3, error_rate_threshold: 30, min_requests: 10, interval: 1s, base_ejection_time: 1s, max_ejection_percent: 34}
`,
  });
  base = `http://127.0.0.1:${await agent.port(LISTENER)}`;
});

afterAll(async () => {
  await agent?.stop("SIGKILL");
  await Promise.all((ups ?? []).map((u) => u.close()));
});

interface Sample {
  readonly at: number;
  readonly ok: boolean;
}

/** Keeps CLIENTS loops of GETs going until stopped; every answer is a sample. */
function load() {
  const samples: Sample[] = [];
  let running = true;
  const loop = async () => {
    while (running) {
      let ok = false;
      try {
        const res = await request(`${base}/c`);
        await res.drain();
        ok = res.status === 200;
      } catch {
        ok = false;
      }
      samples.push({ at: performance.now(), ok });
    }
  };
  const loops = Array.from({ length: CLIENTS }, loop);
  return {
    samples,
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

function errorRate(samples: readonly Sample[], from: number, to: number) {
  const window = samples.filter((s) => s.at >= from && s.at < to);
  return { requests: window.length, failed: window.filter((s) => !s.ok).length };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function health() {
  const { body } = await agent.admin("GET", "/api/v2/pools/chaos/health");
  return (body as { endpoints: Array<{ address: string; healthy: boolean; ejected_until: string | null }> })
    .endpoints;
}

describe("chaos: one endpoint of three turns bad under load", () => {
  it("keeps client errors under 1% after detection and brings the endpoint back when it recovers", async () => {
    const bad = ups[0] as Upstream;
    const traffic = load();
    await sleep(1_000);

    const flaky = performance.now();
    bad.setBehaviour({ fail: { percent: 50 } });
    await sleep(PHASE_MS);
    const hung = performance.now();
    bad.setBehaviour({ hang: true });
    await sleep(PHASE_MS);

    const recovered = performance.now();
    const report = (await health()).find((e) => e.address === bad.address);
    const ejectedFor = report?.ejected_until ? Date.parse(report.ejected_until) - Date.now() : 0;
    bad.setBehaviour({});
    bad.requests.length = 0;
    let backAfter = Number.POSITIVE_INFINITY;
    while (performance.now() - recovered < 10_000) {
      if (bad.requests.some((r) => r.path === "/c")) {
        backAfter = performance.now() - recovered;
        break;
      }
      await sleep(20);
    }
    await traffic.stop();

    const first = errorRate(traffic.samples, flaky + DETECTION_MS, hung);
    const second = errorRate(traffic.samples, hung + DETECTION_MS, recovered);
    console.log(
      `chaos: 50% 5xx phase ${first.failed}/${first.requests} failed; hang phase ${second.failed}/${second.requests} failed; back in rotation ${Math.round(backAfter)} ms after recovery (ejection left: ${Math.max(0, ejectedFor)} ms)`,
    );
    expect(first.requests).toBeGreaterThan(100);
    expect(second.requests).toBeGreaterThan(100);
    expect(first.failed / first.requests).toBeLessThan(0.01);
    expect(second.failed / second.requests).toBeLessThan(0.01);
    // Back once the ejection in force ends, plus an active check interval (250 ms, jittered).
    expect(backAfter).toBeLessThan(Math.max(0, ejectedFor) + 600);
  }, 30_000);
});
