import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthorityConfigError, parseListen, resolveAuthoritySettings } from "./config.js";
import { DEFAULT_GOVERNANCE } from "./governance.js";

describe("authority settings", () => {
  let dir: string;
  let file: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "coherent-settings-"));
    file = join(dir, "authority.yaml");
    await writeFile(
      file,
      [
        "listen: 127.0.0.1:9000",
        "database_url: postgres://file@db/coherent",
        "database_schema: tenant_a",
        "data_dir: /var/lib/coherent",
        "signing_key_file: /etc/coherent/file.key.pem",
        "trusted_key_files: [/etc/coherent/old.pub.pem]",
        "governance: { max_routes: 10, require_tls_kept: false }",
        "body_limit: 2MB",
        "log_level: warn",
      ].join("\n"),
    );
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("defaults to embedded PGlite under .coherent/, 127.0.0.1:7400, 8 MiB bodies and the default rules", async () => {
    expect(await resolveAuthoritySettings({}, {})).toEqual({
      database: { dataDir: join(".coherent", "pglite") },
      dataDir: ".coherent",
      listen: "127.0.0.1:7400",
      feedListen: "127.0.0.1:7401",
      signingKey: undefined,
      trustedKeyFiles: [],
      governance: DEFAULT_GOVERNANCE,
      bodyLimit: 8 * 1024 * 1024,
      controller: { enabled: true, tickMs: 1000, webhooks: [] },
      logLevel: "info",
    });
  });

  it("reads the config file, with units and partial governance", async () => {
    expect(await resolveAuthoritySettings({ config: file }, {})).toEqual({
      database: { url: "postgres://file@db/coherent", schema: "tenant_a" },
      dataDir: "/var/lib/coherent",
      listen: "127.0.0.1:9000",
      feedListen: "127.0.0.1:7401",
      signingKey: { file: "/etc/coherent/file.key.pem" },
      trustedKeyFiles: ["/etc/coherent/old.pub.pem"],
      governance: { ...DEFAULT_GOVERNANCE, max_routes: 10, require_tls_kept: false },
      bodyLimit: 2 * 1024 ** 2,
      controller: { enabled: false, tickMs: 1000, webhooks: [] },
      logLevel: "warn",
    });
  });

  it("runs the controller in the process on the embedded database only, unless told otherwise", async () => {
    const secret = join(dir, "hook.secret");
    await writeFile(secret, "s3cret\n");
    const withHooks = join(dir, "hooks.yaml");
    await writeFile(
      withHooks,
      [
        "database_url: postgres://file@db/coherent",
        "controller:",
        "  tick: 250ms",
        "  webhooks:",
        "    - {fleet: edge, url: 'https://chat.example/hook/T0K3N', secret_file: " +
          JSON.stringify(secret) +
          "}",
        "    - {fleet: '*', url: 'http://pager.example/in'}",
      ].join("\n"),
    );
    expect((await resolveAuthoritySettings({ config: withHooks }, {})).controller).toEqual({
      enabled: false,
      tickMs: 250,
      webhooks: [
        { fleet: "edge", url: "https://chat.example/hook/T0K3N", secret: "s3cret" },
        { fleet: "*", url: "http://pager.example/in" },
      ],
    });
    const forced = await resolveAuthoritySettings(
      { config: withHooks, controllerTick: "2s" },
      { COHERENT_CONTROLLER: "on" },
    );
    expect(forced.controller).toMatchObject({ enabled: true, tickMs: 2000 });
    expect((await resolveAuthoritySettings({ controller: false }, {})).controller.enabled).toBe(false);
    await expect(resolveAuthoritySettings({}, { COHERENT_CONTROLLER: "maybe" })).rejects.toThrow(
      AuthorityConfigError,
    );
    await writeFile(withHooks, "controller: {webhooks: [{fleet: edge, url: 'ftp://x'}]}");
    await expect(resolveAuthoritySettings({ config: withHooks }, {})).rejects.toThrow(
      /controller\.webhooks\.0\.url/,
    );
  });

  it("lets COHERENT_* variables override the file, and flags override both", async () => {
    const env = {
      COHERENT_AUTHORITY_CONFIG: file,
      COHERENT_LISTEN: "127.0.0.1:9100",
      COHERENT_DATABASE_URL: "postgres://env@db/coherent",
      COHERENT_SIGNING_KEY: "-----BEGIN PRIVATE KEY-----\\nabc\\n-----END PRIVATE KEY-----",
      COHERENT_BODY_LIMIT: "1MB",
      COHERENT_LOG_LEVEL: "debug",
    };
    const fromEnv = await resolveAuthoritySettings({}, env);
    expect(fromEnv).toMatchObject({
      listen: "127.0.0.1:9100",
      database: { url: "postgres://env@db/coherent" },
      signingKey: { pem: env.COHERENT_SIGNING_KEY },
      bodyLimit: 1024 ** 2,
      logLevel: "debug",
    });
    const fromFlags = await resolveAuthoritySettings(
      {
        listen: ":9200",
        databaseUrl: "postgres://flag@db/coherent",
        signingKeyFile: "/flag.key.pem",
        logLevel: "error",
      },
      env,
    );
    expect(fromFlags).toMatchObject({
      listen: ":9200",
      database: { url: "postgres://flag@db/coherent" },
      signingKey: { file: "/flag.key.pem" },
      logLevel: "error",
    });
  });

  it("takes DATABASE_URL below COHERENT_DATABASE_URL, and a data dir only without any url", async () => {
    expect((await resolveAuthoritySettings({}, { DATABASE_URL: "postgres://plain@db/x" })).database).toEqual({
      url: "postgres://plain@db/x",
    });
    expect(
      (
        await resolveAuthoritySettings(
          {},
          { DATABASE_URL: "postgres://plain@db/x", COHERENT_DATABASE_URL: "postgres://ours@db/x" },
        )
      ).database,
    ).toEqual({ url: "postgres://ours@db/x" });
    expect((await resolveAuthoritySettings({ dataDir: "/data" }, {})).database).toEqual({
      dataDir: join("/data", "pglite"),
    });
  });

  it("takes the agent stale limit as a duration from the file, COHERENT_AGENT_STALE_AFTER over it", async () => {
    const stale = join(dir, "stale.yaml");
    await writeFile(stale, "agent_stale_after: 90s\n");
    expect(await resolveAuthoritySettings({ config: stale }, {})).toMatchObject({
      agentStaleAfterMs: 90_000,
    });
    expect(
      await resolveAuthoritySettings({ config: stale }, { COHERENT_AGENT_STALE_AFTER: "2m" }),
    ).toMatchObject({ agentStaleAfterMs: 120_000 });
    await expect(resolveAuthoritySettings({}, { COHERENT_AGENT_STALE_AFTER: "10ms" })).rejects.toThrow(
      /COHERENT_AGENT_STALE_AFTER/,
    );
  });

  it("refuses contradictory or invalid settings with a message that names them", async () => {
    await expect(
      resolveAuthoritySettings({}, { COHERENT_SIGNING_KEY: "pem", COHERENT_SIGNING_KEY_FILE: "/k" }),
    ).rejects.toThrow(/COHERENT_SIGNING_KEY.*COHERENT_SIGNING_KEY_FILE/);
    await expect(resolveAuthoritySettings({ listen: "localhost" }, {})).rejects.toThrow(AuthorityConfigError);
    await expect(resolveAuthoritySettings({}, { COHERENT_BODY_LIMIT: "lots" })).rejects.toThrow(
      /COHERENT_BODY_LIMIT/,
    );
    const bad = join(dir, "bad.yaml");
    await writeFile(bad, "governance: { max_route: 3 }\nbody_limit: 10\n");
    const error = await resolveAuthoritySettings({ config: bad }, {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AuthorityConfigError);
    expect((error as Error).message).toMatch(/governance: .*max_route/);
    expect((error as Error).message).toMatch(/body_limit: /);
    await expect(resolveAuthoritySettings({ config: join(dir, "missing.yaml") }, {})).rejects.toThrow(
      /cannot read the authority config/,
    );
  });

  it("splits listen addresses, an empty host meaning every address", () => {
    expect(parseListen("127.0.0.1:7400")).toEqual({ host: "127.0.0.1", port: 7400 });
    expect(parseListen(":0")).toEqual({ host: "0.0.0.0", port: 0 });
    expect(parseListen("[::1]:8443")).toEqual({ host: "::1", port: 8443 });
  });
});
