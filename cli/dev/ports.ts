/**
 * Where `coherent dev` listens: fixed ports counted from one base port, all on 127.0.0.1, so
 * the printed URLs and the demo configs stay the same from run to run. Checked before anything
 * starts, so a taken port is named instead of surfacing as some component's bind error.
 */
import { createServer } from "node:net";
import { CliError } from "../commands/run.js";

export const DEFAULT_BASE_PORT = 7400;
export const HOST = "127.0.0.1";

export interface DevPorts {
  readonly authority: number;
  readonly feed: number;
  readonly distributor: number;
  /** demo-api v1, v2 and the broken one, in that order; the demo configs name these. */
  readonly upstreams: readonly [number, number, number];
  /** Each agent's admin API, agent 1 first. */
  readonly agentAdmin: readonly number[];
}

export function devPorts(base: number, agents: number): DevPorts {
  return {
    authority: base,
    feed: base + 1,
    distributor: base + 2,
    upstreams: [base + 11, base + 12, base + 13],
    agentAdmin: Array.from({ length: agents }, (_, i) => base + 21 + i),
  };
}

/** Every port with what it is for, as the error names it. */
function described(ports: DevPorts): Array<[number, string]> {
  return [
    [ports.authority, "authority API"],
    [ports.feed, "authority feed"],
    [ports.distributor, "distributor"],
    [ports.upstreams[0], "demo-api v1"],
    [ports.upstreams[1], "demo-api v2"],
    [ports.upstreams[2], "demo-api broken"],
    ...ports.agentAdmin.map((port, i): [number, string] => [port, `agent demo-${i + 1} admin API`]),
  ];
}

/** Throws a CliError naming every port some other process holds. */
export async function checkPortsFree(ports: DevPorts): Promise<void> {
  const taken: string[] = [];
  for (const [port, what] of described(ports)) {
    const error = await tryListen(port);
    if (error) taken.push(`${port} (${what}): ${error}`);
  }
  if (taken.length === 0) return;
  throw new CliError(
    `port${taken.length > 1 ? "s" : ""} in use on ${HOST}: ${taken.join("; ")}. ` +
      "Stop what holds them (another `npm start`?) or move every port with --base-port.",
  );
}

function tryListen(port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", (error: NodeJS.ErrnoException) =>
      resolve(error.code === "EADDRINUSE" ? "taken" : error.message),
    );
    server.listen({ port, host: HOST, exclusive: true }, () => server.close(() => resolve(undefined)));
  });
}
