// Drives the dashboard of a running demo ledger in Debian's chromium (playwright-core, no
// downloaded browser). tests/http/dashboard_browser.rs starts `assay demo --serve` and runs this
// with:
//   DASHBOARD_URL   the server's URL
//   ASSAY_BIN       the assay binary (to append a signed event through the server)
//   DEMO_DIR        the demo's folder (its keys are in DEMO_DIR/keys)
//   SCREENSHOT_DIR  where to save a PNG of each page
// Exits nonzero with a message on the first failed check.

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { appendProbe, launch } from "./common.mjs";

const url = process.env.DASHBOARD_URL;
const bin = process.env.ASSAY_BIN;
const demoDir = process.env.DEMO_DIR;
const shots = process.env.SCREENSHOT_DIR;
for (const [name, value] of Object.entries({ DASHBOARD_URL: url, ASSAY_BIN: bin, DEMO_DIR: demoDir, SCREENSHOT_DIR: shots })) {
  if (!value) throw new Error(`${name} is not set`);
}
mkdirSync(shots, { recursive: true });

function check(ok, message) {
  if (!ok) throw new Error(`check failed: ${message}`);
  console.log(`ok: ${message}`);
}

async function json(path) {
  const r = await fetch(url + path);
  if (!r.ok) throw new Error(`GET ${path}: ${r.status}`);
  return r.json();
}

