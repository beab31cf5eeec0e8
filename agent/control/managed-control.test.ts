import { createPublicKey } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { BundleUpdate } from "../../proto/coherent/v1/distribution.js";
import {
  BundleErrorCode,
  type BundlePayload,
  generateSigningKey,
  Keyring,
  type SigningKey,
  signBundle,
} from "../../services/bundle/index.js";
import { canonicalConfig, payloadFor } from "../../services/bundle/test-support.js";
import type { ControlPlaneConfig, DynamicConfig } from "../../services/config/index.js";
import { LastGoodBundle } from "./last-good-bundle.js";
import { ManagedControl } from "./managed-control.js";
import { NackCode } from "./nack-codes.js";
import { DOWN_ADDRESS, FakeDistributor, FakeTarget } from "./test-support.js";
import { keyringFrom } from "./trusted-keys.js";

const logger = pino({ level: "silent" });
const CONFIG_V2 = `
routes:
  - id: web
    path_prefix: /
    pool: web-pool
pools:
  - id: web-pool
    endpoints:
      - address: 10.0.0.9:80
`;

let key: SigningKey;
let otherKey: SigningKey;
let keyring: Keyring;
let stateDir: string;
const running: Array<{ stop(): Promise<void> }> = [];

beforeAll(async () => {
  key = (await generateSigningKey()).key;
  otherKey = (await generateSigningKey()).key;
  keyring = await Keyring.from([{ jwk: key.publicJwk }]);
});

beforeEach(async () => {
  stateDir = join(await mkdtemp(join(tmpdir(), "coherent-control-")), "state");
});

afterEach(async () => {
  for (const thing of running.splice(0).reverse()) await thing.stop();
  await rm(join(stateDir, ".."), { recursive: true, force: true });
});

function settings(distributors: string[], extra: Partial<ControlPlaneConfig> = {}): ControlPlaneConfig {
  return {
    distributors,
    fleet: "edge",
    region: "eu-west",
    agent_id: "agent-7",
    labels: { zone: "a" },
    trusted_keys: [{ kid: key.kid, public_key: JSON.stringify(key.publicJwk) }],
    state_dir: stateDir,
    ...extra,
  };
}

async function startDistributor(options?: FakeDistributor["options"]): Promise<FakeDistributor> {
  const distributor = await new FakeDistributor(options).start();
  running.push(distributor);
  return distributor;
}

async function startControl(config: ControlPlaneConfig, target = new FakeTarget()): Promise<ManagedControl> {
  const control = new ManagedControl({
    settings: config,
    target,
    keyring,
    logger,
    softwareVersion: "0.1.0-test",
    backoffBaseMs: 10,
    backoffCapMs: 50,
    welcomeTimeoutMs: 300,
  });
  running.push(control);
  await control.start();
  return control;
}

async function bundle(fields: Partial<BundlePayload> = {}, signer = key): Promise<string> {
  return signBundle(
    payloadFor(canonicalConfig(), { fleet: "edge", version: 3, parent: 2, ...fields }),
    signer,
  );
}

function updateOf(jws: string, fields: Partial<BundleUpdate> = {}): BundleUpdate {
  const payload = JSON.parse(Buffer.from(jws.split(".")[1] ?? "", "base64url").toString()) as BundlePayload;
  return {
    fleet: payload.fleet,
    version: payload.version,
    nonce: `nonce-${payload.version}-${Math.random()}`,
    contentSha256: payload.content_sha256,
    signedBundle: Buffer.from(jws, "ascii"),
    ...fields,
  };
}

