/**
 * Hedged requests against a slow tail: two upstream endpoints of which every 20th answer takes
 * 500 ms (the rest answer at once). The same GETs go through a route without hedging and a
 * route with `hedging: {delay: 50ms}`, interleaved in rounds so both see the same machine.
 * Goal: p99 through the hedged route at least 3× better than without.
 *
 *   npm run bench -- hedging
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { Pool } from "undici";
import { startAgent } from "../support/agent-process.js";

const SLOW_EVERY = 20;
const SLOW_MS = 500;
const HEDGE_DELAY = "50ms";
const CONCURRENCY = 8;
const REQUESTS_PER_ROUND = 400;
const ROUNDS = 3;
const GOAL = 3;

async function slowTailUpstream(): Promise<Server> {
  let count = 0;
  const server = createServer((_req, res) => {
    count++;
    const answer = () => res.end("ok");
    if (count % SLOW_EVERY === 0) setTimeout(answer, SLOW_MS);
    else answer();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return server;
}

function addressOf(server: Server): string {
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function run(client: Pool, path: string, count: number): Promise<number[]> {
  const latencies: number[] = [];
  let next = 0;
  const worker = async () => {
    while (next < count) {
      next++;
      const started = performance.now();
      const res = await client.request({ path, method: "GET" });
      await res.body.text();
      if (res.statusCode !== 200) throw new Error(`${path}: status ${res.statusCode}`);
      latencies.push(performance.now() - started);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return latencies;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

async function main(): Promise<void> {
  const servers = [await slowTailUpstream(), await slowTailUpstream()];
  const endpoints = servers.map((s) => `{address: "${addressOf(s)}"}`).join(", ");
  const agent = await startAgent({
    config: `listeners:
  - address: "127.0.0.1:0"
routes:
  - id: hedged
    path_prefix: /hedged
    pool: tail
    policy: {timeout: 5s, hedging: {delay: ${HEDGE_DELAY}, max_hedges: 1}}
  - id: plain
    pool: tail
    policy: {timeout: 5s}
pools:
  - id: tail
    balancer: round_robin
    endpoints: [${endpoints}]
`,
  });
  const client = new Pool(`http://127.0.0.1:${await agent.port("127.0.0.1:0")}`, {
    connections: CONCURRENCY,
  });
  try {
    await run(client, "/plain", 200);
    await run(client, "/hedged", 200);
    const plain: number[] = [];
    const hedged: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      plain.push(...(await run(client, "/plain", REQUESTS_PER_ROUND)));
      hedged.push(...(await run(client, "/hedged", REQUESTS_PER_ROUND)));
      await sleep(100);
    }
    const row = (name: string, v: number[]) =>
      `${name.padEnd(10)} ${String(v.length).padStart(8)} ${percentile(v, 50).toFixed(2).padStart(8)} ${percentile(v, 99).toFixed(2).padStart(8)}`;
    console.log(
      `hedging bench: ${servers.length} endpoints, every ${SLOW_EVERY}th answer ${SLOW_MS} ms; ${CONCURRENCY} concurrent GETs; hedge delay ${HEDGE_DELAY}`,
    );
    console.log(
      `${"route".padEnd(10)} ${"requests".padStart(8)} ${"p50 ms".padStart(8)} ${"p99 ms".padStart(8)}`,
    );
    console.log(row("plain", plain));
    console.log(row("hedged", hedged));
    const ratio = percentile(plain, 99) / percentile(hedged, 99);
    console.log(
      `p99 plain / hedged: ${ratio.toFixed(2)}x  goal >= ${GOAL}x  ${ratio >= GOAL ? "OK" : "UNDER"}`,
    );
  } finally {
    await client.close();
    await agent.stop("SIGKILL");
    for (const s of servers) s.close();
  }
}

await main();
