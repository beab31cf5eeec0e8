/**
 * A Postgres server of the test's own, for faults that take the server down (a restart): the
 * machine's shared Postgres serves other suites at the same time and must never be touched.
 * initdb and pg_ctl come from /usr/lib/postgresql/<major>/bin; the server runs as the
 * `postgres` OS user (Postgres refuses root) on a free loopback port, with its data, socket
 * and log under a directory of the test's. fsync is off: a restart stops the server cleanly
 * (`-m fast`), and nothing outlives the test.
 */
import { execFile, execFileSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { chmod, chown, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort } from "./free-port.js";

const run = promisify(execFile);
const OS_USER = "postgres";

/** The bin directory of the newest installed Postgres with initdb and pg_ctl; undefined when none is. */
export function postgresBinDir(): string | undefined {
  const root = "/usr/lib/postgresql";
  if (!existsSync(root) || !existsSync("/usr/sbin/runuser") || osUser() === undefined) return undefined;
  const majors = readdirSync(root)
    .filter((name) => /^\d+$/.test(name))
    .sort((a, b) => Number(b) - Number(a));
  for (const major of majors) {
    const bin = join(root, major, "bin");
    if (existsSync(join(bin, "initdb")) && existsSync(join(bin, "pg_ctl"))) return bin;
  }
  return undefined;
}

export interface PrivatePostgres {
  /** postgres://postgres@127.0.0.1:PORT/postgres, trust authentication. */
  readonly url: string;
  readonly port: number;
  /** `pg_ctl restart -m fast`: every connection is closed, the server is back when it resolves. */
  restart(): Promise<void>;
  /** Stops it at once (`-m immediate`); idempotent, safe after a failed start. */
  stop(): Promise<void>;
}

/** initdb in `dir` (which must not exist yet) and start the server; `bin` from postgresBinDir(). */
export async function startPrivatePostgres(bin: string, dir: string): Promise<PrivatePostgres> {
  await mkdir(dir, { recursive: true });
  // The OS user needs to reach its directory through the test's temporary one.
  await chmod(join(dir, ".."), 0o755);
  const user = osUser();
  if (user === undefined) throw new Error(`no OS user "${OS_USER}" to run Postgres as`);
  await chown(dir, user.uid, user.gid);
  const data = join(dir, "data");
  const port = await freePort();
  const asPostgres = (tool: string, args: readonly string[]) =>
    run("/usr/sbin/runuser", ["-u", OS_USER, "--", join(bin, tool), ...args], { timeout: 60_000 });
  await asPostgres("initdb", ["-D", data, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"]);
  const ctl = (args: readonly string[]) =>
    asPostgres("pg_ctl", [
      "-D",
      data,
      "-l",
      join(dir, "server.log"),
      "-w",
      "-t",
      "30",
      "-o",
      `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60`,
      ...args,
    ]);
  let stopped = false;
  const stopNow = () => {
    if (stopped) return;
    stopped = true;
    try {
      execFileSync(
        "/usr/sbin/runuser",
        ["-u", OS_USER, "--", join(bin, "pg_ctl"), "-D", data, "-m", "immediate", "stop"],
        {
          stdio: "ignore",
          timeout: 30_000,
        },
      );
    } catch {
      // Not running (a failed start, or already stopped): nothing to stop.
    }
  };
  // A test process that dies without its afterAll must not leave a server behind.
  process.once("exit", stopNow);
  try {
    await ctl(["start"]);
  } catch (error) {
    stopNow();
    throw error;
  }
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    restart: async () => {
      await ctl(["-m", "fast", "restart"]);
    },
    stop: async () => {
      stopNow();
    },
  };
}

/** The OS user's ids; undefined when there is no such user. */
function osUser(): { uid: number; gid: number } | undefined {
  try {
    const id = (flag: string) =>
      Number(execFileSync("id", [flag, OS_USER], { stdio: "pipe" }).toString().trim());
    return { uid: id("-u"), gid: id("-g") };
  } catch {
    return undefined;
  }
}
