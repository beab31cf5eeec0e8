/** The rollout controller's refusals: a closed set of codes the API maps to statuses. */
export const RolloutErrorCode = {
  /** The plan is not a valid `rollout:` block; the errors carry paths. */
  InvalidPlan: "invalid_plan",
  /** The command does not apply in the rollout's phase (resume a running rollout, …). */
  InvalidTransition: "invalid_transition",
  /** Two latency histograms with different bucket bounds cannot be added up. */
  LatencyBoundsDiffer: "latency_bounds_differ",
} as const;

export type RolloutErrorCode = (typeof RolloutErrorCode)[keyof typeof RolloutErrorCode];

export class RolloutError extends Error {
  override readonly name = "RolloutError";

  constructor(
    readonly code: RolloutErrorCode,
    message: string,
  ) {
    super(message);
  }
}
