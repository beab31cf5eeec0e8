/**
 * The AgentDistribution service as the distributor serves it, and BundleUpdates encoded once.
 *
 * A push writes the same bundle, often 100 KB or more, to thousands of agents; only the nonce
 * differs per agent. Encoding the message per agent costs several copies of the bundle and as
 * much garbage each time, so a bundle's fields are encoded once per held Bundle object and each
 * push appends its nonce: protobuf fields may come in any order, and a decoder reads them all.
 * The service's response serializer passes such pre-encoded bytes through unchanged.
 */
import type { Bundle } from "../../proto/coherent/v1/authority.js";
import {
  AgentDistributionService,
  BundleUpdate,
  DistributorMessage,
} from "../../proto/coherent/v1/distribution.js";

/** What a session writes: a message, or DistributorMessage bytes from bundleUpdateBytes. */
export type OutgoingMessage = DistributorMessage | Buffer;

export const agentDistributionService = {
  stream: {
    ...AgentDistributionService.stream,
    responseSerialize: (value: OutgoingMessage): Buffer =>
      Buffer.isBuffer(value) ? value : Buffer.from(DistributorMessage.encode(value).finish()),
  },
} as const;

/** Field tags (field number << 3 | wire type 2, length-delimited), from distribution.proto. */
const DISTRIBUTOR_MESSAGE_BUNDLE_UPDATE = (2 << 3) | 2;
const BUNDLE_UPDATE_NONCE = (3 << 3) | 2;

/** Keyed by the Bundle object the source holds: dropped with it, never stale for a version. */
const encodedBundles = new WeakMap<Bundle, Buffer>();

/** DistributorMessage{bundle_update} for this bundle and nonce, as DistributorMessage.encode writes it modulo field order. */
export function bundleUpdateBytes(bundle: Bundle, nonce: string): Buffer {
  let shared = encodedBundles.get(bundle);
  if (shared === undefined) {
    const { fleet, version, contentSha256, signedBundle } = bundle;
    shared = Buffer.from(
      BundleUpdate.encode({ fleet, version, nonce: "", contentSha256, signedBundle }).finish(),
    );
    encodedBundles.set(bundle, shared);
  }
  const nonceBytes = Buffer.byteLength(nonce);
  const inner = shared.byteLength + 1 + varintSize(nonceBytes) + nonceBytes;
  const out = Buffer.allocUnsafe(1 + varintSize(inner) + inner);
  out[0] = DISTRIBUTOR_MESSAGE_BUNDLE_UPDATE;
  let at = writeVarint(out, 1, inner);
  at += shared.copy(out, at);
  out[at] = BUNDLE_UPDATE_NONCE;
  at = writeVarint(out, at + 1, nonceBytes);
  out.write(nonce, at, "utf8");
  return out;
}

function varintSize(value: number): number {
  let size = 1;
  for (let rest = value; rest >= 0x80; rest = Math.floor(rest / 0x80)) size++;
  return size;
}

/** Writes `value` (below 2^53) as a protobuf varint at `at`; returns the offset after it. */
function writeVarint(out: Buffer, at: number, value: number): number {
  let rest = value;
  let offset = at;
  while (rest >= 0x80) {
    out[offset++] = (rest % 0x80) | 0x80;
    rest = Math.floor(rest / 0x80);
  }
  out[offset++] = rest;
  return offset;
}
