import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["{services,cli,agent,authority,rollout-controller,proto,test}/**/*.test.ts"],
    exclude: ["node_modules", "dist", "test/bench/**", "test/scale/**"],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    pool: "forks",
    // Vitest's default is one worker per core but one, which on CI's 2 cores runs every file
    // in turn; most files spend their time waiting on child processes and sockets, so two
    // at once overlap that waiting.
    maxWorkers: 2,
    reporters: ["default", "./test/support/summary-reporter.ts"],
  },
});
