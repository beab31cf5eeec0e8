import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createEventParser, followEvents, type ServerEvent } from "./event-stream.js";

describe("createEventParser", () => {
  it("gives each event once its blank line arrives, across chunks, skipping comments", () => {
    const seen: ServerEvent[] = [];
    const parse = createEventParser((event) => seen.push(event));
    parse("retry: 3000\n: connected\n\nevent: rollout\nda");
    expect(seen).toEqual([]);
    parse('ta: {"id":"r-1"}\n');
    expect(seen).toEqual([]);
    parse("\n: heartbeat\n\ndata: a\ndata: b\r\n\r\n");
    expect(seen).toEqual([
      { event: "rollout", data: '{"id":"r-1"}' },
      { event: "message", data: "a\nb" },
    ]);
  });
});

describe("followEvents", () => {
  const closers: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const close of closers.splice(0)) await close();
  });

  /** A real HTTP server that answers /api/v1/events as a stream and hands out its responses. */
  async function eventServer() {
    const streams: ServerResponse[] = [];
    const requests: Array<{ url?: string; authorization?: string }> = [];
    const server = createServer((req, res) => {
      requests.push({ url: req.url, authorization: req.headers.authorization });
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write(": connected\n\n");
      streams.push(res);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    closers.push(async () => {
      for (const res of streams) res.destroy();
      await new Promise((resolve) => server.close(resolve));
    });
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, streams, requests };
  }

  const until = async (condition: () => boolean) => {
    const deadline = Date.now() + 5_000;
    while (!condition()) {
      if (Date.now() > deadline) throw new Error("timed out");
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };

  it("reads events from the stream with the token, until stopped", async () => {
    const server = await eventServer();
    const seen: ServerEvent[] = [];
    const stop = new AbortController();
    const following = followEvents({ server: server.url, token: "t0k" }, (e) => seen.push(e), stop.signal);
    await until(() => server.streams.length === 1);
    expect(server.requests).toEqual([{ url: "/api/v1/events", authorization: "Bearer t0k" }]);
    server.streams[0]?.write('event: rollout\ndata: {"id":"r-1"}\n\n');
    await until(() => seen.length === 1);
    expect(seen).toEqual([{ event: "rollout", data: '{"id":"r-1"}' }]);
    stop.abort();
    await following;
  });

  it("never throws when the authority cannot be reached, and ends when stopped", async () => {
    const stop = new AbortController();
    const following = followEvents({ server: "http://127.0.0.1:1" }, () => undefined, stop.signal);
    await new Promise((resolve) => setTimeout(resolve, 50));
    stop.abort();
    await expect(following).resolves.toBeUndefined();
  });
});