describe("ManagedControl", () => {
  it("says hello with its identity and nothing running on a first boot", async () => {
    const distributor = await startDistributor();
    await startControl(settings([distributor.address]));
    const [hello] = await distributor.waitFor("hello");
    expect(hello).toEqual({
      agentId: "agent-7",
      fleet: "edge",
      region: "eu-west",
      labels: { zone: "a" },
      currentVersion: 0,
      currentContentSha256: "",
      softwareVersion: "0.1.0-test",
    });
  });

  it("verifies, applies and acknowledges a bundle, and keeps it as the last good one", async () => {
    const distributor = await startDistributor();
    const target = new FakeTarget();
    const control = await startControl(settings([distributor.address]), target);
    await distributor.waitFor("hello");
    const jws = await bundle();
    const update = updateOf(jws);
    distributor.push(update);
    const [ackMessage] = await distributor.waitFor("ack");
    expect(ackMessage).toEqual({ version: 3, nonce: update.nonce, contentSha256: update.contentSha256 });
    expect(target.current()?.config).toEqual(canonicalConfig());
    expect(target.current()?.source).toContain("bundle v3");
    expect(control.current).toMatchObject({ version: 3, contentSha256: update.contentSha256 });
    expect(await new LastGoodBundle(stateDir).read()).toBe(jws);
  });

  it("acknowledges the same push again without applying it twice", async () => {
    const distributor = await startDistributor();
    const target = new FakeTarget();
    await startControl(settings([distributor.address]), target);
    await distributor.waitFor("hello");
    const jws = await bundle();
    distributor.push(updateOf(jws));
    await distributor.waitFor("ack");
    const again = updateOf(jws);
    distributor.push(again);
    const acks = await distributor.waitFor("ack", 2);
    expect(acks[1]?.nonce).toBe(again.nonce);
    expect(target.applied).toHaveLength(1);
    expect(distributor.all("nack")).toEqual([]);
  });

  describe("refuses a bad bundle with a Nack and keeps serving the previous config", () => {
    const cases: Array<{ name: string; update: () => Promise<BundleUpdate>; code: string; path: string }> = [
      {
        name: "a tampered signature",
        update: async () => {
          const jws = await bundle({ version: 4, parent: 3 });
          const last = jws.at(-2) === "A" ? "B" : "A";
          return updateOf(`${jws.slice(0, -2)}${last}${jws.slice(-1)}`);
        },
        code: BundleErrorCode.BadSignature,
        path: "signed_bundle",
      },
      {
        name: "a key it does not trust",
        update: async () => updateOf(await bundle({ version: 4, parent: 3 }, otherKey)),
        code: BundleErrorCode.UnknownKid,
        path: "signed_bundle",
      },
      {
        name: "a version not above the one running",
        update: async () =>
          updateOf(
            await signBundle(payloadFor(canonicalConfig(CONFIG_V2), { fleet: "edge", version: 3 }), key),
          ),
        code: BundleErrorCode.VersionNotAboveFloor,
        path: "signed_bundle",
      },
      {
        name: "another fleet",
        update: async () => updateOf(await bundle({ fleet: "core", version: 4, parent: 3 })),
        code: BundleErrorCode.WrongFleet,
        path: "signed_bundle",
      },
      {
        name: "something that is not a bundle",
        update: async () => ({
          fleet: "edge",
          version: 4,
          nonce: "n-malformed",
          contentSha256: "",
          signedBundle: Buffer.from("not a jws"),
        }),
        code: BundleErrorCode.Malformed,
        path: "signed_bundle",
      },
      {
        name: "hints that disagree with the signed payload",
        update: async () => updateOf(await bundle({ version: 4, parent: 3 }), { version: 5 }),
        code: NackCode.HintMismatch,
        path: "version",
      },
      {
        name: "a signed config that does not validate",
        update: async () => {
          // Signed as is: the authority would never sign it, but the agent must not trust that.
          const config = { ...canonicalConfig(), routes: [{ id: "api", path_prefix: "/", pool: "missing" }] };
          return updateOf(
            await signBundle(payloadFor(config as DynamicConfig, { fleet: "edge", version: 4 }), key),
          );
        },
        code: "unknown_reference",
        path: "config.routes[0].pool",
      },
    ];

    for (const { name, update, code, path } of cases) {
      it(`refuses ${name}`, async () => {
        const distributor = await startDistributor();
        const target = new FakeTarget();
        const control = await startControl(settings([distributor.address]), target);
        await distributor.waitFor("hello");
        distributor.push(updateOf(await bundle()));
        await distributor.waitFor("ack");
        const serving = target.current();

        const bad = await update();
        distributor.push(bad);
        const [nack] = await distributor.waitFor("nack");
        expect(nack?.nonce).toBe(bad.nonce);
        expect(nack?.version).toBe(bad.version);
        expect(nack?.errors).toContainEqual(expect.objectContaining({ code, path }));
        expect(target.current()).toBe(serving);
        expect(control.current?.version).toBe(3);
      });
    }

    it("reports every error the target found when it cannot apply the config", async () => {
      const distributor = await startDistributor();
      const target = new FakeTarget();
      await startControl(settings([distributor.address]), target);
      await distributor.waitFor("hello");
      target.refuse = true;
      distributor.push(updateOf(await bundle()));
      const [nack] = await distributor.waitFor("nack");
      expect(nack?.errors).toEqual([
        { code: "invalid_value", path: "config.listeners[0].address", message: "address in use" },
      ]);
      expect(target.current()).toBeUndefined();
    });
  });

  it("fails over to the next distributor when the first is down", async () => {
    const distributor = await startDistributor();
    const control = await startControl(settings([DOWN_ADDRESS, distributor.address]));
    await distributor.waitFor("hello");
    await expect.poll(() => control.connectedTo).toBe(distributor.address);
  });

  it("serves the persisted bundle after a restart with every distributor down, and says so in its Hello", async () => {
    const distributor = await startDistributor();
    const first = await startControl(settings([distributor.address]));
    await distributor.waitFor("hello");
    const update = updateOf(await bundle({ version: 9, parent: 8 }));
    distributor.push(update);
    await distributor.waitFor("ack");
    await first.stop();

    const target = new FakeTarget();
    const restarted = await startControl(settings([DOWN_ADDRESS]), target);
    expect(target.current()?.config).toEqual(canonicalConfig());
    expect(target.current()?.source).toBe("last good bundle v9");
    expect(restarted.current?.version).toBe(9);

    const later = await startDistributor();
    const third = await startControl(settings([later.address]), new FakeTarget());
    const [hello] = await later.waitFor("hello");
    expect(hello).toMatchObject({ currentVersion: 9, currentContentSha256: update.contentSha256 });
    expect(third.current?.version).toBe(9);
  });

  it("does not serve a persisted bundle that no longer verifies", async () => {
    await new LastGoodBundle(stateDir).save(await bundle({}, otherKey));
    const target = new FakeTarget();
    const control = await startControl(settings([DOWN_ADDRESS]), target);
    expect(target.current()).toBeUndefined();
    expect(control.current).toBeUndefined();
  });

  it("sends health reports whose windows tile time", async () => {
    const distributor = await startDistributor();
    const control = await startControl(settings([distributor.address], { health_report_interval: 100 }));
    await distributor.waitFor("hello");
    control.health.record(3, 200, 12);
    control.health.record(3, 502, 40);
    const reports = await distributor.waitFor("healthReport", 3);
    for (let i = 1; i < reports.length; i++)
      expect(reports[i]?.windowStartUnixMs).toBe(reports[i - 1]?.windowEndUnixMs);
    const counted = reports.flatMap((r) => r.versions);
    expect(counted).toHaveLength(1);
    expect(counted[0]).toMatchObject({ version: 3, requests: 2, errors5xx: 1 });
  });

  it("sends heartbeats at the interval the distributor sets", async () => {
    const distributor = await startDistributor({ heartbeatIntervalMs: 50 });
    await startControl(settings([distributor.address]));
    const [beat] = await distributor.waitFor("heartbeat", 2);
    expect(beat?.sentAtUnixMs).toBeGreaterThan(0);
  });

  it("moves on from a distributor that never answers its Hello", async () => {
    const mute = await startDistributor({ welcome: false });
    const distributor = await startDistributor();
    const control = await startControl(settings([mute.address, distributor.address]));
    await mute.waitFor("hello");
    await distributor.waitFor("hello");
    await expect.poll(() => control.connectedTo).toBe(distributor.address);
  });

  it("answers a Nack when the target fails, and applies the next push", async () => {
    const distributor = await startDistributor();
    const target = new FakeTarget();
    await startControl(settings([distributor.address]), target);
    await distributor.waitFor("hello");
    target.fail = true;
    distributor.push(updateOf(await bundle()));
    const [nack] = await distributor.waitFor("nack");
    expect(nack?.errors).toEqual([expect.objectContaining({ code: NackCode.Internal })]);
    target.fail = false;
    distributor.push(updateOf(await bundle()));
    const [ack] = await distributor.waitFor("ack");
    expect(ack?.version).toBe(3);
  });

  it("reconnects after the distributor goes away", async () => {
    const first = await startDistributor();
    const second = await startDistributor();
    const control = await startControl(settings([first.address, second.address]));
    await first.waitFor("hello");
    await first.stop();
    await second.waitFor("hello");
    await expect.poll(() => control.connectedTo).toBe(second.address);
  });
});

describe("trusted keys from files", () => {
  it("reads a PEM key file", async () => {
    const pem = createPublicKey({ key: { ...key.publicJwk }, format: "jwk" }).export({
      type: "spki",
      format: "pem",
    });
    const dir = join(stateDir, "..");
    await writeFile(join(dir, "key.pub.pem"), pem);
    const ring = await keyringFrom([{ kid: key.kid, public_key_file: join(dir, "key.pub.pem") }]);
    expect(ring.kids()).toEqual([key.kid]);
  });
});
