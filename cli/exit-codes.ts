/** Exit codes of coherentctl, one meaning each, so scripts can branch on them. */
export const ExitCode = {
  Ok: 0,
  /** The command could not do its work: unreadable file, server unreachable, refused. */
  Failure: 1,
  /** The command line itself is wrong: unknown command or option, missing argument. */
  Usage: 2,
  /**
   * Checked and found wrong: a config (or bundle) that is not valid, or an audit chain that
   * does not verify — so a scheduled check tells tampering from an unreachable server.
   */
  Invalid: 3,
  /**
   * `rollout status`: the rollout ended without its candidate, rolled back or aborted, so a
   * script waiting on `rollout status --watch` tells that from success (0) and from an error (1).
   */
  RolledBack: 4,
} as const;

export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];
