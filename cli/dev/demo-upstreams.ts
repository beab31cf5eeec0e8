/**
 * The demo's upstream services, in this process: demo-api v1 (the stable content), v2 (what
 * canary.yaml moves to) and a broken one answering every request with a 500 (broken.yaml's,
 * for the rollback in the tour). Each answers JSON naming its version, and says it in the
 * `x-demo-version` header, so a curl through an agent shows which bundle served it.
 */
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import { HOST } from "./ports.js";

export const UPSTREAM_VERSIONS = ["v1", "v2", "broken"] as const;

export interface DemoUpstreams {
  close(): Promise<void>;
}

export async function startDemoUpstreams(ports: readonly [number, number, number]): Promise<DemoUpstreams> {
  const servers: Server[] = [];
  try {
    for (const [i, version] of UPSTREAM_VERSIONS.entries()) {
      const server = createServer((req, res) => {
        const status = version === "broken" ? 500 : 200;
        const body =
          version === "broken"
            ? { service: "demo-api", version, error: "this upstream fails on purpose" }
            : { service: "demo-api", version, method: req.method, path: req.url };
        res.writeHead(status, { "content-type": "application/json", "x-demo-version": version });
        res.end(`${JSON.stringify(body)}\n`);
        // The request body, if any, is not read: drain it so the connection stays reusable.
        req.resume();
      });
      servers.push(server);
      server.listen(ports[i], HOST);
      await once(server, "listening");
    }
  } catch (error) {
    for (const server of servers) server.close();
    throw error;
  }
  return {
    close: async () => {
      await Promise.all(
        servers.map(
          (server) =>
            new Promise<void>((resolve) => {
              server.close(() => resolve());
              server.closeAllConnections();
            }),
        ),
      );
    },
  };
}
