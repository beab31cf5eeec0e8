import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["{services,cli,agent,authority,rollout-controller,proto,test}/**/*.test.ts"],
    exclude: ["node_modules", "dist", "test/bench/**", "test/scale/**"],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    pool: "forks",
    reporters: ["default", "./test/support/summary-reporter.ts"],
  },
});
