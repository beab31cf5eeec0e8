/**
 * The dev data directory (.coherent/dev by default): the embedded database, the signing key,
 * the distributor's cache, each agent's last good bundle, the logs, and dev.json with the
 * tokens made on first start, so a restart reuses all of it. A marker file written when the
 * directory is made is what lets --reset delete it: never a directory `coherent dev` did not make.
 */
import { randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { CliError } from "../commands/run.js";

const MARKER = ".coherent-dev";
const STATE_FILE = "dev.json";
/** The pid of the `coherent dev` using the directory: two on one embedded database would corrupt it. */
const PID_FILE = "dev.pid";

export interface DevState {
  /** The admin API token for the authority; empty until the authority made one. */
  readonly token: string;
  /** The agents' admin API token (PROXY_ADMIN_TOKEN). */
  readonly agentAdminToken: string;
}

export interface DevDirectory {
  readonly dir: string;
  readonly logDir: string;
  /** The coherentctl config file (`{server, token}`) the printed commands use. */
  readonly ctlConfig: string;
  readonly state: DevState;
  /** Whether this run made the directory (first start, or after --reset). */
  readonly fresh: boolean;
  save(state: DevState): Promise<void>;
  writeCtlConfig(server: string, token: string): Promise<void>;
  /** Gives the directory up for another `coherent dev`. */
  release(): Promise<void>;
}

/** Opens (or makes) `dir`; with `reset`, deletes it first when it is a dev directory. */
export async function openDevDirectory(dir: string, reset: boolean): Promise<DevDirectory> {
  const entries = await readdir(dir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") return undefined;
    throw new CliError(`cannot read the data dir ${dir}: ${error.message}`);
  });
  const ours = entries?.includes(MARKER) ?? false;
  if (ours) await refuseWhenInUse(dir);
  if (entries !== undefined && entries.length > 0 && !ours) {
    throw new CliError(`${dir} is not empty and was not made by \`coherent dev\`: name another --data-dir`);
  }
  if (reset && ours) await rm(dir, { recursive: true, force: true });
  const fresh = entries === undefined || entries.length === 0 || reset;
  await mkdir(join(dir, "logs"), { recursive: true });
  await writeFile(
    join(dir, MARKER),
    "made by `coherent dev`; `coherent dev --reset` deletes this directory\n",
  );
  const state = fresh ? undefined : await readState(dir);
  let current: DevState = state ?? { token: "", agentAdminToken: randomBytes(24).toString("base64url") };
  if (state === undefined) await writeState(dir, current);
  const ctlConfig = join(dir, "coherentctl.yaml");
  return {
    dir,
    logDir: join(dir, "logs"),
    ctlConfig,
    get state() {
      return current;
    },
    fresh,
    async save(next) {
      current = next;
      await writeState(dir, next);
    },
    async release() {
      await rm(join(dir, PID_FILE), { force: true });
    },
    async writeCtlConfig(server, token) {
      // JSON is YAML; the file holds a token, so only its owner reads it.
      await writeFile(ctlConfig, `${JSON.stringify({ server, token })}\n`, { mode: 0o600 });
    },
  };
}

async function refuseWhenInUse(dir: string): Promise<void> {
  const pid = Number((await readFile(join(dir, PID_FILE), "utf8").catch(() => "")).trim());
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return;
  try {
    process.kill(pid, 0);
  } catch {
    // No such process: the last one ended without releasing the directory.
    return;
  }
  throw new CliError(
    `another \`coherent dev\` (pid ${pid}) uses ${dir}: stop it first, or name another --data-dir`,
  );
}

async function readState(dir: string): Promise<DevState | undefined> {
  try {
    const data = JSON.parse(await readFile(join(dir, STATE_FILE), "utf8")) as Partial<DevState>;
    if (typeof data.token !== "string" || typeof data.agentAdminToken !== "string") return undefined;
    return { token: data.token, agentAdminToken: data.agentAdminToken };
  } catch {
    // Missing or unreadable: a start interrupted before it wrote one; it is made anew.
    return undefined;
  }
}

function writeState(dir: string, state: DevState): Promise<void> {
  return writeFile(join(dir, STATE_FILE), `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
}
