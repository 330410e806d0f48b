// End-to-end: the built dashboard served by a real FL-API, driven in Debian's Chromium through
// playwright-core (no browser download). Started by tests/e2e/test_dashboard_e2e.py, which passes:
//   E2E_BASE_URL      the server (API + dashboard)
//   E2E_ARTIFACTS     folder for screenshots, the downloaded weights and result.json
//   E2E_PYTHON, E2E_FLEET_SCRIPT   how to run the MovieLens fleet against the app made here
//   E2E_WEBHOOK_URL   a local receiver for the webhook test delivery (optional)
//   CHROMIUM_PATH     default /usr/bin/chromium
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { chromium } from "playwright-core";

const BASE = process.env.E2E_BASE_URL ?? "http://127.0.0.1:8000";
const OUT = process.env.E2E_ARTIFACTS ?? "/tmp/lerna-e2e";
const DEVICES = process.env.E2E_DEVICES ?? "6";
const ROUNDS = process.env.E2E_ROUNDS ?? "2";
const LAPTOP = { width: 1366, height: 860 };
const PHONE = { width: 390, height: 844 };
mkdirSync(OUT, { recursive: true });

const email = `e2e-${Date.now()}@example.com`;
const password = "correct-horse-battery";
const result = { email, password };
/** Console errors are failures, except 4xx answers the step itself expects (feature probes, a wrong password). */
const consoleErrors = [];
let expected = [];

let browser;
let context;
let page;

function expectErrors(...patterns) {
  expected = patterns;
}

/** A test whose failure leaves a screenshot of what the browser showed. */
function step(name, ...rest) {
  const fn = rest.pop();
  test(name, ...rest, async () => {
    try {
      await fn();
    } catch (err) {
      await page?.screenshot({ path: join(OUT, `FAILED-${name.replace(/\W+/g, "-")}.png`), fullPage: true }).catch(() => {});
      throw err;
    }
  });
}

async function shot(name) {
  await page.evaluate(() => window.scrollTo(0, 0)); // keeps the sticky top bar at the top of full-page shots
  await page.screenshot({ path: join(OUT, `${name}.png`), fullPage: true });
}

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  context = await browser.newContext({ viewport: LAPTOP, acceptDownloads: true });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: BASE });
  page = await context.newPage();
  page.setDefaultTimeout(20_000);
  page.on("console", (msg) => {
    if (msg.type() !== "error") return;
    const where = msg.location().url ?? "";
    if (expected.some((p) => p.test(where))) return;
    consoleErrors.push(`${msg.text()} @ ${where}`);
  });
  page.on("pageerror", (err) => consoleErrors.push(`page error: ${err.message}`));
});

after(async () => {
  writeFileSync(join(OUT, "result.json"), JSON.stringify(result, null, 2));
  await browser?.close();
});

step("a new customer signs up and lands on the apps page", async () => {
  await page.goto(BASE + "/");
  await page.waitForURL(/\/login/);
  await page.getByRole("link", { name: "Sign up" }).click();
  await page.getByLabel("Name").fill("Ada Developer");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Company").fill("Example News");
  await page.getByLabel("Position").fill("Mobile lead");
  await page.getByLabel("Password").fill("short");
  await page.getByRole("button", { name: "Sign up" }).click();
  await page.getByText("The password needs at least 8 characters.").waitFor();
  await shot("signup-validation");
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign up" }).click();
  await page.waitForURL(/\/apps$/);
  await page.getByRole("heading", { name: "Apps", exact: true }).waitFor();
});

step("creating an app shows its token once, with a working copy button", async () => {
  await page.getByRole("button", { name: "Create app" }).click();
  await page.getByText("Give the app a name.").waitFor();
  await page.getByLabel("App name").fill("E2E News");
  await page.getByRole("button", { name: "Create app" }).click();
  const tokenInput = page.getByLabel("App token");
  await tokenInput.waitFor();
  const token = await tokenInput.inputValue();
  assert.ok(token.length >= 20, "the token is shown");
  await page.getByRole("button", { name: "Copy token" }).click();
  await page.getByText("Copied to the clipboard.").first().waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), token);
  await shot("apps-token");
  await page.getByRole("button", { name: "I have stored the token" }).click();
  await page.reload();
  await page.getByRole("link", { name: "E2E News" }).waitFor();
  assert.ok(!(await page.content()).includes(token), "the token is not shown again");
  const href = await page.getByRole("link", { name: "E2E News" }).getAttribute("href");
  result.appId = Number(/apps\/(\d+)/.exec(href)[1]);
  result.token = token;
  await shot("apps");
});

