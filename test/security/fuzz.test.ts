/**
 * Property-based fuzzing of the three parsers that take bytes from outside: config text
 * (readConfigText, parseDynamicConfig, validateDynamicConfig), bundle verification
 * (verifyBundle, verifyBundleEnvelope) and the generated protobuf decoders. Each case must end
 * in a result or in the parser's documented error type, and quickly: a case over
 * CASE_LIMIT_MS is a hang in the making (exponential expansion, backtracking).
 *
 * services/config/config.property.test.ts already feeds validateDynamicConfig JSON values and
 * damaged configs; here the input is text and bytes, and the bundle and proto decoders.
 */
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import * as authorityProto from "../../proto/coherent/v1/authority.js";
import * as commonProto from "../../proto/coherent/v1/common.js";
import * as distributionProto from "../../proto/coherent/v1/distribution.js";
import * as filterProto from "../../proto/coherent/v1/filter.js";
import {
  BUNDLE_SCHEMA,
  BundleError,
  BundleErrorCode,
  generateSigningKey,
  Keyring,
  type SigningKey,
  signBundle,
  verifyBundle,
  verifyBundleEnvelope,
} from "../../services/bundle/index.js";
import { CONFIG_YAML, canonicalConfig, payloadFor, signRaw } from "../../services/bundle/test-support.js";
import {
  ConfigErrorCode,
  parseDynamicConfig,
  readConfigText,
  validateDynamicConfig,
} from "../../services/config/index.js";
import { reportReliability } from "../support/reliability.js";

/**
 * Generous for a 2-core CI machine busy with other suites; every parser here answers the
 * inputs below in a few milliseconds, and a hang would take seconds.
 */
const CASE_LIMIT_MS = 500;
/**
 * For the crafted giants: validation walks up to 5,000,000 values before it refuses an alias
 * bomb, about 0.6 s on this machine; bounded, which is the property, though not cheap.
 */
const GIANT_LIMIT_MS = 3_000;
const CONFIG_CODES = new Set<string>(Object.values(ConfigErrorCode));
const BUNDLE_CODES = new Set<string>(Object.values(BundleErrorCode));
let casesTried = 0;

function timed<T>(what: string, run: () => T, limitMs = CASE_LIMIT_MS): T {
  casesTried++;
  const started = performance.now();
  const result = run();
  const elapsed = performance.now() - started;
  expect(elapsed, `${what} took ${elapsed.toFixed(1)} ms`).toBeLessThan(limitMs);
  return result;
}

async function timedAsync<T>(what: string, run: () => Promise<T>): Promise<T> {
  casesTried++;
  const started = performance.now();
  const result = await run();
  const elapsed = performance.now() - started;
  expect(elapsed, `${what} took ${elapsed.toFixed(1)} ms`).toBeLessThan(CASE_LIMIT_MS);
  return result;
}

// -- config text --------------------------------------------------------------------------------

function expectConfigResult(result: ReturnType<typeof parseDynamicConfig>): void {
  if (result.ok) return;
  expect(result.errors.length).toBeGreaterThan(0);
  for (const error of result.errors) {
    expect(CONFIG_CODES.has(error.code), error.code).toBe(true);
    expect(typeof error.message).toBe("string");
  }
}

/** YAML's own punctuation and indicators, so random text reaches the parser's odd corners. */
const yamlChar = fc.constantFrom(
  ..."abc019 :-?[]{},#&*!|>'\"%@`\n\t\\.~=<+_/".split(""),
  "\r\n",
  "\u0000",
  "\u00e9",
  "\ud83d\ude00",
  "\ufeff",
);
const yamlText = fc.array(yamlChar, { maxLength: 200 }).map((chars) => chars.join(""));

/** The fixture config with characters inserted, deleted or replaced. */
const mutatedYaml = fc
  .array(fc.tuple(fc.nat(CONFIG_YAML.length), fc.nat(3), fc.array(yamlChar, { maxLength: 4 })), {
    minLength: 1,
    maxLength: 6,
  })
  .map((edits) =>
    edits.reduce(
      (text, [at, cut, insert]) => text.slice(0, at) + insert.join("") + text.slice(at + cut),
      CONFIG_YAML,
    ),
  );

