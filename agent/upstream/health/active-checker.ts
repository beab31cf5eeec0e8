/**
 * Active health checks of one pool: each endpoint is probed on its own jittered schedule and
 * every outcome is handed to `onResult`; turning outcomes into a healthy/unhealthy state (the
 * thresholds) is the pool's job. A probe still running when the next one is due is not
 * started twice: that round is skipped. Timers are unref'd, so checks never keep the process
 * alive, and `close` stops the timers and aborts the probes in flight.
 */
import { firstProbeDelay, nextProbeDelay } from "./probe-schedule.js";
import { type ActiveSettings, formatStatusRange } from "./settings.js";

/**
 * One probe of one endpoint: resolves to the HTTP status it answered, or rejects (connect
 * error, reset, timeout). It must settle within `timeoutMs`, rejecting with a "TimeoutError"
 * past it (as AbortSignal.timeout does), and stop when `signal` aborts.
 */
export type Probe = (timeoutMs: number, signal: AbortSignal) => Promise<number>;

export interface CheckResult {
  readonly ok: boolean;
  /** What happened, for the health API and logs: "status 503 (expected 200-399)". */
  readonly detail: string;
}

export type CheckListener = (address: string, result: CheckResult) => void;

export function classifyStatus(status: number, settings: ActiveSettings): CheckResult {
  const { min, max } = settings.expectedStatus;
  if (status >= min && status <= max) return { ok: true, detail: `status ${status}` };
  return { ok: false, detail: `status ${status} (expected ${formatStatusRange(settings.expectedStatus)})` };
}

export function classifyError(error: unknown, settings: ActiveSettings): CheckResult {
  if (error instanceof Error && error.name === "TimeoutError") {
    return { ok: false, detail: `timeout after ${settings.timeoutMs} ms` };
  }
  const code = error instanceof Error && "code" in error ? error.code : undefined;
  if (code === "ECONNREFUSED") return { ok: false, detail: "connection refused" };
  const message = error instanceof Error ? error.message : String(error);
  return { ok: false, detail: typeof code === "string" ? `${code}: ${message}` : message };
}

interface Target {
  probe: Probe;
  timer: NodeJS.Timeout | undefined;
  /** The probe in flight, if any. */
  running: AbortController | undefined;
}

export class ActiveChecker {
  #settings: ActiveSettings;
  readonly #targets = new Map<string, Target>();
  #closed = false;

  constructor(
    settings: ActiveSettings,
    private readonly onResult: CheckListener,
    private readonly random: () => number = Math.random,
  ) {
    this.#settings = settings;
  }

  get settings(): ActiveSettings {
    return this.#settings;
  }

  /**
   * New settings take effect at the next probe; a changed interval or jitter restarts every
   * schedule (from a random offset again), so a shorter interval does not wait out a long one.
   */
  set settings(settings: ActiveSettings) {
    const old = this.#settings;
    this.#settings = settings;
    if (old.intervalMs === settings.intervalMs && old.jitterPercent === settings.jitterPercent) return;
    for (const [address, target] of this.#targets) {
      clearTimeout(target.timer);
      this.#schedule(address, target, firstProbeDelay(settings.intervalMs, this.random()));
    }
  }

  /** Probes exactly these endpoints from now on: new ones start, missing ones stop. */
  sync(probes: ReadonlyMap<string, Probe>): void {
    if (this.#closed) return;
    for (const [address, target] of this.#targets) {
      if (!probes.has(address)) this.#stop(address, target);
    }
    for (const [address, probe] of probes) {
      const target = this.#targets.get(address);
      if (target) {
        target.probe = probe;
        continue;
      }
      const added: Target = { probe, timer: undefined, running: undefined };
      this.#targets.set(address, added);
      this.#schedule(address, added, firstProbeDelay(this.#settings.intervalMs, this.random()));
    }
  }

  /** Idempotent. */
  close(): void {
    this.#closed = true;
    for (const [address, target] of this.#targets) this.#stop(address, target);
  }

  #stop(address: string, target: Target): void {
    clearTimeout(target.timer);
    target.running?.abort(new Error(`health checks of ${address} stopped`));
    this.#targets.delete(address);
  }

  #schedule(address: string, target: Target, delayMs: number): void {
    target.timer = setTimeout(() => this.#due(address, target), delayMs);
    target.timer.unref();
  }

  #due(address: string, target: Target): void {
    const settings = this.#settings;
    this.#schedule(
      address,
      target,
      nextProbeDelay(settings.intervalMs, settings.jitterPercent, this.random()),
    );
    if (target.running === undefined) void this.#run(address, target, settings);
  }

  async #run(address: string, target: Target, settings: ActiveSettings): Promise<void> {
    const controller = new AbortController();
    target.running = controller;
    let result: CheckResult;
    try {
      result = classifyStatus(await target.probe(settings.timeoutMs, controller.signal), settings);
    } catch (error) {
      result = classifyError(error, settings);
    } finally {
      target.running = undefined;
    }
    // A probe stopped by `sync` or `close` says nothing about the endpoint.
    if (controller.signal.aborted || this.#targets.get(address) !== target) return;
    this.onResult(address, result);
  }
}