step("apps can be renamed, get a rotated token, and be deleted after a confirmation", async () => {
  await page.getByLabel("App name").fill("Scratch app");
  await page.getByRole("button", { name: "Create app" }).click();
  const first = await page.getByLabel("App token").inputValue();
  await page.getByRole("button", { name: "I have stored the token" }).click();
  await page.getByRole("button", { name: "Rename Scratch app" }).click();
  await page.getByLabel("New name for Scratch app").fill("Scratch app renamed");
  await page.getByRole("button", { name: "Save", exact: true }).click();
  await page.getByRole("link", { name: "Scratch app renamed" }).waitFor();
  await page.getByRole("button", { name: "Rotate the token of Scratch app renamed" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Rotate token" }).click();
  const second = await page.getByLabel("App token").inputValue();
  assert.notEqual(second, first, "rotation gives a new token");
  await page.getByRole("button", { name: "I have stored the token" }).click();
  await page.getByRole("button", { name: "Delete Scratch app renamed" }).click();
  await page.keyboard.press("Escape"); // the dialog starts on Cancel; Escape closes it
  assert.equal(await page.getByRole("dialog").count(), 0);
  await page.getByRole("button", { name: "Delete Scratch app renamed" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Delete app" }).click();
  await page.getByRole("link", { name: "Scratch app renamed" }).waitFor({ state: "detached" });
  await page.getByRole("link", { name: "E2E News" }).waitFor();
});

step("a simulated fleet trains and the overview charts fill", { timeout: 600_000 }, async () => {
  const storage = mkdtempSync(join(tmpdir(), "lerna-e2e-fleet-"));
  const fleet = spawn(process.env.E2E_PYTHON ?? "python3",
    [process.env.E2E_FLEET_SCRIPT, BASE, email, password, String(result.appId), result.token, DEVICES, ROUNDS, storage],
    { stdio: ["ignore", "pipe", "pipe"] });
  let fleetLog = "";
  fleet.stdout.on("data", (d) => (fleetLog += d));
  fleet.stderr.on("data", (d) => (fleetLog += d));
  const exited = new Promise((resolve) => fleet.on("exit", resolve));
  expectErrors(/\/privacy$/);
  await page.getByRole("link", { name: "E2E News" }).click();
  await page.waitForURL(/\/overview$/);
  await page.getByRole("heading", { name: "Overview" }).waitFor();
  await shot("overview-empty");
  const code = await exited;
  rmSync(storage, { recursive: true, force: true });
  writeFileSync(join(OUT, "fleet.log"), fleetLog);
  assert.equal(code, 0, `the fleet failed:\n${fleetLog.slice(-3000)}`);
  // The page refreshes itself every 5 s while rounds run.
  await page.waitForFunction(() => {
    const n = (sel) => Number(document.querySelector(sel)?.getAttribute("data-points") ?? 0);
    return n('[data-testid="accuracy-chart"]') > 0 && n('[data-testid="activity-chart"]') > 0;
  }, null, { timeout: 30_000 });
  // The overview refreshes itself every 5 s: wait for a refresh that saw the published versions.
  await page.waitForFunction(
    () => /Learning iterations\s*\n?\s*[1-9]/i.test(document.querySelector('[data-testid="stats"]')?.innerText ?? ""),
    null,
    { timeout: 30_000 },
  );
  const stats = await page.getByTestId("stats").innerText();
  assert.match(stats, /Learning iterations\s*\n?\s*[1-9]/i);
  await page.waitForTimeout(300);
  await shot("overview");
});

step("task parameters are validated, saved, and weights export as a file", async () => {
  expectErrors();
  await page.getByRole("link", { name: "Models" }).click();
  await page.getByRole("heading", { name: /Parameters of/ }).waitFor();
  const cohort = page.getByLabel("Cohort size");
  const hyper = page.getByLabel(/Hyper-parameters/);
  const originalHyper = await hyper.inputValue();
  await cohort.fill("0");
  await page.getByRole("button", { name: "Save parameters" }).click();
  await page.getByText("Cohort size must be at least 1.").waitFor();
  await cohort.fill("5");
  await page.getByLabel("Minimum participants").fill("9");
  await page.getByLabel(/Hyper-parameters/).fill("{not json");
  await page.getByRole("button", { name: "Save parameters" }).click();
  await page.getByText("Minimum participants cannot exceed the cohort size.").waitFor();
  await page.getByText("Hyper-parameters are not valid JSON.").waitFor();
  assert.equal(await cohort.getAttribute("aria-invalid"), "false");
  assert.equal(await page.getByLabel("Minimum participants").getAttribute("aria-invalid"), "true");
  await shot("models-validation");
  await page.getByLabel("Minimum participants").fill("3");
  // A value only the model knows is wrong: the server's 422 message is shown as it is.
  await hyper.fill(JSON.stringify({ ...JSON.parse(originalHyper), dim: -4 }));
  expectErrors(/\/api\/apps\/\d+\/tasks\/\d+$/);
  await page.getByRole("button", { name: "Save parameters" }).click();
  await page.getByTestId("server-error").waitFor();
  assert.match(await page.getByTestId("server-error").innerText(), /hyper\.dim/);
  await shot("models-server-validation");
  expectErrors();
  await hyper.fill(originalHyper);
  await page.getByLabel("Local epochs").fill("2");
  await page.getByRole("button", { name: "Save parameters" }).click();
  await page.getByText("Saved. The next round uses the new parameters.").waitFor();
  await page.reload();
  await page.getByRole("heading", { name: /Parameters of/ }).waitFor();
  assert.equal(await page.getByLabel("Cohort size").inputValue(), "5");
  assert.equal(await page.getByLabel("Local epochs").inputValue(), "2");
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.getByRole("button", { name: /Download the weights of version 1 / }).click(),
  ]);
  const file = join(OUT, download.suggestedFilename());
  await download.saveAs(file);
  assert.match(download.suggestedFilename(), /-v1\.npz$/);
  result.weights = file;
  await page.getByTestId("export-msg").waitFor();
  await page.getByRole("cell", { name: "#1" }).or(page.getByRole("rowheader", { name: "#1" })).first().waitFor();
  await shot("models");
});

step("a webhook is added and its test delivery is reported", async () => {
  expectErrors(/\/webhooks$/);
  await page.getByRole("link", { name: "Integrations" }).click();
  await page.getByRole("heading", { name: "Integrations" }).waitFor();
  await page.locator(".async-block").first().waitFor();
  await page.waitForFunction(() => !document.querySelector('.async-block[aria-busy="true"]'));
  if (await page.getByText("this feature is off").count()) {
    result.webhook = "off";
    await shot("integrations");
    return;
  }
  await page.getByLabel("Kind").selectOption("https");
  await page.getByLabel("URL").fill("not a url");
  await page.getByRole("button", { name: "Add webhook" }).click();
  await page.getByText("Enter a full URL").waitFor();
  await page.getByLabel("URL").fill(process.env.E2E_WEBHOOK_URL ?? "https://example.com/hook");
  await page.getByLabel("Round completed").check();
  await page.getByLabel(/^Secret/).fill("short");
  await page.getByRole("button", { name: "Add webhook" }).click();
  await page.getByText("The secret needs at least 16 characters").waitFor();
  await page.getByLabel(/^Secret/).fill("e2e-signing-secret-0123456789");
  await page.getByRole("button", { name: "Add webhook" }).click();
  await page.getByRole("button", { name: "Send test" }).waitFor();
  await page.getByRole("button", { name: "Send test" }).click();
  const outcome = await page.getByTestId("webhook-test-result").innerText({ timeout: 30_000 });
  result.webhook = outcome;
  assert.match(outcome, /^Delivered/, outcome);
  await page.getByRole("button", { name: "Disable" }).click();
  await page.getByText("disabled", { exact: true }).waitFor();
  await shot("integrations");
});

step("a device is found and blacklisted", async () => {
  expectErrors();
  await page.getByRole("link", { name: "Devices" }).click();
  await page.getByLabel("Device id").fill("ml-user-");
  await page.getByRole("button", { name: "Search" }).click();
  const row = page.locator("tr[data-device-uid]").first();
  await row.waitFor();
  const uid = await row.getAttribute("data-device-uid");
  await row.getByRole("button", { name: /^Blacklist / }).click();
  await page.getByTestId("device-msg").filter({ hasText: "training and predictions are blocked" }).waitFor();
  assert.equal(await row.getByTestId("device-status").innerText(), "blacklisted");
  result.blacklisted = uid;
  await shot("devices");
});

step("recommendations, profile and help pages render", async () => {
  expectErrors(/\/recommender\/engines$/);
  await page.getByRole("link", { name: "Recommendations" }).click();
  await page.getByRole("heading", { name: "Recommendations" }).waitFor();
  await page.waitForFunction(() => !document.querySelector('.async-block[aria-busy="true"]'));
  await shot("recommendations");
  expectErrors();
  await page.getByRole("navigation").getByRole("link", { name: "Profile" }).click();
  await page.getByLabel("Position").fill("Head of mobile");
  await page.getByRole("button", { name: "Save profile" }).click();
  await page.getByText("Profile saved.").waitFor();
  await shot("profile");
  await page.getByRole("link", { name: "Help & contact" }).click();
  await page.getByRole("heading", { name: "Documentation" }).waitFor();
  await shot("help");
});

step("another customer's app id gives a not-found page", async () => {
  expectErrors(/\/api\/apps\/999999$/);
  await page.goto(`${BASE}/apps/999999/overview`);
  await page.getByRole("heading", { name: "App not found" }).waitFor();
  await shot("app-not-found");
  expectErrors();
});

step("phone width: the menu is a drawer reachable by keyboard", async () => {
  await page.setViewportSize(PHONE);
  await page.goto(`${BASE}/apps/${result.appId}/overview`);
  await page.waitForFunction(() => Number(document.querySelector('[data-testid="accuracy-chart"]')?.getAttribute("data-points") ?? 0) > 0);
  expectErrors(/\/privacy$/);
  assert.equal(await page.getByRole("link", { name: "Devices" }).isVisible(), false, "the drawer starts closed");
  await shot("phone-overview");
  await page.getByRole("button", { name: "Menu" }).focus();
  await page.keyboard.press("Enter");
  await page.getByRole("link", { name: "Devices" }).waitFor({ state: "visible" });
  await page.waitForTimeout(300); // the drawer's slide-in
  await shot("phone-menu");
  await page.getByRole("link", { name: "Models" }).click();
  await page.getByRole("heading", { name: /Parameters of/ }).waitFor();
  await page.waitForTimeout(300);
  await shot("phone-models");
  await page.setViewportSize(LAPTOP);
});

step("log out, then an expired session returns to the login page", async () => {
  expectErrors();
  await page.getByRole("button", { name: "Log out" }).click();
  await page.waitForURL(/\/login$/);
  await page.goto(`${BASE}/apps`);
  await page.waitForURL(/\/login\?next=/);
  // Log in with the keyboard alone.
  await page.keyboard.press("Tab");
  await page.keyboard.type(email);
  await page.keyboard.press("Tab");
  await page.keyboard.type(password);
  await page.keyboard.press("Enter");
  await page.waitForURL(/\/apps$/);
  // A token the server no longer accepts (e.g. after a secret rotation) ends the session.
  await page.evaluate(() => localStorage.setItem("lerna.session", JSON.stringify({ token: "bogus", expiresAt: Date.now() + 3_600_000 })));
  expectErrors(/\/api\/(me|apps)$/);
  await page.reload();
  await page.getByText("Your session has ended. Please log in again.").waitFor();
  await shot("login-expired");
  expectErrors(/\/api\/auth\/login$/);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill("wrong-password");
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByRole("alert").waitFor();
  assert.ok((await page.getByRole("alert").innerText()).length > 5, "a readable error");
  expectErrors();
});

test("no console errors on any page", () => {
  assert.deepEqual(consoleErrors, []);
});
