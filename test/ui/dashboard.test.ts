/**
 * The dashboard in a real browser: Debian's chromium, headless, driven by playwright-core
 * (which downloads no browser). An SRE signs in at /ui, watches a rollout, and sees it move to
 * its next stage without reloading the page. The screenshot lands in test-results/ui/.
 */
import { existsSync } from "node:fs";
import { mkdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  dropSchema,
  POSTGRES_URL,
  sampleConfig,
  startTestAuthority,
  type TestAuthority,
  testDatabase,
} from "../../authority/api/test-harness.js";
import { UI_CONTENT_SECURITY_POLICY } from "../../authority/ui/ui-routes.js";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const OUTPUT = join(process.cwd(), "test-results", "ui");
/** Well under the page's 15 s full poll: a change seen this fast came by the event stream. */
const LIVE_WITHIN_MS = 6_000;

interface RolloutJson {
  readonly id: string;
  readonly phase: string;
  readonly stage: { readonly index: number; readonly name: string | null };
  readonly stages: ReadonlyArray<{ readonly name: string; readonly fleet_percent: number }>;
}

describe("the /ui dashboard in headless chromium", () => {
  const database = testDatabase(POSTGRES_URL === undefined ? "pglite" : "postgres");
  let authority: TestAuthority;
  let browser: Browser | undefined;
  let page: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(
        `no chromium at ${CHROMIUM}: install Debian's (apt-get install -y chromium; .ci/run does) or set CHROMIUM_PATH`,
      );
    }
    authority = await startTestAuthority({ database });
    for (const body of [{ name: "edge" }]) {
      expect((await authority.call("POST", "/api/v1/fleets", { body })).status).toBe(201);
    }
    for (const routes of [1, 2]) {
      const submitted = await authority.call("POST", "/api/v1/fleets/edge/bundles", {
        body: { config: sampleConfig(routes) },
      });
      expect(submitted.status).toBe(201);
    }
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      // The sandbox needs user namespaces, which containers running as root often lack.
      args: ["--no-sandbox", "--disable-dev-shm-usage"],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.on("pageerror", (error) => pageErrors.push(`pageerror: ${error.message}`));
    page.on("console", (message) => {
      if (message.type() === "error") pageErrors.push(`console: ${message.text()}`);
    });
  }, 60_000);

  const rolloutOf = async (id: string) => {
    const read = await authority.call("GET", `/api/v1/rollouts/${id}`);
    expect(read.status).toBe(200);
    return (read.body as { rollout: RolloutJson }).rollout;
  };
  const promote = async (id: string) => {
    const promoted = await authority.call("POST", `/api/v1/rollouts/${id}/promote`, { body: {} });
    expect(promoted.status).toBe(200);
    return promoted.body as RolloutJson;
  };

  afterAll(async () => {
    await browser?.close();
    await authority?.close();
    await dropSchema(database);
  });

  it("serves the page with a Content-Security-Policy", async () => {
    const response = await fetch(`${authority.url}/ui`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-security-policy")).toBe(UI_CONTENT_SECURITY_POLICY);
    expect(response.headers.get("content-type")).toMatch(/^text\/html/);
    expect((await fetch(`${authority.url}/ui/nothing-here.js`)).status).toBe(404);
  });

  it("shows an active rollout advance to its next stage without a reload", async () => {
    const created = await authority.call("POST", "/api/v1/fleets/edge/rollouts", { body: { version: 2 } });
    expect(created.status).toBe(201);
    const { id } = created.body as RolloutJson;
    // Started by an operator here; a controller, if one runs, may have started it first.
    const started = await rolloutOf(id);
    const running = started.phase === "pending" ? await promote(id) : started;
    expect(running.phase).toBe("running");
    const stage = running.stage.index;
    const [now, next] = [running.stages[stage], running.stages[stage + 1]];
    if (!now || !next) throw new Error(`rollout ${id} is at its last stage already`);

    const viewer = await authority.token("viewer");
    await page.goto(`${authority.url}/ui`);
    await page.getByLabel("API token").fill(viewer);
    await page.getByRole("button", { name: "Show the dashboard" }).click();

    await expect.poll(() => page.locator("#live").textContent(), { timeout: LIVE_WITHIN_MS }).toBe("live");
    const current = page.locator('#timeline [aria-current="step"]');
    await expect.poll(() => current.textContent(), { timeout: LIVE_WITHIN_MS }).toContain(now.name);
    await expect.poll(() => page.locator("#fleets tbody").textContent()).toContain("edge");
    // Set in the page now; a reload would lose it.
    await page.evaluate(() => {
      (globalThis as { loadedOnce?: string }).loadedOnce = "yes";
    });

    expect(await promote(id)).toMatchObject({
      phase: "running",
      stage: { index: stage + 1, name: next.name },
    });
    const row = page.locator(`#rollouts tr[data-rollout="${id}"]`);
    await expect
      .poll(() => row.textContent(), { timeout: LIVE_WITHIN_MS })
      .toContain(`${next.name} (${next.fleet_percent}%)`);
    await expect.poll(() => current.textContent(), { timeout: LIVE_WITHIN_MS }).toContain(next.name);
    expect(await page.evaluate(() => (globalThis as { loadedOnce?: string }).loadedOnce)).toBe("yes");
    expect(await page.locator("#timeline li.done").count()).toBe(stage + 1);
    // Every gate of the plan is charted, judged or not yet.
    await expect.poll(() => page.locator("#gates figure svg").count()).toBeGreaterThan(0);

    await mkdir(OUTPUT, { recursive: true });
    const screenshot = join(OUTPUT, "dashboard.png");
    await page.screenshot({ path: screenshot, fullPage: true });
    expect((await stat(screenshot)).size).toBeGreaterThan(10_000);
    expect(pageErrors).toEqual([]);
  });
});
