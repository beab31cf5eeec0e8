/**
 * A compromised distributor against a real managed agent process. The distributor is the
 * real DistributorServer, reporting to a real authority through the real AuthorityFeed
 * client, but its source holds crafted bundles: tampered, signed by an untrusted key,
 * replayed, another fleet's, malformed, oversized. Each one must end in a NACK carrying the
 * refusal's code, which the authority's agent list shows, and change nothing the agent
 * serves: traffic keeps going to the upstream of the last good bundle.
 */
import { createHmac } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestAuthority, type TestAuthority, testDatabase } from "../../authority/api/test-harness.js";
import { AgentState, type Bundle } from "../../proto/coherent/v1/authority.js";
import {
  BUNDLE_SCHEMA,
  BUNDLE_TYP,
  BundleErrorCode,
  DEFAULT_MAX_BUNDLE_BYTES,
  generateSigningKey,
  Keyring,
  loadSigningKey,
  type SigningKey,
  signBundle,
  writeKeyPair,
} from "../../services/bundle/index.js";
import { base64url, canonicalConfig, payloadFor, signRaw } from "../../services/bundle/test-support.js";
import { AuthorityClient } from "../../services/distributor/authority-client.js";
import { DiskCache } from "../../services/distributor/disk-cache.js";
import type { HealthSink } from "../../services/distributor/fleet-source.js";
import { MemoryFleetSource } from "../../services/distributor/memory-fleet-source.js";
import { DistributorServer } from "../../services/distributor/server.js";
import { fleetState, RecordingSink } from "../../services/distributor/test-support.js";
import { createLogger } from "../../services/telemetry/logger.js";
import type { AgentView } from "../e2e/support/coherent.js";
import { type ManagedAgent, routesTo, startManagedAgent } from "../e2e/support/managed-agent.js";
import { waitUntil } from "../e2e/support/processes.js";
import { reportReliability } from "../support/reliability.js";
import { startUpstream, type Upstream } from "../support/upstream.js";

const FLEET = "edge";

let dir: string;
let trusted: SigningKey;
/** The public key file the agent trusts: the secret an HS256 confusion attack would use. */
let trustedPublicPem: string;
let upstreams: Record<"v1" | "v2" | "evil", Upstream>;
let source: MemoryFleetSource;
let sink: RecordingSink;
let authority: TestAuthority;
let feedClient: AuthorityClient;
let distributor: DistributorServer;
let agent: ManagedAgent;
let generation = 0;
const genuine = new Map<number, Bundle>();

/** A bundle as the authority would sign it, sending every request to `upstream`. */
async function bundleOf(
  key: SigningKey,
  version: number,
  upstream: Upstream,
  fleet = FLEET,
): Promise<Bundle> {
  // JSON is YAML: parsed and validated as a submitted config would be.
  const config = canonicalConfig(JSON.stringify(routesTo(upstream)));
  const payload = payloadFor(config, { fleet, version, parent: version > 1 ? version - 1 : null });
  return {
    fleet: FLEET,
    version,
    contentSha256: payload.content_sha256,
    signedBundle: Buffer.from(await signBundle(payload, key), "latin1"),
  };
}

/** What the compromised distributor does: hold the bundle and make it the fleet's stable version. */
function offer(bundle: Bundle): void {
  source.putBundle(bundle);
  generation++;
  source.putState(fleetState({ fleet: FLEET, stableVersion: bundle.version, generation }));
}

