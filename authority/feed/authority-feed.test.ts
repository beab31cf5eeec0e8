import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { credentials } from "@grpc/grpc-js";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type AuthorityDownstream, AuthorityFeedClient } from "../../proto/coherent/v1/authority.js";
import { createLogger } from "../../services/telemetry/logger.js";
import { resolveAuthoritySettings } from "../config.js";
import { startAuthority } from "../main.js";

const silent = createLogger({ name: "authority", level: "silent" });

describe("the authority process", () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "coherent-feed-"));
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("listens on 127.0.0.1:7401 for the feed unless told otherwise", async () => {
    expect((await resolveAuthoritySettings({}, {})).feedListen).toBe("127.0.0.1:7401");
    expect((await resolveAuthoritySettings({}, { COHERENT_FEED_LISTEN: "0.0.0.0:9401" })).feedListen).toBe(
      "0.0.0.0:9401",
    );
    await expect(resolveAuthoritySettings({}, { COHERENT_FEED_LISTEN: "nowhere" })).rejects.toThrow(
      /feed listen address/,
    );
  });

  it("takes the feed's TLS files from flags, COHERENT_FEED_TLS_* or the file, and refuses half a pair", async () => {
    const file = join(dir, "authority.yaml");
    await writeFile(file, "feed_tls:\n  cert_file: file.crt\n  key_file: file.key\n");
    expect((await resolveAuthoritySettings({}, {})).feedTls).toBeUndefined();
    expect((await resolveAuthoritySettings({ config: file }, {})).feedTls).toEqual({
      certFile: "file.crt",
      keyFile: "file.key",
    });
    const env = { COHERENT_FEED_TLS_CERT: "env.crt", COHERENT_FEED_TLS_CLIENT_CA: "ca.pem" };
    expect((await resolveAuthoritySettings({ config: file, feedTlsKey: "flag.key" }, env)).feedTls).toEqual({
      certFile: "env.crt",
      keyFile: "flag.key",
      clientCaFile: "ca.pem",
    });
    await expect(resolveAuthoritySettings({ feedTlsCert: "a.crt" }, {})).rejects.toThrow(
      /both a certificate and its key/,
    );
    await expect(resolveAuthoritySettings({}, { COHERENT_FEED_TLS_CLIENT_CA: "ca.pem" })).rejects.toThrow(
      /client CA needs/,
    );
  });

  it("serves the feed beside the API and stops it on close", async () => {
    const settings = await resolveAuthoritySettings(
      { dataDir: dir, listen: "127.0.0.1:0", feedListen: "127.0.0.1:0" },
      {},
    );
    const authority = await startAuthority({ ...settings, logLevel: "silent" }, { logger: silent });
    try {
      expect(authority.feedAddress).toMatch(/^127\.0\.0\.1:[1-9]\d*$/);
      const client = new AuthorityFeedClient(authority.feedAddress ?? "", credentials.createInsecure());
      const call = client.subscribe();
      const first = new Promise<AuthorityDownstream>((resolve) => call.once("data", resolve));
      const ended = new Promise<number>((resolve) => call.on("status", (end) => resolve(end.code)));
      call.on("error", () => undefined);
      call.write({
        kind: { $case: "subscribe", value: { distributorId: "d-1", region: "eu", knownFleets: [] } },
      });
      expect((await first).kind?.$case).toBe("syncComplete");
      await authority.close();
      expect(await ended).toBe(0);
      client.close();
    } finally {
      await authority.close();
    }
  }, 60_000);
});