describe("config parsing under fuzz", () => {
  it("reads any text into a result, never a throw", () => {
    fc.assert(
      fc.property(fc.oneof(yamlText, fc.string({ maxLength: 300 }), mutatedYaml), (text) => {
        const read = timed("readConfigText", () => readConfigText(text));
        if (!read.ok) for (const e of read.errors) expect(CONFIG_CODES.has(e.code)).toBe(true);
        expectConfigResult(timed("parseDynamicConfig", () => parseDynamicConfig(text)));
      }),
      { numRuns: 400, seed: 9 },
    );
  });

  it("validates any JSON text's value into a result, never a throw", () => {
    fc.assert(
      fc.property(fc.json({ maxDepth: 6 }), (text) => {
        expectConfigResult(timed("parseDynamicConfig(json)", () => parseDynamicConfig(text)));
        expectConfigResult(timed("validateDynamicConfig", () => validateDynamicConfig(JSON.parse(text))));
      }),
      { numRuns: 200, seed: 10 },
    );
  });

  it("refuses alias bombs, deep nesting and oversized text quickly, with a config error", () => {
    const levels = Array.from({ length: 9 }, (_, i) =>
      i === 0
        ? `a0: &a0 [${Array(10).fill('"lol"').join(",")}]`
        : `a${i}: &a${i} [${Array(10)
            .fill(`*a${i - 1}`)
            .join(",")}]`,
    );
    const bomb = `plugins:\n  - id: p\n    kind: k\n    config:\n${levels.map((l) => `      ${l}`).join("\n")}\n`;
    const deepFlow = `${"[".repeat(50_000)}${"]".repeat(50_000)}`;
    const deepBlock = Array.from({ length: 2_000 }, (_, i) => `${" ".repeat(i)}k:`).join("\n");
    const keyBomb = `routes: [${Array.from({ length: 12 }, (_, i) => `&r${i} {id: r${i}}`).join(", ")}]`;
    for (const [name, text] of [
      ["a billion laughs in a plugin's free-form config", bomb],
      ["50,000 nested flow sequences", deepFlow],
      ["2,000 nested block mappings", deepBlock],
      ["anchors on routes", keyBomb],
      ["more than the size limit", `# ${"x".repeat(33 * 1024 * 1024)}`],
    ] as const) {
      const result = timed(name, () => parseDynamicConfig(text), GIANT_LIMIT_MS);
      expect(result.ok, name).toBe(false);
      expectConfigResult(result);
    }
  });
});

// -- bundles -----------------------------------------------------------------------------------

let trusted: SigningKey;
let keyring: Keyring;
let genuine: string;

beforeAll(async () => {
  trusted = (await generateSigningKey()).key;
  keyring = await Keyring.from([{ jwk: trusted.publicJwk }]);
  genuine = await signBundle(payloadFor(canonicalConfig()), trusted);
});

/** Resolves to the payload's version, or to the refusal's code; anything else thrown fails. */
async function verifyOutcome(jws: string, envelope = false): Promise<number | string> {
  try {
    const options = { keyring, fleet: "edge", floor: 2, maxBytes: 64 * 1024 };
    const payload = envelope ? await verifyBundleEnvelope(jws, options) : await verifyBundle(jws, options);
    return payload.version;
  } catch (error) {
    expect(error, String(error)).toBeInstanceOf(BundleError);
    const { code } = error as BundleError;
    expect(BUNDLE_CODES.has(code), code).toBe(true);
    return code;
  }
}

const base64urlChar = fc.constantFrom(
  ..."ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".split(""),
  ".",
  "=",
  "+",
  "/",
  " ",
  "\u00ff",
  "\u2028",
);

/** The genuine bundle with characters replaced, inserted or deleted. */
const mutatedJws = fc
  .array(fc.tuple(fc.nat(), fc.nat(2), fc.array(base64urlChar, { maxLength: 3 })), {
    minLength: 1,
    maxLength: 4,
  })
  .map((edits) =>
    edits.reduce((jws, [at, cut, insert]) => {
      const i = at % (jws.length + 1);
      return jws.slice(0, i) + insert.join("") + jws.slice(i + cut);
    }, genuine),
  );

