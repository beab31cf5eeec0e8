import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { generateSigningKey, type SigningKey, signBundle } from "../../services/bundle/index.js";
import { canonicalConfig, payloadFor } from "../../services/bundle/test-support.js";
import type { ControlPlaneConfig } from "../../services/config/index.js";
import { type RunningAgent, runControl } from "../runtime/run.js";
import type { Settings } from "../runtime/settings.js";
import { FakeDistributor, FakeTarget } from "./test-support.js";

const TOKEN = "managed-run-token-0123456789";
const logger = pino({ level: "silent" });
let key: SigningKey;
const cleanup: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  key = (await generateSigningKey()).key;
});

afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

function settingsWith(controlPlane: ControlPlaneConfig | undefined, configFile?: string): Settings {
  return {
    configFile,
    adminAddress: "127.0.0.1:0",
    metricsAddress: undefined,
    logLevel: "silent",
    adminTokens: [TOKEN],
    workers: 1,
    drainDelayMs: 0,
    drainTimeoutMs: 0,
    traceEndpoint: undefined,
    staticConfig: controlPlane ? { control_plane: controlPlane } : {},
  };
}

describe("runControl with control_plane set", () => {
  it("takes its config from the distributor, with no config file", async () => {
    const distributor = await new FakeDistributor().start();
    cleanup.push(() => distributor.stop());
    const stateDir = join(await mkdtemp(join(tmpdir(), "coherent-run-")), "state");
    cleanup.push(() => rm(join(stateDir, ".."), { recursive: true, force: true }));
    const target = new FakeTarget();
    const running: RunningAgent = await runControl(
      settingsWith({
        distributors: [distributor.address],
        fleet: "edge",
        region: "eu-west",
        trusted_keys: [{ kid: key.kid, public_key: JSON.stringify(key.publicJwk) }],
        state_dir: stateDir,
      }),
      logger,
      target,
    );
    cleanup.push(() => running.stop());

    const [hello] = await distributor.waitFor("hello");
    expect(hello?.softwareVersion).toMatch(/^\d+\.\d+\.\d+/);
    const jws = await signBundle(
      payloadFor(canonicalConfig(), { fleet: "edge", version: 2, parent: 1 }),
      key,
    );
    const payload = JSON.parse(Buffer.from(jws.split(".")[1] ?? "", "base64url").toString()) as {
      content_sha256: string;
    };
    distributor.push({
      fleet: "edge",
      version: 2,
      nonce: "n-1",
      contentSha256: payload.content_sha256,
      signedBundle: Buffer.from(jws),
    });
    await distributor.waitFor("ack");
    expect(target.current()?.config).toEqual(canonicalConfig());
  });

  it("refuses to start with both control_plane and a config file", async () => {
    const settings = settingsWith(
      {
        distributors: ["127.0.0.1:1"],
        fleet: "edge",
        region: "eu-west",
        trusted_keys: [{ kid: "k", public_key: "{}" }],
      },
      "/etc/proxy/config.yaml",
    );
    await expect(runControl(settings, logger, new FakeTarget())).rejects.toThrow(/drop --config/);
  });
});
