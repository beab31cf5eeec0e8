import { createHmac } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { WebhookNotifier } from "./notifier.js";
import { command, newRollout, type Rollout, type Step } from "./state-machine.js";
import { plan } from "./test-support.js";

const logger = pino({ level: "silent" });
const servers: Server[] = [];

interface Received {
  readonly body: Record<string, unknown>;
  readonly signature: string | undefined;
  readonly raw: string;
}

/** A hook that answers each request with the next status of `statuses` (200 when they run out). */
async function hook(statuses: number[] = []): Promise<{ url: string; received: Received[] }> {
  const received: Received[] = [];
  const server = createServer(async (req: IncomingMessage, res) => {
    let raw = "";
    for await (const chunk of req) raw += chunk;
    const status = statuses.shift() ?? 200;
    if (status === 200) {
      const signature = req.headers["x-coherent-signature"];
      received.push({
        body: JSON.parse(raw),
        signature: typeof signature === "string" ? signature : undefined,
        raw,
      });
    }
    res.writeHead(status).end();
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook?token=secret-token`,
    received,
  };
}

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

const PLAN = plan({
  stages: [
    { name: "canary", fleet_percent: 5 },
    { name: "all", fleet_percent: 100 },
  ],
});

function transitions(fleet: string): Step[] {
  const start: Rollout = newRollout({
    id: "r1",
    fleet,
    candidateVersion: 3,
    stableVersion: 2,
    plan: PLAN,
    now: 1_000,
  });
  const promoted = command(start, { kind: "promote", full: false }, "ops@example", 2_000);
  const paused = command(promoted.rollout, { kind: "pause" }, "ops@example", 3_000);
  const aborted = command(paused.rollout, { kind: "abort" }, "ops@example", 4_000);
  return [promoted, paused, aborted];
}

async function until(ok: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe("WebhookNotifier", () => {
  it("posts every transition in order, retrying failures, signed with the hook's secret", async () => {
    const target = await hook([503, 500]);
    const notifier = new WebhookNotifier({
      hooks: [{ fleet: "edge", url: target.url, secret: "s3cret" }],
      logger,
      backoff: { baseMs: 5, capMs: 20 },
    });
    for (const step of transitions("edge"))
      notifier.notify(step.rollout, step.transition as NonNullable<Step["transition"]>);
    await until(() => target.received.length === 3);
    await notifier.flush(1_000);
    expect(target.received.map((r) => (r.body.transition as { to: string }).to)).toEqual([
      "running",
      "paused",
      "aborted",
    ]);
    const first = target.received[0] as Received;
    expect(first.body).toMatchObject({
      event: "rollout.transition",
      rollout: { id: "r1", fleet: "edge", candidate_version: 3, stage_name: "canary", fleet_percent: 5 },
      transition: {
        from: "pending",
        to: "running",
        reason: { kind: "command", command: "promote", actor: "ops@example" },
      },
    });
    expect(first.body.text).toBe("edge v3: pending → running (stage canary, 5%): promote by ops@example");
    expect(first.signature).toBe(`sha256=${createHmac("sha256", "s3cret").update(first.raw).digest("hex")}`);
    expect(notifier.counters).toEqual({ sent: 3, failed: 0, dropped: 0 });
  });

  it("sends only to hooks of the rollout's fleet or of every fleet", async () => {
    const edge = await hook();
    const other = await hook();
    const all = await hook();
    const notifier = new WebhookNotifier({
      hooks: [
        { fleet: "edge", url: edge.url },
        { fleet: "internal", url: other.url },
        { fleet: "*", url: all.url },
      ],
      logger,
    });
    const [step] = transitions("edge");
    notifier.notify(step?.rollout as Rollout, step?.transition as NonNullable<Step["transition"]>);
    await until(() => edge.received.length === 1 && all.received.length === 1);
    await notifier.flush(1_000);
    expect(other.received).toEqual([]);
    expect(edge.received[0]?.signature).toBeUndefined();
  });

  it("never blocks the caller on a dead hook, gives up after its attempts, and logs no token", async () => {
    const lines: string[] = [];
    const capture = pino({ level: "warn" }, { write: (line: string) => lines.push(line) });
    const notifier = new WebhookNotifier({
      hooks: [{ fleet: "*", url: "http://127.0.0.1:9/hook?token=secret-token" }],
      logger: capture,
      maxAttempts: 3,
      backoff: { baseMs: 5, capMs: 10 },
    });
    const started = performance.now();
    for (const step of transitions("edge"))
      notifier.notify(step.rollout, step.transition as NonNullable<Step["transition"]>);
    expect(performance.now() - started).toBeLessThan(50);
    await until(() => notifier.counters.failed === 3);
    expect(lines.length).toBe(3);
    expect(lines.join("")).not.toContain("secret-token");
    expect(JSON.parse(lines[0] as string)).toMatchObject({ hook: "http://127.0.0.1:9", attempts: 3 });
  });

  it("drops the oldest notices when a hook's queue is full", async () => {
    const target = await hook();
    const notifier = new WebhookNotifier({ hooks: [{ fleet: "*", url: target.url }], logger, maxQueue: 1 });
    const steps = transitions("edge");
    // The first goes out at once; of the two queued behind it, only the newest is kept.
    for (const step of steps)
      notifier.notify(step.rollout, step.transition as NonNullable<Step["transition"]>);
    await until(() => target.received.length === 2);
    await notifier.flush(1_000);
    expect(target.received.map((r) => (r.body.transition as { to: string }).to)).toEqual([
      "running",
      "aborted",
    ]);
    expect(notifier.counters.dropped).toBe(1);
  });
});