describe("bundle verification under fuzz", () => {
  it("verifies the genuine bundle, and refuses every mutation of it with a BundleError", async () => {
    expect(await verifyOutcome(genuine)).toBe(3);
    await fc.assert(
      fc.asyncProperty(mutatedJws, fc.boolean(), async (jws, envelope) => {
        const outcome = await timedAsync("verify(mutated)", () => verifyOutcome(jws, envelope));
        // base64url decoding is lenient on the signature's last character's spare bits only.
        if (typeof outcome === "number") expect(jws.split(".")[1]).toBe(genuine.split(".")[1]);
      }),
      { numRuns: 300, seed: 11 },
    );
  });

  it("refuses random strings and random three-part texts with a BundleError", async () => {
    const part = fc.string({ unit: base64urlChar, maxLength: 120 });
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string({ maxLength: 300 }),
          fc.tuple(part, part, part).map((p) => p.join(".")),
        ),
        async (text) => {
          expect(typeof (await timedAsync("verify(random)", () => verifyOutcome(text)))).toBe("string");
        },
      ),
      { numRuns: 300, seed: 12 },
    );
  });

  it("checks every signed payload and header, however odd, and throws only BundleError", async () => {
    const valid = payloadFor(canonicalConfig()) as unknown as Record<string, unknown>;
    const field = fc.constantFrom(...Object.keys(valid), "extra", "__proto__", "constructor");
    const payloadArb = fc.oneof(
      fc.jsonValue({ maxDepth: 4 }),
      fc
        .array(fc.tuple(field, fc.option(fc.jsonValue({ maxDepth: 3 }))), { minLength: 1, maxLength: 3 })
        .map((edits) => {
          const copy: Record<string, unknown> = { ...valid };
          for (const [name, value] of edits) {
            if (value === null) delete copy[name];
            else
              Object.defineProperty(copy, name, {
                value,
                enumerable: true,
                configurable: true,
                writable: true,
              });
          }
          return copy;
        }),
    );
    const headerArb = fc.oneof(
      fc.constant({ alg: "EdDSA", kid: trusted.kid, typ: "coherent-bundle+jws" }),
      fc.dictionary(
        fc.constantFrom("alg", "kid", "typ", "crit", "b64", "jwk"),
        fc.jsonValue({ maxDepth: 2 }),
      ),
    );
    await fc.assert(
      fc.asyncProperty(payloadArb, headerArb, fc.boolean(), async (payload, header, envelope) => {
        const jws = signRaw(JSON.stringify(payload) ?? "null", trusted, header as Record<string, unknown>);
        const outcome = await timedAsync("verify(signed)", () => verifyOutcome(jws, envelope));
        if (typeof outcome === "number") {
          expect((payload as { schema?: unknown }).schema).toBe(BUNDLE_SCHEMA);
          expect(outcome).toBeGreaterThan(2);
        }
      }),
      { numRuns: 300, seed: 13 },
    );
  });
});

// -- protobuf ----------------------------------------------------------------------------------

interface Decoder {
  readonly name: string;
  decode(input: Uint8Array): unknown;
  encode(message: never): { finish(): Uint8Array };
  fromPartial(object: never): unknown;
}

/** Every message type the .proto files generate, found by shape so a new one is fuzzed too. */
const decoders: Decoder[] = Object.entries({
  ...authorityProto,
  ...commonProto,
  ...distributionProto,
  ...filterProto,
}).flatMap(([name, value]) =>
  typeof value === "object" &&
  value !== null &&
  typeof (value as Partial<Decoder>).decode === "function" &&
  typeof (value as Partial<Decoder>).encode === "function"
    ? [{ ...(value as Omit<Decoder, "name">), name }]
    : [],
);

/** What @bufbuild/protobuf's BinaryReader throws on bad input: Error, or RangeError at EOF. */
function expectDecodeError(error: unknown, name: string): void {
  expect(error, `${name}: ${String(error)}`).toBeInstanceOf(Error);
  expect([Error, RangeError], `${name}: ${String(error)}`).toContain((error as Error).constructor);
}

