import { describe, expect, it } from "vitest";
import { DistributorMessage } from "../../proto/coherent/v1/distribution.js";
import { fakeBundle } from "./test-support.js";
import { agentDistributionService, bundleUpdateBytes } from "./wire.js";

describe("bundleUpdateBytes", () => {
  it("decodes to the BundleUpdate DistributorMessage.encode would have written", () => {
    // Over 16 KiB, so the lengths take three varint bytes.
    const bundle = { ...fakeBundle(7), signedBundle: Buffer.alloc(20_000, 0x41) };
    const nonce = "n".repeat(22);
    const message = DistributorMessage.decode(bundleUpdateBytes(bundle, nonce));
    if (message.kind?.$case !== "bundleUpdate") throw new Error(`not a BundleUpdate: ${message.kind?.$case}`);
    const { signedBundle, ...fields } = message.kind.value;
    expect(fields).toEqual({ fleet: bundle.fleet, version: 7, nonce, contentSha256: bundle.contentSha256 });
    expect(Buffer.from(signedBundle).equals(bundle.signedBundle)).toBe(true);
  });

  it("carries each push's own nonce though the bundle's bytes are encoded once", () => {
    const bundle = fakeBundle(3);
    const nonces = ["a", "é".repeat(100), ""].map((nonce) => {
      const message = DistributorMessage.decode(bundleUpdateBytes(bundle, nonce));
      return message.kind?.$case === "bundleUpdate" ? message.kind.value.nonce : undefined;
    });
    expect(nonces).toEqual(["a", "é".repeat(100), ""]);
  });

  it("is passed through by the service's serializer, which still encodes messages", () => {
    const serialize = agentDistributionService.stream.responseSerialize;
    const bytes = bundleUpdateBytes(fakeBundle(1), "x");
    expect(serialize(bytes)).toBe(bytes);
    const heartbeat: DistributorMessage = { kind: { $case: "heartbeat", value: { sentAtUnixMs: 5 } } };
    expect(DistributorMessage.decode(serialize(heartbeat))).toEqual(heartbeat);
  });
});