async function servedBy(): Promise<string | undefined> {
  return (await agent.servedBy())?.upstream;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "coherent-attacks-"));
  const pair = await writeKeyPair(join(dir, "keys"));
  trusted = await loadSigningKey({ file: pair.privateFile });
  trustedPublicPem = await readFile(pair.publicFile, "utf8");
  const [v1, v2, evil] = await Promise.all([
    startUpstream({ name: "v1" }),
    startUpstream({ name: "v2" }),
    startUpstream({ name: "evil" }),
  ]);
  upstreams = { v1, v2, evil };
  // The authority the compromised distributor still reports to, as a real one would.
  authority = await startTestAuthority({
    database: testDatabase("pglite"),
    settings: { feedListen: "127.0.0.1:0" },
  });
  expect((await authority.call("POST", "/api/v1/fleets", { body: { name: FLEET } })).status).toBe(201);
  feedClient = new AuthorityClient({
    addresses: [authority.handle.feedAddress as string],
    distributorId: "rogue-1",
    region: "eu-west",
    cache: await DiskCache.open({
      dir: join(dir, "cache"),
      keyring: await Keyring.from([{ pem: authority.publicPem }]),
    }),
    logger: createLogger({ name: "distributor", level: "silent" }),
  });
  feedClient.start();
  source = new MemoryFleetSource();
  sink = new RecordingSink();
  const both: HealthSink = {
    health: (samples) => {
      sink.health(samples);
      feedClient.health(samples);
    },
    agentStatus: (statuses) => {
      sink.agentStatus(statuses);
      feedClient.agentStatus(statuses);
    },
  };
  distributor = new DistributorServer({
    source,
    sink: both,
    distributorId: "rogue-1",
    region: "eu-west",
    heartbeatIntervalMs: 500,
    healthFlushMs: 100,
  });
  const port = await distributor.listen("127.0.0.1:0");
  for (const [version, upstream] of [
    [1, v1],
    [2, v2],
  ] as const) {
    genuine.set(version, await bundleOf(trusted, version, upstream));
  }
  offer(genuine.get(1) as Bundle);
  agent = await startManagedAgent({
    agentId: "victim-1",
    distributors: [`127.0.0.1:${port}`],
    trustedKeys: [{ kid: pair.kid, publicFile: pair.publicFile }],
    dir,
  });
  await waitUntil("v1 serving", async () => ((await servedBy()) === "v1" ? true : undefined), 10_000);
  offer(genuine.get(2) as Bundle);
  await waitUntil("v2 serving", async () => ((await servedBy()) === "v2" ? true : undefined), 10_000);
  // The agent serves before its Ack arrives; an attack pushed in between would supersede the push.
  await waitUntil("the Ack of v2", () =>
    distributor.core.get("victim-1")?.runningVersion === 2 ? true : undefined,
  );
}, 60_000);

