/**
 * The control plane the scale scenarios push through, every piece a real process: `coherent
 * authority` on embedded PGlite (its rollout controller inside, as on that database by
 * default) and `coherent distributor`s in one region, each with a cache directory of its own.
 * Started by a scenario's beforeAll; `close` stops them all and removes the directory.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeKeyPair } from "../../../services/bundle/index.js";
import {
  type AuthorityProcess,
  api,
  createAdminToken,
  type DistributorProcess,
  startAuthorityProcess,
  startDistributorProcess,
} from "../../e2e/support/coherent.js";
import { stopAll } from "../../e2e/support/processes.js";

export const REGION = "eu-west";

export interface ControlPlane {
  readonly authority: AuthorityProcess;
  readonly distributors: readonly DistributorProcess[];
  readonly token: string;
  readonly fleet: string;
  /** POST /fleets/{fleet}/bundles with `config`; the version the authority gave it. */
  submit(config: Record<string, unknown>): Promise<number>;
  close(): Promise<void>;
}

export async function startControlPlane(options: {
  readonly fleet: string;
  readonly distributors: number;
  /** The distributors' `--health-flush`; their default (5 s) otherwise. */
  readonly healthFlush?: string;
}): Promise<ControlPlane> {
  const dir = await mkdtemp(join(tmpdir(), "coherent-scale-"));
  const database = { dataDir: join(dir, "pglite") };
  let authority: AuthorityProcess | undefined;
  const distributors: DistributorProcess[] = [];
  const close = async (): Promise<void> => {
    await stopAll([...distributors.map((d) => d.process), authority?.process]);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const keys = await writeKeyPair(join(dir, "keys"));
    // The embedded database belongs to one process at a time: the token before the authority.
    const token = await createAdminToken(database);
    authority = await startAuthorityProcess({ database, signingKeyFile: keys.privateFile });
    const created = await api(authority.url, token, "POST", "/fleets", { name: options.fleet });
    if (created.status !== 201) throw new Error(`POST /fleets answered ${created.status}`);
    const feed = authority.feed;
    distributors.push(
      ...(await Promise.all(
        Array.from({ length: options.distributors }, (_, i) =>
          startDistributorProcess({
            id: `d${i + 1}`,
            region: REGION,
            authorities: [feed],
            cacheDir: join(dir, `d${i + 1}`),
            trustedKeys: [keys.publicFile],
            ...(options.healthFlush === undefined ? {} : { healthFlush: options.healthFlush }),
          }),
        ),
      )),
    );
    const url = authority.url;
    return {
      authority,
      distributors,
      token,
      fleet: options.fleet,
      async submit(config) {
        const response = await api(url, token, "POST", `/fleets/${options.fleet}/bundles`, { config });
        if (response.status !== 201)
          throw new Error(`bundle submit answered ${response.status}: ${JSON.stringify(response.body)}`);
        return Number(response.body.version);
      },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/** A config of `routes` routes to one pool, each with the timeout the authority's governance requires. */
export function configOf(routes: number, tag: string): Record<string, unknown> {
  return {
    listeners: [{ address: "127.0.0.1:0" }],
    routes: Array.from({ length: routes }, (_, r) => ({
      id: `route-${r}-${tag}`,
      host: `svc-${r % 40}.example.com`,
      path_prefix: `/api/v1/resource-${r}`,
      pool: "pool-0",
      policy: { timeout: "5s" },
    })),
    pools: [{ id: "pool-0", endpoints: [{ address: "10.0.0.1:8000" }] }],
  };
}

/** `GET /fleets/{fleet}/status`'s agents block. */
export interface FleetAgents {
  readonly total: number;
  readonly stale: number;
  readonly by_version: Array<{
    version: number | null;
    running: number;
    acked: number;
    pending: number;
    nacked: number;
    stale: number;
  }>;
}

export async function fleetAgents(plane: ControlPlane): Promise<FleetAgents> {
  const response = await api<{ agents: FleetAgents }>(
    plane.authority.url,
    plane.token,
    "GET",
    `/fleets/${plane.fleet}/status`,
  );
  if (response.status !== 200) throw new Error(`fleet status answered ${response.status}`);
  return response.body.agents;
}
