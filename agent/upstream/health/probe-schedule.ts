/**
 * When active health probes run. Every endpoint has its own schedule, and both the first
 * probe and each interval are random, so thousands of agents started together (a fleet
 * restart, a config pushed everywhere at once) do not probe an upstream in lockstep.
 * `random` is a draw from [0, 1), as Math.random gives.
 */

/** The delay before an endpoint's first probe: anywhere within the first interval. */
export function firstProbeDelay(intervalMs: number, random: number): number {
  return random * intervalMs;
}

/** The delay from one probe to the next: interval × (1 ± jitter/100), uniformly. */
export function nextProbeDelay(intervalMs: number, jitterPercent: number, random: number): number {
  return intervalMs * (1 + ((2 * random - 1) * jitterPercent) / 100);
}
