// Signs a browser in to the dashboard of a server that requires read tokens, in Debian's
// chromium (playwright-core, no downloaded browser). tests/http/dashboard_browser.rs builds the
// small demo, starts `assay serve --require-read-token --read-token-file` on it and runs this
// with:
//   DASHBOARD_URL   the server's URL
//   READ_TOKEN      the one token of the server's --read-token-file
//   ASSAY_BIN       the assay binary (to append a signed event through the server)
//   LEDGER_DB       the served ledger (to find the appended event in it)
//   DEMO_DIR        the demo's folder (its keys are in DEMO_DIR/keys)
//   SCREENSHOT_DIR  where to save login.png, login-failed.png and signed-in.png
// Prints "ok: [N] …" per passed check of step N; exits nonzero with a message on the first
// failed check.

import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { CHROMIUM, CHROMIUM_ARGS, appendProbe } from "./common.mjs";

const url = process.env.DASHBOARD_URL;
const token = process.env.READ_TOKEN;
const bin = process.env.ASSAY_BIN;
const db = process.env.LEDGER_DB;
const demoDir = process.env.DEMO_DIR;
const shots = process.env.SCREENSHOT_DIR;
for (const [name, value] of Object.entries({
  DASHBOARD_URL: url,
  READ_TOKEN: token,
  ASSAY_BIN: bin,
  LEDGER_DB: db,
  DEMO_DIR: demoDir,
  SCREENSHOT_DIR: shots,
})) {
  if (!value) throw new Error(`${name} is not set`);
}
mkdirSync(shots, { recursive: true });

let step = 0;
function check(ok, message) {
  if (!ok) throw new Error(`check failed: [${step}] ${message}`);
  console.log(`ok: [${step}] ${message}`);
}

