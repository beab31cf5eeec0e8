/**
 * The distributor's two halves wired by startDistributor, against a real authority on each
 * dialect: bundles and fleet states come down into the disk cache and out to agents, agent
 * statuses and health go up into the store, the region is served from the cache while the
 * feed is down, TLS and mTLS on both hops, and the standard gRPC services.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { credentials } from "@grpc/grpc-js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  DIALECTS,
  dropSchema,
  sampleConfig,
  startTestAuthority,
  type TestAuthority,
  testDatabase,
} from "../../authority/api/test-harness.js";
import { AuthorityFeedServer } from "../../authority/feed/index.js";
import { AgentDistributionClient } from "../../proto/coherent/v1/distribution.js";
import { BundleErrorCode, generateSigningKey } from "../../services/bundle/index.js";
import { type DistributorHandle, startDistributor } from "../../services/distributor/main.js";
import { TestAgent } from "../../services/distributor/test-support.js";
import { checkHealth, listServices } from "../../services/net/test-support.js";
import type { ClientTlsFiles, ServerTlsFiles } from "../../services/net/tls.js";
import { createLogger } from "../../services/telemetry/logger.js";
import { createCertificateAuthority, writePemFiles } from "../support/certs.js";

const silent = createLogger({ name: "feed", level: "silent" });

async function eventually(check: () => boolean | Promise<boolean>, what: string, ms = 8_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** A port nothing listens on (bound, then released), to start a feed on later. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

for (const dialect of DIALECTS) {
  // Skipped only when COHERENT_TEST_NO_POSTGRES=1 (no Postgres on the machine): the PGlite run still covers it.
  describe.skipIf(dialect.skip)(`the distributor against the authority on ${dialect.name}`, () => {
    const database = testDatabase(dialect.name);
    let authority: TestAuthority;
    let dir: string;
    let keyFile: string;
    let operator: string;
    const cleanups: Array<() => Promise<void> | void> = [];
    let fleets = 0;

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), "coherent-feed-client-"));
      authority = await startTestAuthority({ database, settings: { feedListen: "127.0.0.1:0" } });
      keyFile = join(dir, "authority.pub.pem");
      await writeFile(keyFile, authority.publicPem);
      operator = await authority.token("operator");
    }, 120_000);

    afterEach(async () => {
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    });

    afterAll(async () => {
      await authority?.close();
      await dropSchema(database);
      await rm(dir, { recursive: true, force: true });
    });

    /** A new fleet (so tests do not see each other's) with one bundle: its stable version 1. */
    async function newFleet(): Promise<string> {
      const fleet = `fleet-${++fleets}`;
      expect((await authority.call("POST", "/api/v1/fleets", { body: { name: fleet } })).status).toBe(201);
      await submit(fleet, 1);
      return fleet;
    }

    async function submit(fleet: string, routes: number): Promise<number> {
      const res = await authority.call("POST", `/api/v1/fleets/${fleet}/bundles`, {
        token: operator,
        body: { config: sampleConfig(routes) },
      });
      expect(res.status).toBe(201);
      return (res.body as { version: number }).version;
    }

    async function distributor(
      feeds: string[],
      options: {
        cacheDir?: string;
        trustedKeys?: string[];
        tls?: ServerTlsFiles;
        authorityTls?: ClientTlsFiles;
        lines?: string[];
      } = {},
    ): Promise<DistributorHandle> {
      const lines = options.lines ?? [];
      const handle = await startDistributor(
        {
          id: "dist-1",
          region: "eu-west",
          authorities: feeds,
          listen: "127.0.0.1:0",
          httpListen: "127.0.0.1:0",
          cacheDir: options.cacheDir ?? (await mkdtemp(join(dir, "cache-"))),
          trustedKeys: options.trustedKeys ?? [keyFile],
          ...(options.tls ? { tls: options.tls } : {}),
          ...(options.authorityTls ? { authorityTls: options.authorityTls } : {}),
          logLevel: "info",
        },
        {
          logger: createLogger({
            name: "distributor",
            level: "info",
            destination: { write: (line) => lines.push(line) },
          }),
          server: { healthFlushMs: 100, heartbeatIntervalMs: 1_000 },
          client: { backoffBaseMs: 50, backoffCapMs: 200, heartbeatIntervalMs: 200, silenceMs: 3_000 },
        },
      );
      cleanups.push(() => handle.close());
      return handle;
    }

    function agentOf(handle: DistributorHandle): TestAgent {
      const { client, open } = TestAgent.connect(Number(handle.address.split(":")[1]));
      const agent = open();
      cleanups.push(() => {
        agent.call.cancel();
        client.close();
      });
      return agent;
    }

    /** A feed server of its own on the authority's store, so a test can stop and start it. */
    async function feedOn(address: string, tls?: ServerTlsFiles): Promise<AuthorityFeedServer> {
      const feed = new AuthorityFeedServer({
        store: authority.handle.store,
        logger: silent,
        heartbeatIntervalMs: 200,
        ...(tls ? { tls } : {}),
      });
      await feed.listen(address);
      cleanups.push(() => feed.close());
      return feed;
    }

    it("caches a submitted bundle, verified, and pushes it to an agent; a promote flows down as a fleet state", async () => {
      const fleet = await newFleet();
      const handle = await distributor([authority.handle.feedAddress ?? ""]);
      await eventually(() => handle.client.synced, "SyncComplete");
      expect(handle.cache.bundle(fleet, 1)?.version).toBe(1);
      expect(handle.cache.state(fleet)).toMatchObject({ stableVersion: 1, generation: 1 });

      const agent = agentOf(handle);
      agent.hello({ agentId: "a-1", fleet, region: "eu-west" });
      expect((await agent.next()).kind?.$case).toBe("welcome");
      expect(await agent.next()).toMatchObject({
        kind: { $case: "bundleUpdate", value: { fleet, version: 1 } },
      });

      expect(await submit(fleet, 2)).toBe(2);
      await eventually(() => handle.cache.bundle(fleet, 2) !== undefined, "bundle 2 cached");
      const promote = await authority.call("POST", `/api/v1/fleets/${fleet}/promote`, {
        body: { version: 2 },
      });
      expect(promote.status).toBe(200);
      expect(await agent.next(5_000)).toMatchObject({
        kind: { $case: "bundleUpdate", value: { version: 2 } },
      });
      expect(handle.cache.state(fleet)).toMatchObject({ stableVersion: 2, generation: 2 });
    });

    it("refuses and logs a bundle signed by a key it does not trust, and caches nothing of it", async () => {
      const fleet = await newFleet();
      const other = join(dir, "other.pub.pem");
      await writeFile(other, (await generateSigningKey()).publicPem);
      const lines: string[] = [];
      const handle = await distributor([authority.handle.feedAddress ?? ""], { trustedKeys: [other], lines });
      await eventually(() => handle.client.synced, "SyncComplete");
      expect(handle.cache.bundle(fleet, 1)).toBeUndefined();
      const refused = lines
        .map((line) => JSON.parse(line))
        .find((l) => l.event === "bundle_refused" && l.fleet === fleet);
      expect(refused).toMatchObject({ version: 1, code: BundleErrorCode.UnknownKid });
      const metrics = await (await fetch(`http://${handle.httpAddress}/metrics`)).text();
      expect(metrics).toMatch(/^coherent_distributor_bundles_refused_total [1-9]/m);
      expect(metrics).toMatch(/^coherent_distributor_authority_connected 1$/m);
    });

    it("sends every agent's status and the merged health up, and the store keeps them", async () => {
      const fleet = await newFleet();
      const handle = await distributor([authority.handle.feedAddress ?? ""]);
      const agent = agentOf(handle);
      agent.hello({ agentId: `${fleet}-agent`, fleet, region: "eu-west" });
      await agent.next();
      const push = await agent.next();
      const update = push.kind?.$case === "bundleUpdate" ? push.kind.value : undefined;
      agent.send({
        $case: "ack",
        value: { version: 1, nonce: update?.nonce ?? "", contentSha256: update?.contentSha256 ?? "" },
      });
      const now = Date.now();
      agent.send({
        $case: "healthReport",
        value: {
          windowStartUnixMs: now - 5_000,
          windowEndUnixMs: now,
          versions: [
            {
              version: 1,
              requests: 40,
              errors5xx: 2,
              latency: { boundsMs: [100], counts: [40, 0], sumMs: 400, count: 40 },
            },
          ],
        },
      });
      const store = authority.handle.store;
      await eventually(
        async () =>
          (await store.listAgents({ fleet })).some(
            (row) => row.id === `${fleet}-agent` && row.runningVersion === 1,
          ),
        "the agent in the store",
      );
      await eventually(
        async () => (await store.listHealthSamples({ fleet })).some((row) => row.requests === 40),
        "the health sample in the store",
      );
      const [sample] = await store.listHealthSamples({ fleet });
      expect(sample).toMatchObject({ fleet, version: 1, region: "eu-west", requests: 40, errors5xx: 2 });
    });

    it("serves a new agent from its cache while the feed is down, and resubscribes to the next address when one answers", async () => {
      const fleet = await newFleet();
      const firstPort = await freePort();
      const one = await feedOn(`127.0.0.1:${firstPort}`);
      const secondPort = await freePort();
      const handle = await distributor([`127.0.0.1:${firstPort}`, `127.0.0.1:${secondPort}`]);
      await eventually(() => handle.client.synced, "SyncComplete");
      expect(handle.client.connectedTo).toBe(`127.0.0.1:${firstPort}`);

      await one.close();
      await eventually(() => handle.client.connectedTo === undefined, "the stream to the stopped feed ends");
      const late = agentOf(handle);
      late.hello({ agentId: "late", fleet, region: "eu-west" });
      expect((await late.next()).kind?.$case).toBe("welcome");
      expect(await late.next()).toMatchObject({ kind: { $case: "bundleUpdate", value: { version: 1 } } });

      await feedOn(`127.0.0.1:${secondPort}`);
      await eventually(
        () => handle.client.connectedTo === `127.0.0.1:${secondPort}`,
        "subscribed to the second",
      );
      expect(await submit(fleet, 2)).toBe(2);
      await eventually(
        () => handle.cache.bundle(fleet, 2) !== undefined,
        "bundle 2 through the second feed",
        5_000,
      );
    });

    it("answers grpc.health.v1 and reflection on both servers, NOT_SERVING until there is something to serve", async () => {
      const feedAddress = authority.handle.feedAddress ?? "";
      expect(await checkHealth(feedAddress)).toBe("SERVING");
      expect(await checkHealth(feedAddress, "coherent.v1.AuthorityFeed")).toBe("SERVING");
      expect(await listServices(feedAddress)).toContain("coherent.v1.AuthorityFeed");

      const cold = await distributor([`127.0.0.1:${await freePort()}`]);
      expect(await checkHealth(cold.address)).toBe("NOT_SERVING");
      expect((await fetch(`http://${cold.httpAddress}/healthz`)).status).toBe(503);

      const warm = await distributor([feedAddress]);
      await eventually(() => warm.client.synced, "SyncComplete");
      expect(await checkHealth(warm.address, "coherent.v1.AgentDistribution")).toBe("SERVING");
      expect((await fetch(`http://${warm.httpAddress}/healthz`)).status).toBe(200);
      expect(await listServices(warm.address)).toEqual(
        expect.arrayContaining(["coherent.v1.AgentDistribution", "grpc.health.v1.Health"]),
      );

      // A restart on the warm cache is ready before any authority answers.
      const cacheDir = await mkdtemp(join(dir, "cache-"));
      const filled = await distributor([feedAddress], { cacheDir });
      await eventually(() => filled.client.synced, "SyncComplete");
      await filled.close();
      const restarted = await distributor([`127.0.0.1:${await freePort()}`], { cacheDir });
      expect(await checkHealth(restarted.address)).toBe("SERVING");
    });

    it("speaks TLS to agents and mTLS to the authority, and a distributor without a client certificate is refused", async () => {
      await newFleet();
      const ca = await createCertificateAuthority("coherent-test-ca");
      const server = await ca.issueServer({ names: ["127.0.0.1", "localhost"] });
      const client = await ca.issueClient({ commonName: "dist-1" });
      const caFile = (
        await writePemFiles(dir, `ca-${dialect.name}`, { certPem: ca.certPem, keyPem: ca.keyPem })
      ).certFile;
      const serverFiles = await writePemFiles(dir, `server-${dialect.name}`, server);
      const clientFiles = await writePemFiles(dir, `client-${dialect.name}`, client);
      const tls = { certFile: serverFiles.certFile, keyFile: serverFiles.keyFile, clientCaFile: caFile };
      const port = await freePort();
      await feedOn(`127.0.0.1:${port}`, tls);

      const lines: string[] = [];
      const refused = await distributor([`127.0.0.1:${port}`], { authorityTls: { caFile }, lines });
      await eventually(
        () => lines.some((line) => line.includes("authority_stream_failed")),
        "a refused stream",
      );
      expect(refused.client.synced).toBe(false);

      const handle = await distributor([`127.0.0.1:${port}`], {
        authorityTls: { caFile, certFile: clientFiles.certFile, keyFile: clientFiles.keyFile },
        tls: { certFile: serverFiles.certFile, keyFile: serverFiles.keyFile },
      });
      await eventually(() => handle.client.synced, "SyncComplete over mTLS");

      const agents = new AgentDistributionClient(
        handle.address,
        credentials.createSsl(Buffer.from(ca.certPem)),
      );
      const agent = new TestAgent(agents);
      cleanups.push(() => {
        agent.call.cancel();
        agents.close();
      });
      agent.hello({ agentId: "tls-agent", fleet: "none", region: "eu-west" });
      expect((await agent.next()).kind?.$case).toBe("welcome");
    });
  });
}