function decodeEach(bytes: Uint8Array): void {
  for (const decoder of decoders) {
    timed(`${decoder.name}.decode`, () => {
      try {
        decoder.decode(bytes);
      } catch (error) {
        expectDecodeError(error, decoder.name);
      }
    });
  }
}

/** Real messages of several types, as the wire carries them, to be damaged. */
function samples(): Uint8Array[] {
  const { AgentMessage, DistributorMessage, AuthorityDownstream } = {
    ...distributionProto,
    ...authorityProto,
  } as unknown as Record<string, Decoder>;
  const bundle = {
    fleet: "edge",
    version: 7,
    contentSha256: "ab".repeat(32),
    signedBundle: new TextEncoder().encode(genuine),
  };
  const messages: Array<[Decoder | undefined, unknown]> = [
    [
      AgentMessage,
      { kind: { $case: "hello", value: { agentId: "a-1", fleet: "edge", region: "eu", runningVersion: 3 } } },
    ],
    [
      AgentMessage,
      {
        kind: {
          $case: "nack",
          value: {
            version: 4,
            nonce: "n",
            errors: [{ path: "signed_bundle", code: "bad_signature", message: "x" }],
          },
        },
      },
    ],
    [
      DistributorMessage,
      {
        kind: {
          $case: "bundleUpdate",
          value: {
            fleet: "edge",
            version: 7,
            nonce: "n",
            contentSha256: bundle.contentSha256,
            signedBundle: bundle.signedBundle,
          },
        },
      },
    ],
    [AuthorityDownstream, { kind: { $case: "bundle", value: bundle } }],
  ];
  return messages.flatMap(([fns, partial]) =>
    fns === undefined ? [] : [fns.encode(fns.fromPartial(partial as never) as never).finish()],
  );
}

describe("protobuf decoding under fuzz", () => {
  it(`finds the generated message types (${decoders.length})`, () => {
    expect(decoders.length).toBeGreaterThanOrEqual(20);
    expect(samples().length).toBe(4);
  });

  it("decodes random bytes with every message type, or throws the reader's Error", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 256 }), (bytes) => decodeEach(bytes)),
      { numRuns: 150, seed: 14 },
    );
  });

  it("decodes damaged real messages with every message type, or throws the reader's Error", () => {
    const real = samples();
    fc.assert(
      fc.property(
        fc.nat(real.length - 1),
        fc.array(
          fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom("set", "cut", "insert")),
          {
            minLength: 1,
            maxLength: 4,
          },
        ),
        (which, edits) => {
          let bytes = Buffer.from(real[which] as Uint8Array);
          for (const [at, byte, kind] of edits) {
            const i = at % (bytes.length + 1);
            if (kind === "set" && i < bytes.length) bytes[i] = byte;
            else if (kind === "cut") bytes = bytes.subarray(0, i);
            else bytes = Buffer.concat([bytes.subarray(0, i), Buffer.from([byte]), bytes.subarray(i)]);
          }
          decodeEach(bytes);
        },
      ),
      { numRuns: 150, seed: 15 },
    );
  });

  it("refuses a length that claims more bytes than there are, and deep group nesting, quickly", () => {
    // Field 1, length-delimited, length 2^31: a reader that allocated first would run out of memory.
    decodeEach(Uint8Array.from([0x0a, 0x80, 0x80, 0x80, 0x80, 0x08, 0x01]));
    // 10,000 start-group tags of an unknown field: skipping them must not overflow the stack.
    decodeEach(new Uint8Array(10_000).fill(0xfb).map((b, i) => (i % 2 === 0 ? b : 0x07)));
  });
});

describe("fuzzing", () => {
  it("recorded its figures", () => {
    expect(casesTried).toBeGreaterThan(1000);
    reportReliability({
      suite: "security",
      scenario: "fuzzing of config, bundle and proto parsers",
      loadHeld: "none",
      faultsInjected: 0,
      badInputsTried: casesTried,
      requestsSent: 0,
      requestsFailed: 0,
      bundlesLost: 0,
      notes: `each case under ${CASE_LIMIT_MS} ms; ${decoders.length} proto message types`,
    });
  });
});
