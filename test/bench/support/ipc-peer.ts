/**
 * A forked child spoken to over IPC, request then reply: the child answers every command with
 * exactly one message, in order, so replies are matched to requests by position.
 */
import { type ChildProcess, fork } from "node:child_process";

export class IpcPeer<Command, Reply> {
  readonly child: ChildProcess;
  readonly #waiters: Array<{ resolve: (reply: Reply) => void; reject: (error: Error) => void }> = [];
  readonly exited: Promise<number | null>;

  /** Forks `module` (TypeScript, run through tsx) with `execArgv` added to node's. */
  constructor(module: string, execArgv: readonly string[] = []) {
    this.child = fork(module, [], {
      execArgv: ["--import", "tsx", ...execArgv],
      // Structured clone: Buffers (bundles) cross as bytes, not as JSON arrays of numbers.
      serialization: "advanced",
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    this.child.on("message", (message: Reply) => this.#waiters.shift()?.resolve(message));
    this.exited = new Promise((resolve) =>
      this.child.on("exit", (code) => {
        for (const waiter of this.#waiters.splice(0)) waiter.reject(new Error(`${module} exited (${code})`));
        resolve(code);
      }),
    );
  }

  request(command: Command, timeoutMs = 120_000): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no reply to ${JSON.stringify(command).slice(0, 80)}`)),
        timeoutMs,
      );
      this.#waiters.push({
        resolve: (reply) => {
          clearTimeout(timer);
          resolve(reply);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      this.child.send(command as object);
    });
  }

  /** Waits up to `graceMs` for the child to exit by itself (a profile is being written), then kills it. */
  async stop(graceMs = 0): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.exited, new Promise((resolve) => (timer = setTimeout(resolve, graceMs)))]);
    clearTimeout(timer);
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill();
    await this.exited;
  }
}
