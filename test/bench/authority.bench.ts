/**
 * The authority's write path and the agents' check, on a realistic config:
 *
 * - submit of a 1,000-route config through BundleService: parse + validate + governance +
 *   canonicalize + sign + store (one transaction with its audit entry), on PGlite and on
 *   Postgres (TEST_DATABASE_URL or the local default) — goal: p50 under 50 ms on both;
 * - verification of a signed bundle of about 1 MB — goal: p50 under 5 ms. Measured as a
 *   distributor verifies (verifyBundleEnvelope: header, key, signature, schema, the config's
 *   hash, fleet, floor — everything but decoding the config, which it never reads) and as an
 *   agent does (verifyBundle, which also parses the config it is about to compile).
 *
 * Each submit changes one route's timeout, so every one is a new version, never "unchanged".
 *
 *   npm run bench -- authority
 */
import { stringify } from "yaml";
import { BundleService } from "../../authority/bundle-service.js";
import { DEFAULT_GOVERNANCE } from "../../authority/governance.js";
import { AuthorityStore } from "../../authority/store/index.js";
import { TEST_TARGETS } from "../../authority/store/test-databases.js";
import {
  BUNDLE_SCHEMA,
  type BundlePayload,
  contentSha256,
  generateSigningKey,
  Keyring,
  signBundle,
  verifyBundle,
  verifyBundleEnvelope,
} from "../../services/bundle/index.js";
import { type DynamicConfig, validateDynamicConfig } from "../../services/config/index.js";

const SUBMITS = 40;
const VERIFIES = 60;
const GOALS = { submitP50Ms: 50, verifyP50Ms: 5 } as const;

function config(routes: number, tweak: number): Record<string, unknown> {
  return {
    listeners: [{ address: "0.0.0.0:8080" }],
    pools: Array.from({ length: 50 }, (_, p) => ({
      id: `pool-${p}`,
      endpoints: [{ address: `10.0.${p}.1:8000` }, { address: `10.0.${p}.2:8000` }],
    })),
    routes: Array.from({ length: routes }, (_, r) => ({
      id: `route-${r}`,
      host: `svc-${r % 40}.example.com`,
      path_prefix: `/api/v1/resource-${r}`,
      pool: `pool-${r % 50}`,
      policy: { timeout: r === 0 ? `${1000 + tweak}ms` : "3s", retries: { max_attempts: 2 } },
    })),
  };
}

function p50(values: number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;
}

async function submitBench(): Promise<string[]> {
  const lines: string[] = [];
  const { key } = await generateSigningKey();
  for (const target of TEST_TARGETS) {
    if (target.skip) {
      lines.push(`submit ${target.dialect}: skipped (COHERENT_TEST_NO_POSTGRES=1)`);
      continue;
    }
    const test = await target.create();
    try {
      const store = new AuthorityStore(test.database);
      await store.createFleet({ name: "bench" });
      const service = new BundleService({ store, signingKey: key, governance: DEFAULT_GOVERNANCE });
      const times: number[] = [];
      for (let i = 0; i < SUBMITS + 5; i++) {
        const text = stringify(config(1000, i));
        const started = performance.now();
        const result = await service.submit("bench", { text }, { actor: "bench" });
        const ms = performance.now() - started;
        if (result.status !== "created") throw new Error(`submit ${i}: ${result.status}`);
        if (i >= 5) times.push(ms);
      }
      const median = p50(times);
      lines.push(
        `submit 1,000 routes (YAML ${Math.round(stringify(config(1000, 0)).length / 1024)} KiB) on ${target.dialect.padEnd(8)} p50 ${median.toFixed(1)} ms  goal < ${GOALS.submitP50Ms} ms  ${median < GOALS.submitP50Ms ? "OK" : "OVER"}`,
      );
    } finally {
      await test.dispose();
    }
  }
  return lines;
}

async function verifyBench(): Promise<string[]> {
  const { key, publicJwk } = await generateSigningKey();
  const keyring = await Keyring.from([{ jwk: publicJwk }]);
  const validated = validateDynamicConfig(config(5000, 0));
  if (!validated.ok) throw new Error("bench config invalid");
  const canonical: DynamicConfig = validated.value;
  const payload: BundlePayload = {
    schema: BUNDLE_SCHEMA,
    fleet: "bench",
    version: 2,
    parent: 1,
    created_at: new Date().toISOString(),
    created_by: "bench",
    content_sha256: contentSha256(canonical),
    config: canonical,
  };
  const jws = await signBundle(payload, key);
  const time = async (verify: () => Promise<unknown>) => {
    const times: number[] = [];
    for (let i = 0; i < VERIFIES + 10; i++) {
      const started = performance.now();
      await verify();
      if (i >= 10) times.push(performance.now() - started);
    }
    return p50(times);
  };
  const envelope = await time(() => verifyBundleEnvelope(jws, { keyring, fleet: "bench", floor: 1 }));
  const full = await time(() => verifyBundle(jws, { keyring, fleet: "bench", floor: 1 }));
  const size = (jws.length / 1024 / 1024).toFixed(2);
  return [
    `verify a signed bundle of ${size} MB (distributor: every check, config not decoded) p50 ${envelope.toFixed(2)} ms  goal < ${GOALS.verifyP50Ms} ms  ${envelope < GOALS.verifyP50Ms ? "OK" : "OVER"}`,
    `verify and decode it (agent: verifyBundle, config parsed)                    p50 ${full.toFixed(2)} ms`,
  ];
}

console.log(`authority bench: ${SUBMITS} submits per database, ${VERIFIES} verifies`);
for (const line of await submitBench()) console.log(line);
for (const line of await verifyBench()) console.log(line);