afterAll(async () => {
  await agent?.process.stop("SIGKILL");
  await distributor?.close();
  await feedClient?.close();
  await authority?.close();
  await Promise.all(Object.values(upstreams ?? {}).map((u) => u.close()));
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Replaces one character of the JWS's payload part by another base64url character. */
function flipOneByte(jws: string): string {
  const at = jws.indexOf(".") + 40;
  const replacement = jws[at] === "A" ? "B" : "A";
  return `${jws.slice(0, at)}${replacement}${jws.slice(at + 1)}`;
}

interface Attack {
  readonly name: string;
  readonly code: string;
  make(version: number): Promise<Bundle>;
}

const attacks: Attack[] = [
  {
    name: "a bundle with one byte flipped",
    code: BundleErrorCode.BadSignature,
    async make(version) {
      const bundle = await bundleOf(trusted, version, upstreams.evil);
      const jws = Buffer.from(bundle.signedBundle).toString("latin1");
      return { ...bundle, signedBundle: Buffer.from(flipOneByte(jws), "latin1") };
    },
  },
  {
    name: "a bundle signed by a key the agent does not trust",
    code: BundleErrorCode.UnknownKid,
    async make(version) {
      return bundleOf((await generateSigningKey()).key, version, upstreams.evil);
    },
  },
  {
    name: "an old bundle replayed",
    code: BundleErrorCode.VersionNotAboveFloor,
    make: async () => genuine.get(1) as Bundle,
  },
  {
    name: "another fleet's bundle",
    code: BundleErrorCode.WrongFleet,
    make: (version) => bundleOf(trusted, version, upstreams.evil, "other-fleet"),
  },
  {
    name: "a malformed JWS (cut before its signature)",
    code: BundleErrorCode.Malformed,
    async make(version) {
      const bundle = await bundleOf(trusted, version, upstreams.evil);
      const jws = Buffer.from(bundle.signedBundle).toString("latin1");
      return { ...bundle, signedBundle: Buffer.from(jws.slice(0, jws.lastIndexOf(".")), "latin1") };
    },
  },
  {
    name: "a bundle over the size limit",
    code: BundleErrorCode.TooLarge,
    async make(version) {
      const config = canonicalConfig(JSON.stringify(routesTo(upstreams.evil)));
      // Padding in a signed field: a well-formed, validly signed bundle that is simply too big.
      const padding = "x".repeat(Math.ceil((DEFAULT_MAX_BUNDLE_BYTES * 3) / 4) + 1024);
      const payload = payloadFor(config, { fleet: FLEET, version, parent: version - 1, created_by: padding });
      const jws = await signBundle(payload, trusted);
      expect(jws.length).toBeGreaterThan(DEFAULT_MAX_BUNDLE_BYTES);
      return {
        fleet: FLEET,
        version,
        contentSha256: payload.content_sha256,
        signedBundle: Buffer.from(jws, "latin1"),
      };
    },
  },
];

/** The JWS header and payload parts of a genuine bundle of `version`, to re-sign another way. */
async function unsignedParts(version: number): Promise<{ payload: string; contentSha256: string }> {
  const bundle = await bundleOf(trusted, version, upstreams.evil);
  const jws = Buffer.from(bundle.signedBundle).toString("latin1");
  return { payload: jws.split(".")[1] as string, contentSha256: bundle.contentSha256 };
}

function asBundle(version: number, contentSha256: string, jws: string): Bundle {
  return { fleet: FLEET, version, contentSha256, signedBundle: Buffer.from(jws, "latin1") };
}

attacks.push(
  {
    name: "a downgrade to alg none",
    code: BundleErrorCode.BadSignature,
    async make(version) {
      const { payload, contentSha256 } = await unsignedParts(version);
      const header = base64url(JSON.stringify({ alg: "none", kid: trusted.kid, typ: BUNDLE_TYP }));
      return asBundle(version, contentSha256, `${header}.${payload}.`);
    },
  },
  {
    name: "HS256 keyed with the trusted public key (algorithm confusion)",
    code: BundleErrorCode.BadSignature,
    async make(version) {
      const { payload, contentSha256 } = await unsignedParts(version);
      const header = base64url(JSON.stringify({ alg: "HS256", kid: trusted.kid, typ: BUNDLE_TYP }));
      const signature = createHmac("sha256", trustedPublicPem)
        .update(`${header}.${payload}`)
        .digest("base64url");
      return asBundle(version, contentSha256, `${header}.${payload}.${signature}`);
    },
  },
  {
    name: "a validly signed config nested 100,000 deep",
    code: BundleErrorCode.Malformed,
    async make(version) {
      // Written as text: a value this deep cannot be built and serialized by JSON.stringify.
      const depth = 100_000;
      const config = `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`;
      const hash = "0".repeat(64);
      const text = `{"config":${config},"content_sha256":"${hash}","created_at":"2025-01-02T03:04:05.000Z","created_by":"mallory","fleet":"${FLEET}","parent":${version - 1},"schema":"${BUNDLE_SCHEMA}","version":${version}}`;
      return asBundle(version, hash, signRaw(text, trusted));
    },
  },
);

describe("a managed agent fed by a compromised distributor", () => {
  afterAll(() => {
    reportReliability({
      suite: "security",
      scenario: "bundle attacks through a compromised distributor",
      loadHeld: "none",
      faultsInjected: 0,
      badInputsTried: attacks.length,
      requestsSent: attacks.length * 5,
      requestsFailed: 0,
      bundlesLost: 0,
      notes: "every attack NACKed with its code; the agent kept serving the last good bundle",
    });
  });

  it.each(attacks.map((attack, i) => ({ ...attack, version: 3 + i })))(
    "refuses $name with $code and keeps serving the last good bundle",
    async ({ code, make, version }) => {
      const bundle = await make(version);
      const before = agent.refusals().length;
      offer(bundle);

      const refusal = await waitUntil(
        `a NACK of v${bundle.version}`,
        () => agent.refusals().slice(before)[0],
      );
      expect(refusal.version).toBe(bundle.version);
      expect(refusal.errors.map((e) => e.code)).toEqual([code]);
      expect(refusal.errors[0]?.path).toBe("signed_bundle");

      const reported = await waitUntil("the NACK in the distributor's report", () =>
        sink.statuses.find(
          (s) =>
            s.agentId === "victim-1" &&
            s.nackVersion === bundle.version &&
            s.state === AgentState.AGENT_STATE_NACKED,
        ),
      );
      expect(reported.nackErrors.map((e) => e.code)).toEqual([code]);
      expect(reported.runningVersion).toBe(2);

      const shown = await waitUntil("the NACK in the authority's agent list", async () => {
        const response = await authority.call("GET", `/api/v1/agents?fleet=${FLEET}`);
        const view = (response.body as { agents?: AgentView[] }).agents?.find((a) => a.id === "victim-1");
        return view?.state === "nacked" && view.nack?.version === bundle.version ? view : undefined;
      });
      expect(shown).toMatchObject({ distributor: "rogue-1", running_version: 2, connected: true });
      expect(shown.nack?.errors.map((e) => e.code)).toEqual([code]);

      for (let i = 0; i < 5; i++) expect(await servedBy()).toBe("v2");
      expect(upstreams.evil.requests).toHaveLength(0);
      expect(agent.runningVersion()).toBe(2);
      expect(agent.process.exit).toBeUndefined();
    },
  );
});
