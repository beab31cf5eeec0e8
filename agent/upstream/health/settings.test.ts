import { describe, expect, it } from "vitest";
import type { Pool } from "../../../services/config/index.js";
import { formatStatusRange, HEALTH_DEFAULTS, healthSettings } from "./settings.js";

const endpoints = [{ address: "10.0.0.1:8000" }];

describe("healthSettings", () => {
  it("turns every mechanism off when the pool configures none", () => {
    expect(healthSettings({ id: "p", endpoints })).toEqual({
      active: undefined,
      passive: undefined,
      outlier: undefined,
    });
  });

  it("fills the defaults of active checks around the interval", () => {
    const pool: Pool = { id: "p", endpoints, health: { active: { interval: 5_000 } } };
    expect(healthSettings(pool).active).toEqual({
      intervalMs: 5_000,
      timeoutMs: 1_000,
      path: "/health",
      expectedStatus: { min: 200, max: 399 },
      jitterPercent: 10,
      healthyThreshold: 1,
      unhealthyThreshold: 2,
    });
  });

  it("keeps the default timeout within a short interval", () => {
    const pool: Pool = { id: "p", endpoints, health: { active: { interval: 300 } } };
    expect(healthSettings(pool).active?.timeoutMs).toBe(300);
  });

  it("keeps what the operator wrote", () => {
    const pool: Pool = {
      id: "p",
      endpoints,
      health: {
        active: {
          interval: 2_000,
          timeout: 3_000,
          path: "/healthz",
          expected_status: { min: 204, max: 204 },
          jitter: 0,
          healthy_threshold: 3,
          unhealthy_threshold: 4,
        },
        passive: { consecutive_failures: 7, ejection_duration: 1_000 },
      },
      outlier_detection: {
        consecutive_failures: 9,
        error_rate_threshold: 40,
        max_ejection_percent: 50,
        interval: 1_000,
        base_ejection_time: 2_000,
        min_requests: 5,
      },
    };
    expect(healthSettings(pool)).toEqual({
      active: {
        intervalMs: 2_000,
        timeoutMs: 3_000,
        path: "/healthz",
        expectedStatus: { min: 204, max: 204 },
        jitterPercent: 0,
        healthyThreshold: 3,
        unhealthyThreshold: 4,
      },
      passive: { consecutiveFailures: 7, ejectionMs: 1_000 },
      outlier: {
        consecutiveFailures: 9,
        errorRatePercent: 40,
        maxEjectionPercent: 50,
        intervalMs: 1_000,
        baseEjectionMs: 2_000,
        minRequests: 5,
      },
    });
  });

  it("fills passive and outlier defaults, leaving the error-rate check off", () => {
    const pool: Pool = {
      id: "p",
      endpoints,
      health: { passive: { consecutive_failures: 3 } },
      outlier_detection: {},
    };
    const settings = healthSettings(pool);
    expect(settings.passive).toEqual({
      consecutiveFailures: 3,
      ejectionMs: HEALTH_DEFAULTS.passiveEjectionMs,
    });
    expect(settings.outlier).toEqual({
      consecutiveFailures: 5,
      errorRatePercent: undefined,
      maxEjectionPercent: 10,
      intervalMs: 10_000,
      baseEjectionMs: 30_000,
      minRequests: 20,
    });
  });
});

describe("formatStatusRange", () => {
  it("writes a range as min-max and a single status alone", () => {
    expect(formatStatusRange({ min: 200, max: 399 })).toBe("200-399");
    expect(formatStatusRange({ min: 204, max: 204 })).toBe("204");
  });
});
