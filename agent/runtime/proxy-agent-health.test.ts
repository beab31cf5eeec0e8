/**
 * The agent's engine counts every finished request under the bundle version of the snapshot
 * that served it: what a managed agent's health reports carry up to the rollout controller.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DynamicConfig, validateDynamicConfig } from "../../services/config/index.js";
import { createLogger } from "../../services/telemetry/logger.js";
import { request } from "../../test/support/http.js";
import { startUpstream, type Upstream } from "../../test/support/upstream.js";
import { createAccessLog } from "../observability/access-log.js";
import { ProxyAgent } from "./proxy-agent.js";

let upstream: Upstream;
let agent: ProxyAgent;

function config(status: number): DynamicConfig {
  const result = validateDynamicConfig({
    listeners: [{ address: "127.0.0.1:0" }],
    routes: [{ id: "r", path_prefix: "/app", pool: "p" }],
    pools: [{ id: "p", endpoints: [{ address: upstream.address }] }],
  });
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  upstream.setBehaviour({ status });
  return result.value;
}

beforeAll(async () => {
  upstream = await startUpstream({ name: "app" });
  agent = new ProxyAgent({
    staticConfig: {},
    logger: createLogger({ name: "test", level: "silent" }),
    accessLog: createAccessLog({ write: () => true } as never),
  });
});

afterAll(async () => {
  await agent.shutdown(0, 100);
  await upstream.close();
});

describe("health counted per bundle version", () => {
  it("counts requests and 5xx answers under the snapshot's bundle version", async () => {
    expect((await agent.applyValidated(config(200), "test", 7)).status).toBe("applied");
    const [listener] = await agent.listeners();
    const base = `http://127.0.0.1:${listener?.port}`;
    agent.health.takeReport();
    for (const path of ["/app/a", "/app/b", "/nothing"]) await (await request(`${base}${path}`)).drain();
    const first = agent.health.takeReport();
    expect(first.versions).toEqual([expect.objectContaining({ version: 7, requests: 3, errors5xx: 0 })]);

    upstream.setBehaviour({ status: 503 });
    await (await request(`${base}/app/c`)).drain();
    const second = agent.health.takeReport();
    expect(second.windowStartUnixMs).toBe(first.windowEndUnixMs);
    expect(second.versions).toEqual([expect.objectContaining({ version: 7, requests: 1, errors5xx: 1 })]);
  });
});
