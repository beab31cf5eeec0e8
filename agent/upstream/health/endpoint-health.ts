/**
 * What is known about one endpoint's health: the active checks' verdict, the request
 * outcomes, and any ejection. Plain fields, written by PoolHealth only; keyed by address
 * there, so it survives config swaps while the endpoint stays.
 *
 * Ejections end by time: availability compares `ejectedUntil` with the clock, so no timer is
 * needed to bring an endpoint back.
 */

export type EndpointState = "healthy" | "unhealthy" | "ejected";

export class EndpointHealth {
  /** Active checks' verdict; true until they say otherwise, so a new endpoint serves at once. */
  activeHealthy = true;
  /** Passing (or failing) active checks in a row; one of the two is always 0. */
  checkPasses = 0;
  checkFailures = 0;
  /** When the last active check finished (ms), 0 before the first. */
  lastCheckAt = 0;
  lastCheckDetail: string | undefined;

  /** Failed attempts in a row, reset by a success. */
  consecutiveFailures = 0;
  /** The same, counted by each ejection rule and reset by its own ejection too. */
  passiveFailures = 0;
  outlierFailures = 0;
  /** Attempts in the current outlier interval. */
  windowRequests = 0;
  windowFailures = 0;

  /** Ejections by passive health and by outlier detection, each with its cause. */
  passiveUntil = 0;
  passiveReason = "";
  outlierUntil = 0;
  outlierReason = "";
  /** The later of the two ends: availability is one comparison. */
  ejectedUntil = 0;
  /** Outlier ejections in a row: the next lasts one base time longer; decays while healthy. */
  ejections = 0;

  /** The state last told to the listener. */
  reported: EndpointState = "healthy";

  constructor(readonly address: string) {}

  isAvailable(now: number): boolean {
    return this.activeHealthy && now >= this.ejectedUntil;
  }

  state(now: number): EndpointState {
    if (!this.activeHealthy) return "unhealthy";
    return now < this.ejectedUntil ? "ejected" : "healthy";
  }

  /**
   * The outlier ejection count as of `now`: it drops by one for every interval that has
   * passed since the last outlier ejection ended, so an endpoint that stays well is forgiven.
   */
  ejectionsAt(now: number, intervalMs: number): number {
    if (this.ejections === 0 || now < this.outlierUntil) return this.ejections;
    return Math.max(0, this.ejections - Math.floor((now - this.outlierUntil) / intervalMs));
  }

  /** Forgets the active checks' verdict: called when the pool stops checking actively. */
  resetActive(): void {
    this.activeHealthy = true;
    this.checkPasses = 0;
    this.checkFailures = 0;
    this.lastCheckAt = 0;
    this.lastCheckDetail = undefined;
  }

  /** Why the ejection ending at `ejectedUntil` happened. */
  get ejectionReason(): string {
    return this.passiveUntil >= this.outlierUntil ? this.passiveReason : this.outlierReason;
  }

  ejectPassive(until: number, reason: string): void {
    this.passiveUntil = until;
    this.passiveReason = reason;
    this.ejectedUntil = Math.max(until, this.outlierUntil);
  }

  ejectOutlier(until: number, reason: string): void {
    this.outlierUntil = until;
    this.outlierReason = reason;
    this.ejectedUntil = Math.max(this.passiveUntil, until);
  }
}
