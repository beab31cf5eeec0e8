/**
 * What `coherent dev` suggests trying next, checked the same way wherever it runs (from the
 * sources in dev.test.ts, from a fresh clone's `npm start` in readme-start.test.ts): a curl
 * through the first agent, `coherentctl fleet status demo`, and a bundle submit.
 */
import { expect } from "vitest";

export interface CommandRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** The three suggested commands' runs, in the order printed, on a first start. */
export function expectSuggestedCommandsWorked(runs: readonly CommandRun[]): void {
  expect(runs).toHaveLength(3);
  const [curl, status, submit] = runs;
  expect(curl?.code, curl?.stderr).toBe(0);
  expect(curl?.stdout).toMatch(/^HTTP\/1\.1 200/);
  expect(curl?.stdout).toContain('"version":"v1"');
  expect(status?.code, status?.stderr).toBe(0);
  expect(status?.stdout).toMatch(/stable version:\s+v1/);
  expect(status?.stdout).toMatch(/^v1\s+3\s+3\s+0\s+0\s+0$/m);
  expect(submit?.code, submit?.stderr).toBe(0);
  expect(submit?.stdout).toContain("fleet demo: version 2 created (parent 1)");
}