const { page, errors, close } = await launch(1366);
try {
  const shot = (name) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });

  // The overview: the headline's numbers are the API's.
  await page.goto(url + "/");
  const audit = (await json("/v1/audit")).state;
  const headline = page.locator("#headline");
  const passing = Number(await headline.getAttribute("data-passing"));
  const canonical = Number(await headline.getAttribute("data-canonical"));
  check(passing === audit.artifacts_passing, `headline passing ${passing} = /v1/audit ${audit.artifacts_passing}`);
  check(canonical === audit.artifacts_canonical, `headline canonical ${canonical} = /v1/audit ${audit.artifacts_canonical}`);
  const text = (await headline.locator("h1").innerText()).replace(/\s+/g, " ").trim();
  check(text === audit.headline, `headline text "${text}" = "${audit.headline}"`);
  for (const v of ["supported", "contradicted", "unsupported", "tainted"]) {
    const shown = Number(await page.locator(`td[data-verdict="${v}"]`).innerText());
    check(shown === audit.verdicts[v], `${v} claims ${shown} = ${audit.verdicts[v]}`);
  }
  check((await page.locator("#checkpoint-status").innerText()).includes("verifies"), "the checkpoint signature verifies");
  // GPU and queue health beside the headline, on the same row of the page.
  const gpus = (await json("/v1/gpus")).state.devices;
  const resets = Object.values(gpus).filter((d) => d.needs_reset).length;
  const health = page.locator("#health");
  check(Number(await page.locator("#health-gpus").getAttribute("data-needing-reset")) === resets, `${resets} GPUs needing a reset beside the headline`);
  const [hBox, hlBox] = [await health.boundingBox(), await headline.locator("h1").boundingBox()];
  check(hBox.x > hlBox.x + hlBox.width / 2 && hBox.y < hlBox.y + hlBox.height, "the health box stands beside the headline");
  const root = (await (await fetch(url + "/v1/checkpoint")).text()).split("\n")[2];
  check((await page.locator("#checkpoint-root").innerText()) === root, "the root is shown as the signed note writes it");

  // A newly appended event appears in the live feed within 2 s.
  await page.waitForFunction(() => document.body.dataset.live === "open", null, { timeout: 10000 });
  await shot("home");
  const { digest } = appendProbe(bin, url, demoDir, "browser/probe", 0.5);
  const appended = Date.now();
  await page.locator(`#live-feed tr[data-digest="${digest}"]`).waitFor({ timeout: 2000 });
  check(true, `the appended event ${digest.slice(0, 12)} is in the live feed after ${Date.now() - appended} ms`);
  const first = await page.locator("#live-feed tbody tr").first().getAttribute("data-digest");
  check(first === digest, "the new event is the feed's first row");

  // Artifacts: the filter works without script; clicking a failing artifact shows its claims and reasons.
  await page.goto(url + "/artifacts?verdict=fail");
  const failing = audit.artifacts.filter((a) => !a.passes).length;
  check((await page.locator("#artifact-count").innerText()).startsWith(`${failing} `), `${failing} failing artifacts listed`);
  await shot("artifacts");
  const firstLink = page.locator("#artifacts tbody tr td:first-child a").first();
  const slug = await firstLink.innerText();
  await firstLink.click();
  await page.waitForURL((u) => u.pathname.startsWith("/artifacts/"));
  check((await page.locator("#artifact-slug").innerText()) === slug, `clicked through to ${slug}`);
  const served = await json(`/v1/audit/${encodeURIComponent(slug)}`);
  const rows = page.locator("#claims tbody tr");
  check((await rows.count()) === served.claims.length, `${served.claims.length} claims shown`);
  for (const c of served.claims) {
    const row = page.locator(`#claims tbody tr[data-claim="${c.claim}"]`);
    check((await row.getAttribute("data-verdict")) === c.verdict, `claim ${c.claim} is ${c.verdict}`);
    const cells = await row.locator("td.reasons").first().innerText();
    for (const reason of c.reasons) check(cells.includes(reason), `claim ${c.claim} shows reason ${reason}`);
  }
  check(served.claims.some((c) => c.reasons.length > 0), "a failing artifact has a claim with reasons");
  await shot("artifact");

  // GPUs: the Xid timeline has marks; kernels: the heatmap has cells.
  await page.goto(url + "/gpus");
  const xids = await page.locator("#xid-timeline g.xid").count();
  check(xids > 0, `the Xid timeline has ${xids} marks`);
  const labels0 = await page.locator("#xid-timeline g.xid text.code").allTextContents();
  check(labels0.every((l) => /^\d+(\/\d+)*(\/…)?( ×\d+)?$/.test(l)), "Xid marks are labelled with their codes");
  check(labels0.some((l) => / ×\d+$/.test(l)), "a burst of Xids is one mark with its count");
  check((await page.locator("#xid-timeline text.tick.time").count()) >= 3, "the Xid timeline has a time axis");
  await shot("gpus");
  await page.goto(url + "/kernels");
  const cells = await page.locator("#kernel-heatmap g.cell:not(.legend) rect").count();
  check(cells > 0, `the kernel heatmap has ${cells} cells`);
  const labels = await page.locator("#kernel-heatmap g.cell:not(.legend) text").allTextContents();
  check(labels.some((l) => /\d+ (pass|fail|fault)/.test(l)), "heatmap cells say what they hold");
  await shot("kernels");

  await page.goto(url + "/queue");
  check((await page.locator("#lanes tbody tr").count()) > 0, "the queue lists GPU lanes");
  const resetLanes = page.locator('#lanes tr[data-needs-reset="true"]');
  check((await resetLanes.count()) > 0 && (await resetLanes.locator(".badge.pass").count()) === 0, "no lane whose GPU needs a reset is shown free");
  await shot("queue");

  await page.goto(url + "/runs/r-0002");
  const charts = await page.locator("figure.metric svg polyline").count();
  check(charts > 0, `run r-0002 has ${charts} line charts`);
  await shot("run");
  await page.goto(url + "/runs/r-0005");
  const loss = page.locator('figure[data-metric="loss"]');
  check((await loss.locator("svg > g.series[data-series] polyline, svg > g.series[data-series] circle").count()) === 2, "train/loss and val/loss on one chart");
  check((await loss.locator("svg text.tick.y").count()) >= 3 && (await loss.locator("svg text.tick.x").count()) >= 3, "the loss chart has ticks on both axes");
  await loss.locator(".cites a").first().click();
  await page.waitForURL((u) => u.pathname.startsWith("/artifacts/") && u.hash.startsWith("#claim-"));
  const target = decodeURIComponent(new URL(page.url()).hash.slice(1));
  check(await page.locator(`tr[id="${target}"]`).isVisible(), `a chart's claim link leads to the claim's row (${target})`);
  await page.goto(url + "/runs/r-0005");
  await shot("run-claims");

  await page.goto(url + "/events");
  check((await page.locator("#events-log tbody tr").count()) > 0, "the event log lists records");
  await shot("events");
  await page.goto(url + `/events/${digest}`);
  check((await page.locator("#envelope").innerText()).includes("payloadType"), "the event page shows the envelope");
  await shot("event");

  check(errors.length === 0, `no script errors${errors.length ? ": " + errors.join("; ") : ""}`);
} finally {
  await close();
}
