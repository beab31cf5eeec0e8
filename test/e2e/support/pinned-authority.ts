/**
 * `coherent authority` on ports chosen once, before its first start, so that a restart
 * (after a SIGKILL) comes back at the same API URL and feed address, as a deployed authority
 * does behind its fixed address: distributors keep dialling what they were given.
 */
import { type AuthorityDatabase, type AuthorityProcess, databaseArgs } from "./coherent.js";
import { freePort } from "./free-port.js";
import { spawnLogged } from "./processes.js";

export interface PinnedAuthority {
  readonly url: string;
  readonly feed: string;
  /** The process running now; a new one after each start(). */
  readonly current: AuthorityProcess | undefined;
  /** Starts it at the pinned addresses; resolves once it logged that it is up. */
  start(): Promise<AuthorityProcess>;
}

export async function pinnedAuthority(options: {
  readonly database: AuthorityDatabase;
  readonly signingKeyFile: string;
  /** False: no rollout controller in it (`--no-controller`). */
  readonly controller?: boolean;
}): Promise<PinnedAuthority> {
  const [apiPort, feedPort] = [await freePort(), await freePort()];
  const listen = `127.0.0.1:${apiPort}`;
  const feed = `127.0.0.1:${feedPort}`;
  let current: AuthorityProcess | undefined;
  let starts = 0;
  return {
    url: `http://${listen}`,
    feed,
    get current() {
      return current;
    },
    async start() {
      starts++;
      const process = spawnLogged({
        name: `authority (start ${starts})`,
        script: "cli/coherent.ts",
        args: [
          ...databaseArgs(options.database),
          "authority",
          "--signing-key-file",
          options.signingKeyFile,
          "--listen",
          listen,
          "--feed-listen",
          feed,
          ...(options.controller === false ? ["--no-controller"] : []),
        ],
      });
      try {
        await process.waitFor((line) => line.event === "authority_started", 30_000);
      } catch (error) {
        await process.stop("SIGKILL");
        throw error;
      }
      current = { process, url: `http://${listen}`, feed };
      return current;
    },
  };
}
