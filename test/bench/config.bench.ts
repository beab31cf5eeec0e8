/**
 * Parse + validate + hash of a generated config with 10,000 routes and 1,000 pools, from YAML
 * and from JSON text. Goal ([1/9]): under 1 s on the 2-core reference machine.
 *
 * The baseline, measured in the same run, is the bare parse of the same text by the parser
 * the config model uses (js-yaml's load, for JSON text too, so duplicate keys are caught):
 * the part no config model can skip. Ratios against it stay comparable across
 * noisy machines; the absolute figures answer the goal.
 *
 *   npm run bench -- config
 */
import { performance } from "node:perf_hooks";
import { CORE_SCHEMA, load as loadYaml } from "js-yaml";
import { stringify as toYaml } from "yaml";
import { contentHash, parseDynamicConfig } from "../../services/config/index.js";

const ROUTES = 10_000;
const POOLS = 1_000;
const RUNS = 5;

function generateConfig(): Record<string, unknown> {
  const pools = Array.from({ length: POOLS }, (_, p) => ({
    id: `pool-${p}`,
    balancer: p % 4 === 0 ? "least_request" : "round_robin",
    endpoints: [0, 1, 2].map((e) => ({ address: `10.${p % 250}.${e}.${(p * 7) % 250}:8000`, weight: 100 })),
    health: {
      active: { interval: "5s", timeout: "1s", path: "/healthz", expected_status: "200-399" },
      passive: { consecutive_failures: 5, ejection_duration: "30s" },
    },
    circuit_breaker: { error_threshold_percent: 50, min_requests: 20, open_duration: "30s" },
  }));
  const routes = Array.from({ length: ROUTES }, (_, r) => {
    const kind = r % 10;
    const route: Record<string, unknown> = {
      id: `route-${r}`,
      host: kind === 7 ? `*.svc${r % 100}.example.com` : `api${r % 50}.example.com`,
      pool: `pool-${r % POOLS}`,
      policy: { timeout: "5s", retries: { max_attempts: 3, budget_percent: 10 } },
    };
    if (kind < 5) route.path_prefix = `/v1/service-${r}/`;
    else if (kind < 8) route.path = `/v1/exact-${r}`;
    else if (kind === 8) route.path_regex = `^/v[0-9]+/items-${r}/[a-z0-9-]+$`;
    else {
      route.path_prefix = `/v2/h-${r}/`;
      route.headers = { "X-API-Version": `v${r % 3}` };
      route.methods = ["GET", "HEAD"];
    }
    return route;
  });
  return { version: "v1", listeners: [{ address: ":8080", protocol: "http" }], routes, pools };
}

function time(fn: () => void): number {
  const samples: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const start = performance.now();
    fn();
    samples.push(performance.now() - start);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)] as number;
}

function check(text: string): void {
  const result = parseDynamicConfig(text);
  if (!result.ok)
    throw new Error(`generated config is invalid: ${JSON.stringify(result.errors.slice(0, 3))}`);
  contentHash(result.value);
}

const config = generateConfig();
const yamlText = toYaml(config);
const jsonText = JSON.stringify(config);
check(yamlText); // warm-up, and proof that the generated config is valid

const yamlBaseline = time(() => loadYaml(yamlText, { schema: CORE_SCHEMA }));
const yamlFull = time(() => check(yamlText));
const jsonBaseline = time(() => loadYaml(jsonText, { schema: CORE_SCHEMA }));
const jsonFull = time(() => check(jsonText));

const mb = (text: string) => (Buffer.byteLength(text) / 1024 / 1024).toFixed(1);
const row = (name: string, size: string, base: number, full: number) =>
  `${name.padEnd(6)} ${size.padStart(6)} MB  baseline ${base.toFixed(0).padStart(5)} ms  parse+validate+hash ${full
    .toFixed(0)
    .padStart(5)} ms  ratio ${(full / base).toFixed(2)}x  ${full < 1000 ? "OK (< 1 s)" : "OVER 1 s"}`;

console.log(`config bench: ${ROUTES} routes, ${POOLS} pools, median of ${RUNS} runs`);
console.log(row("YAML", mb(yamlText), yamlBaseline, yamlFull));
console.log(row("JSON", mb(jsonText), jsonBaseline, jsonFull));