const COOKIE = "assay_read";

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: CHROMIUM_ARGS,
});
const errors = [];
try {
  const context = await browser.newContext({ viewport: { width: 1366, height: 860 } });
  const page = await context.newPage();
  page.on("pageerror", (e) => errors.push({ text: `page error: ${e.message}` }));
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    const loaded = m.location().url ? new URL(m.location().url, url) : null;
    errors.push({ text: `console error: ${m.text()} (loading ${m.location().url || "?"} on ${page.url()})`, path: loaded?.pathname });
  });
  const shot = (name) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  const here = () => new URL(page.url());
  const readCookie = async () => (await context.cookies(url)).find((c) => c.name === COOKIE);
  // GET `path` from within the page: same origin, so the browser adds its cookie by itself.
  const fetchInPage = (path) =>
    page.evaluate(async (p) => {
      const r = await fetch(p, { headers: { Accept: "application/json" } });
      return { status: r.status, body: await r.text() };
    }, path);
  const signIn = async (value) => {
    await page.locator("form.login #token").fill(value);
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === "POST" && new URL(r.url()).pathname === "/login"),
      page.locator('form.login button[type="submit"]').click(),
    ]);
    await page.waitForLoadState("load");
    return response;
  };

  // 1. A page without credentials leads to the sign-in form, which remembers the page.
  step = 1;
  const landed = await page.goto(url + "/artifacts");
  const redirect = landed.request().redirectedFrom();
  check(
    redirect !== null && new URL(redirect.url()).pathname === "/artifacts" && (await redirect.response()).status() === 303,
    `GET /artifacts answered 303${redirect ? ` (from ${redirect.url()})` : ""}`,
  );
  check(here().pathname === "/login", `landed on ${here().pathname}`);
  check(here().searchParams.get("next") === "/artifacts", `with next = ${here().searchParams.get("next")}`);
  check(landed.status() === 200, `the sign-in page is ${landed.status()}`);
  check(await page.locator("form.login").isVisible(), "the sign-in form is shown");
  check(await page.locator('form.login input#token[type="password"]').isVisible(), "with a password field for the token");
  const hiddenNext = await page.locator('form.login input[name="next"]').getAttribute("value");
  check(hiddenNext === "/artifacts", `the form carries next = ${hiddenNext}`);
  check((await readCookie()) === undefined, `no ${COOKIE} cookie yet`);
  await shot("login");

  // 2. A wrong token: the form again, saying so, and no cookie.
  step = 2;
  const refused = await signIn(`wrong-${token}`);
  check(refused.status() === 401, `POST /login with a wrong token is ${refused.status()}`);
  check(here().pathname === "/login", `stayed on ${here().pathname}`);
  const error = page.locator("#login-error");
  check(await error.isVisible(), "an error message is shown");
  const errorText = (await error.innerText()).trim();
  check(errorText.includes("not accepted"), `it says "${errorText}"`);
  check(await page.locator("form.login #token").isVisible(), "the form is shown again");
  const nextAgain = await page.locator('form.login input[name="next"]').getAttribute("value");
  check(nextAgain === "/artifacts", `still with next = ${nextAgain}`);
  const afterWrong = await readCookie();
  check(afterWrong === undefined, `no ${COOKIE} cookie after a wrong token${afterWrong ? `: ${JSON.stringify(afterWrong)}` : ""}`);
  await shot("login-failed");

  // 3. The right token: on to next, with an HttpOnly, SameSite=Strict cookie.
  step = 3;
  const accepted = await signIn(token);
  check(accepted.status() === 303, `POST /login with the right token is ${accepted.status()}`);
  await page.waitForURL((u) => u.pathname === "/artifacts", { timeout: 10000 });
  check(here().pathname === "/artifacts" && here().search === "", `landed on next: ${here().pathname}${here().search}`);
  const rows = await page.locator("#artifacts tbody tr[data-slug]").count();
  check(rows > 0, `the artifacts page lists ${rows} artifacts`);
  const cookie = await readCookie();
  check(cookie !== undefined, `the ${COOKIE} cookie is set`);
  check(cookie.value === encodeURIComponent(token), "it holds the token");
  check(cookie.httpOnly === true, "it is httpOnly");
  check(cookie.sameSite === "Strict", `its sameSite is ${cookie.sameSite}`);
  check(cookie.path === "/", `its path is ${cookie.path}`);
  check(cookie.expires === -1, "it is a session cookie");
  const scriptSees = await page.evaluate(() => document.cookie);
  check(!scriptSees.includes(COOKIE), `page scripts cannot read it (document.cookie = "${scriptSees}")`);
  check(await page.locator("header.top form.signout button").isVisible(), "a Sign out button is shown");
  await shot("signed-in");

  // 4. The overview's headline is the one /v1/audit serves to the same browser.
  step = 4;
  await page.goto(url + "/");
  check(here().pathname === "/", `the overview opens (${here().pathname})`);
  const direct = await fetch(url + "/v1/audit");
  check(direct.status === 401, `/v1/audit without the cookie is ${direct.status}`);
  const served = await fetchInPage("/v1/audit");
  check(served.status === 200, `/v1/audit fetched by the page (with the cookie) is ${served.status}`);
  const audit = JSON.parse(served.body).state;
  const headline = page.locator("#headline");
  const text = (await headline.locator("h1").innerText()).replace(/\s+/g, " ").trim();
  check(text === audit.headline, `headline "${text}" = /v1/audit "${audit.headline}"`);
  const passing = Number(await headline.getAttribute("data-passing"));
  const canonical = Number(await headline.getAttribute("data-canonical"));
  check(passing === audit.artifacts_passing && canonical === audit.artifacts_canonical, `${passing} of ${canonical} passing, as /v1/audit says`);

  // 5. The live feed's EventSource is authorized by the cookie: a new event shows within 2 s.
  step = 5;
  await page
    .waitForFunction(() => document.body.dataset.live === "open", null, { timeout: 10000 })
    .catch(async () => {
      const state = await page.evaluate(() => `${document.body.dataset.live} (${document.getElementById("live-status")?.textContent})`);
      throw new Error(`check failed: [${step}] the live feed did not open over the cookie: ${state}`);
    });
  check(true, "the live feed is open");
  const { seq, digest } = appendProbe(bin, url, demoDir, "browser/login-probe", 0.25);
  const appended = Date.now();
  await page
    .locator(`#live-feed tr[data-digest="${digest}"]`)
    .waitFor({ timeout: 2000 })
    .catch(() => {
      throw new Error(`check failed: [${step}] the appended event ${digest.slice(0, 12)} was not in the live feed within 2 s`);
    });
  check(true, `the appended event ${digest.slice(0, 12)} is in the live feed over the cookie after ${Date.now() - appended} ms`);
  const first = page.locator("#live-feed tbody tr").first();
  check((await first.getAttribute("data-digest")) === digest, "the new event is the feed's first row");
  check((await first.getAttribute("data-seq")) === String(seq), `at seq ${seq}`);
  const logged = execFileSync(bin, ["log", "--db", db, "--from", String(seq), "--limit", "1", "--json"]).toString();
  const record = JSON.parse(logged.trim().split("\n")[0]);
  check(record.seq === seq && record.digest === digest, `the ledger holds it at seq ${seq}`);

  // 6. Signing out clears the cookie; the pages ask to sign in again.
  step = 6;
  await Promise.all([
    page.waitForURL((u) => u.pathname === "/login", { timeout: 10000 }),
    page.locator("header.top form.signout button").click(),
  ]);
  check(here().pathname === "/login", `signed out: landed on ${here().pathname}`);
  check((await readCookie()) === undefined, `the ${COOKIE} cookie is gone`);
  check(await page.locator("form.login #token").isVisible(), "the sign-in form is shown");
  await page.goto(url + "/");
  check(here().pathname === "/login" && here().searchParams.get("next") === "/", `opening / again lands on ${here().pathname}${here().search}`);
  const after = await fetchInPage("/v1/audit");
  check(after.status === 401, `/v1/audit fetched by the page is ${after.status} again`);

  // 7. A token revoked while its live feed is open: the feed ends within seconds, says why,
  //    and does not reconnect.
  step = 7;
  const revocable = execFileSync(bin, ["token", "create", "--db", db, "--name", "browser-revoked"]).toString().trim();
  const signedIn = await signIn(revocable);
  check(signedIn.status() === 303, `POST /login with a token of assay token create is ${signedIn.status()}`);
  await page.waitForURL((u) => u.pathname === "/", { timeout: 10000 });
  await page.waitForFunction(() => document.body.dataset.live === "open", null, { timeout: 10000 });
  check(true, "the live feed is open");
  execFileSync(bin, ["token", "revoke", "--db", db, "--name", "browser-revoked"]);
  await page
    .waitForFunction(() => document.body.dataset.live === "closed", null, { timeout: 10000 })
    .catch(async () => {
      const state = await page.evaluate(() => `${document.body.dataset.live} (${document.getElementById("live-status")?.textContent})`);
      throw new Error(`check failed: [${step}] the live feed did not end within 10 s of the revocation: ${state}`);
    });
  const ended = (await page.locator("#live-status").innerText()).trim();
  check(ended.includes("revoked"), `the feed ended saying "${ended}"`);
  await page.waitForTimeout(1500);
  const later = await page.evaluate(() => document.body.dataset.live);
  check(later === "closed", `it stays closed (no reconnect): ${later}`);

  // The only failed loads are the two 401s asked for: the wrong token's POST /login and
  // /v1/audit fetched after signing out.
  const expected = (e) => /status of 401/.test(e.text) && (e.path === "/login" || e.path === "/v1/audit");
  const unexpected = errors.filter((e) => !expected(e)).map((e) => e.text);
  check(unexpected.length === 0, `no script errors${unexpected.length ? ": " + unexpected.join("; ") : ""}`);
  await context.close();
} finally {
  await browser.close();
}
