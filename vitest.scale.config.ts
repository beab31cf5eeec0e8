import { defineConfig } from "vitest/config";

/**
 * The scale suite (`npm run test:scale`), apart from the default one: thousands of simulated
 * agents and a soak of SOAK_MINUTES. One file at a time, since each scenario measures how the
 * processes it starts use the machine's two cores and would skew the others' figures.
 */
export default defineConfig({
  test: {
    include: ["test/scale/**/*.test.ts"],
    exclude: ["node_modules", "dist"],
    testTimeout: 300_000,
    hookTimeout: 180_000,
    pool: "forks",
    maxWorkers: 1,
    fileParallelism: false,
    reporters: ["default", "./test/support/summary-reporter.ts"],
  },
});
