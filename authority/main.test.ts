import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { writeKeyPair } from "../services/bundle/index.js";
import { createLogger } from "../services/telemetry/logger.js";
import { dropSchema, POSTGRES_URL, testDatabase } from "./api/test-harness.js";
import { AuthorityConfigError, type AuthoritySettings } from "./config.js";
import { DEFAULT_GOVERNANCE } from "./governance.js";
import { startAuthority } from "./main.js";

const silent = createLogger({ name: "authority", level: "silent" });

describe("startAuthority", () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "coherent-main-"));
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const settings = (overrides: Partial<AuthoritySettings> = {}): AuthoritySettings => ({
    database: { dataDir: join(dir, "pglite") },
    dataDir: dir,
    listen: "127.0.0.1:0",
    signingKey: undefined,
    trustedKeyFiles: [],
    governance: DEFAULT_GOVERNANCE,
    bodyLimit: 1024 * 1024,
    controller: { enabled: false, tickMs: 1000, webhooks: [] },
    logLevel: "silent",
    ...overrides,
  });

  it("makes a dev signing key (0600) in the data directory on first start and reuses it after", async () => {
    const first = await startAuthority(settings(), { logger: silent });
    const keyFile = join(dir, "keys", "signing.key.pem");
    expect((await stat(keyFile)).mode & 0o777).toBe(0o600);
    await first.store.createFleet({ name: "kept" });
    await first.close();
    await first.close();

    const second = await startAuthority(settings(), { logger: silent });
    try {
      expect(second.kid).toBe(first.kid);
      expect(await second.store.getFleet("kept")).toMatchObject({ name: "kept" });
      const keys = await second.store.listSigningKeys();
      expect(keys.map((k) => [k.kid, k.status])).toEqual([[first.kid, "active"]]);
      expect(await second.store.listAudit({ action: "key.activate" })).toHaveLength(1);
    } finally {
      await second.close();
    }
  });

  it("activates a new key, keeps the previous one trusted, registers trusted files, and refuses a retired key", async () => {
    const old = await writeKeyPair(join(dir, "old"));
    const next = await writeKeyPair(join(dir, "next"));
    const extra = await writeKeyPair(join(dir, "extra"));
    const first = await startAuthority(settings({ signingKey: { file: old.privateFile } }), {
      logger: silent,
    });
    await first.close();

    const second = await startAuthority(
      settings({ signingKey: { file: next.privateFile }, trustedKeyFiles: [extra.publicFile] }),
      { logger: silent },
    );
    const statuses = new Map((await second.store.listSigningKeys()).map((k) => [k.kid, k.status]));
    expect(Object.fromEntries(statuses)).toEqual({
      [old.kid]: "trusted",
      [next.kid]: "active",
      [extra.kid]: "trusted",
    });
    expect((await second.store.listAudit({ action: "key.trust" }))[0]).toMatchObject({
      target: `key:${extra.kid}`,
    });
    await second.close();

    // A replica restarted with the replaced key signs, but does not undo the rotation.
    const lagging = await startAuthority(settings({ signingKey: { file: old.privateFile } }), {
      logger: silent,
    });
    expect((await lagging.store.listSigningKeys()).find((k) => k.status === "active")?.kid).toBe(next.kid);
    await lagging.store.upsertSigningKey({ kid: old.kid, publicJwk: old.publicJwk, status: "retired" });
    await lagging.close();

    const error = await startAuthority(settings({ signingKey: { file: old.privateFile } }), {
      logger: silent,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AuthorityConfigError);
    expect((error as Error).message).toContain("retired");
  });

  it("refuses a private key listed as trusted", async () => {
    const pair = await writeKeyPair(join(dir, "pair"));
    await expect(
      startAuthority(settings({ trustedKeyFiles: [pair.privateFile] }), { logger: silent }),
    ).rejects.toMatchObject({ code: "wrong_key_type" });
  });

  // The rule is about a shared Postgres; skipped when COHERENT_TEST_NO_POSTGRES=1 (no Postgres here).
  it.skipIf(POSTGRES_URL === undefined)("requires a configured key on a shared Postgres", async () => {
    const database = testDatabase("postgres");
    try {
      const error = await startAuthority(settings({ database }), { logger: silent }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(AuthorityConfigError);
      expect((error as Error).message).toContain("COHERENT_SIGNING_KEY");
    } finally {
      await dropSchema(database);
    }
  });
});
