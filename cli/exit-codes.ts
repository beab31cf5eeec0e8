/** Exit codes of coherentctl, one meaning each, so scripts can branch on them. */
export const ExitCode = {
  Ok: 0,
  /** The command could not do its work: unreadable file, server unreachable, refused. */
  Failure: 1,
  /** The command line itself is wrong: unknown command or option, missing argument. */
  Usage: 2,
  /** The input was read but is not a valid config (or bundle). */
  Invalid: 3,
} as const;

export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];
