/**
 * Real child processes for the end-to-end, security and fault suites: each one's stdout and
 * stderr kept line by line (JSON parsed where it is JSON), bounded waits for a line, and a
 * stop that never hangs. Every child is registered until it exits and killed with SIGKILL
 * when the test process exits, so a failed or timed-out suite leaves nothing running.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";

export const ROOT = join(import.meta.dirname, "..", "..", "..");

const running = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

export type LogLine = Record<string, unknown>;

export interface LoggedProcess {
  readonly name: string;
  readonly child: ChildProcess;
  /** Every line so far, stdout and stderr interleaved; a non-JSON line is `{raw}`. */
  readonly lines: LogLine[];
  /** The exit code, or the signal's name; undefined while it runs. */
  readonly exit: number | string | undefined;
  /** Its last `count` lines (15 by default), one JSON text each: what a failure message shows. */
  tail(count?: number): string;
  /** The first line (already seen or to come) matching; rejects after `timeoutMs` or at exit. */
  waitFor(predicate: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Sends `signal` and waits for the exit; SIGKILL after `graceMs`. Idempotent. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
}

export interface SpawnOptions {
  /** Shown in errors and timeouts. */
  readonly name: string;
  /** A TypeScript entry point under the repository root, run through tsx as the existing e2e test does. */
  readonly script: string;
  readonly args: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
}

const DEFAULT_WAIT_MS = 10_000;

/** This process's environment without the developer's Coherent settings, which would change what a child does. */
export function inheritedEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && !name.startsWith("COHERENT_") && name !== "DATABASE_URL") env[name] = value;
  }
  return env;
}

export function spawnLogged(options: SpawnOptions): LoggedProcess {
  const child = spawn(process.execPath, ["--import", "tsx", join(ROOT, options.script), ...options.args], {
    cwd: ROOT,
    env: { ...inheritedEnv(), ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  running.add(child);
  const lines: LogLine[] = [];
  const waiters = new Set<() => void>();
  let exit: number | string | undefined;
  const exited = once(child, "exit").then(([code, signal]) => {
    exit = (code as number | null) ?? (signal as string);
    running.delete(child);
    for (const wake of waiters) wake();
  });
  const record = (text: string): void => {
    let line: LogLine;
    try {
      const parsed: unknown = JSON.parse(text);
      line = typeof parsed === "object" && parsed !== null ? (parsed as LogLine) : { raw: text };
    } catch {
      line = { raw: text };
    }
    lines.push(line);
    for (const wake of waiters) wake();
  };
  createInterface({ input: child.stdout! }).on("line", record);
  createInterface({ input: child.stderr! }).on("line", record);

  const tail = (count = 15): string =>
    lines
      .slice(-count)
      .map((l) => JSON.stringify(l))
      .join("\n");

  const waitFor: LoggedProcess["waitFor"] = (predicate, timeoutMs = DEFAULT_WAIT_MS) =>
    new Promise((resolve, reject) => {
      const finish = (error: Error | undefined, line?: LogLine): void => {
        waiters.delete(check);
        clearTimeout(timer);
        if (error) reject(error);
        else resolve(line as LogLine);
      };
      const check = (): void => {
        const found = lines.find(predicate);
        if (found) finish(undefined, found);
        else if (exit !== undefined)
          finish(new Error(`${options.name} exited (${exit}) before the line came; last lines:\n${tail()}`));
      };
      const timer = setTimeout(
        () =>
          finish(new Error(`${options.name}: no such line within ${timeoutMs} ms; last lines:\n${tail()}`)),
        timeoutMs,
      );
      waiters.add(check);
      check();
    });

  let stopping: Promise<void> | undefined;
  const stop: LoggedProcess["stop"] = (signal = "SIGTERM", graceMs = 5_000) => {
    stopping ??= (async () => {
      if (exit === undefined) child.kill(signal);
      const killed = await Promise.race([exited.then(() => false), sleep(graceMs).then(() => true)]);
      if (killed) {
        child.kill("SIGKILL");
        await exited;
      }
    })();
    return stopping;
  };

  return {
    name: options.name,
    child,
    lines,
    get exit() {
      return exit;
    },
    tail,
    waitFor,
    stop,
  };
}

/** Stops every process given, at once; for afterAll. */
export async function stopAll(processes: Iterable<LoggedProcess | undefined>): Promise<void> {
  await Promise.all([...processes].map((p) => p?.stop("SIGKILL")));
}

/**
 * Polls `probe` until it returns something other than undefined; rejects after `timeoutMs`
 * with the last error or value seen, so a failure says what was there instead.
 */
export async function waitUntil<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = DEFAULT_WAIT_MS,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() >= deadline) {
      const detail = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last === undefined ? "" : `: ${detail}`}`,
      );
    }
    await sleep(intervalMs);
  }
}
