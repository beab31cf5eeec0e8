/**
 * The demo fleet in the authority, made through its API as an operator would: the fleet, its
 * default rollout plan (plan.yaml) and its first bundle (stable.yaml), which becomes the
 * fleet's stable version at once. Each step is done only when missing, so a restart — or a
 * start interrupted half-way — submits nothing twice.
 */
import { readFile } from "node:fs/promises";
import { CliError } from "../commands/run.js";

export const DEMO_FLEET = "demo";

export interface DemoFleetResult {
  /** The fleet's stable version once the demo is in place. */
  readonly stableVersion: number;
  /** Whether this start submitted the first bundle. */
  readonly submitted: boolean;
}

export async function ensureDemoFleet(options: {
  readonly server: string;
  readonly token: string;
  readonly stableFile: string;
  readonly plan: unknown;
}): Promise<DemoFleetResult> {
  const call = apiCaller(options.server, options.token);
  const fleet = await call("GET", `/fleets/${DEMO_FLEET}`);
  if (fleet.status === 404) {
    await call("POST", "/fleets", { name: DEMO_FLEET, description: "the demo fleet of `coherent dev`" }, 201);
  }
  const plan = await call("GET", `/fleets/${DEMO_FLEET}/plan`, undefined, 200);
  if (plan.body.source !== "fleet") {
    await call("PUT", `/fleets/${DEMO_FLEET}/plan`, { plan: options.plan }, 200);
  }
  const bundles = await call("GET", `/fleets/${DEMO_FLEET}/bundles?limit=1`, undefined, 200);
  let submitted = false;
  if ((bundles.body.bundles as unknown[]).length === 0) {
    const yaml = await readFile(options.stableFile, "utf8");
    await call(
      "POST",
      `/fleets/${DEMO_FLEET}/bundles`,
      { config_text: yaml, message: "the demo's first bundle, submitted by coherent dev" },
      201,
    );
    submitted = true;
  }
  const state = await call("GET", `/fleets/${DEMO_FLEET}/state`, undefined, 200);
  return { stableVersion: Number(state.body.stable_version), submitted };
}

type Caller = (
  method: string,
  path: string,
  body?: unknown,
  expected?: number,
) => Promise<{ status: number; body: Record<string, unknown> }>;

function apiCaller(server: string, token: string): Caller {
  return async (method, path, body, expected) => {
    const response = await fetch(`${server}/api/v1${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(30_000),
    });
    const json = (await response.json().catch(() => ({}))) as Record<string, unknown>;
    if (expected !== undefined && response.status !== expected) {
      throw new CliError(
        `setting up the demo fleet: ${method} ${path} answered ${response.status} ${JSON.stringify(json)}`,
      );
    }
    return { status: response.status, body: json };
  };
}
