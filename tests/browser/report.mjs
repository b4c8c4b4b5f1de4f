// Loads artifact reports of a running demo ledger in Debian's chromium (playwright-core, no
// downloaded browser), checks their numbers against /v1/audit, and prints each to PDF.
// tests/http/dashboard_browser.rs starts `assay demo --serve` and runs this with:
//   DASHBOARD_URL   the server's URL
//   PDF_DIR         where to write the PDFs
//   SCREENSHOT_DIR  where to save a PNG of a report
// Exits nonzero with a message on the first failed check.

import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { launch } from "./common.mjs";

const url = process.env.DASHBOARD_URL;
const pdfDir = process.env.PDF_DIR;
const shots = process.env.SCREENSHOT_DIR;
for (const [name, value] of Object.entries({ DASHBOARD_URL: url, PDF_DIR: pdfDir, SCREENSHOT_DIR: shots })) {
  if (!value) throw new Error(`${name} is not set`);
}
mkdirSync(shots, { recursive: true });
mkdirSync(pdfDir, { recursive: true });

function check(ok, message) {
  if (!ok) throw new Error(`check failed: ${message}`);
  console.log(`ok: ${message}`);
}

async function json(path) {
  const r = await fetch(url + path);
  if (!r.ok) throw new Error(`GET ${path}: ${r.status}`);
  return r.json();
}

// The report's attribute for a context code of the audit (the observed values), if any.
const ATTRIBUTES = { n: "data-n", estimate: "data-estimate", observed_interval: "data-interval", observed: "data-value", observed_delta: "data-value" };

const { page, errors, close } = await launch(1200);
try {
  const requests = [];
  page.on("request", (r) => requests.push(r.url()));

  const audit = (await json("/v1/audit")).state;
  const failing = audit.artifacts.find((a) => !a.passes);
  const passing = audit.artifacts.find((a) => a.passes);
  check(failing && passing, "the demo has a failing and a passing artifact");
  for (const [i, artifact] of [failing, passing].entries()) {
    const slug = artifact.slug;
    requests.length = 0;
    const response = await page.goto(`${url}/artifacts/${encodeURI(slug)}/report`);
    check(response.status() === 200, `${slug}: the report loads`);
    // Chromium may ask for a favicon on its own; the page itself loads nothing.
    const fetched = requests.filter((u) => !u.endsWith("/favicon.ico"));
    check(fetched.length === 1, `${slug}: the report fetches nothing else (${fetched.join(", ")})`);
    const passes = await page.locator("#report-verdict").getAttribute("data-passes");
    check(passes === String(artifact.passes), `${slug}: passes ${passes} = /v1/audit ${artifact.passes}`);
    const claims = audit.claims.filter((c) => c.artifact === slug);
    check((await page.locator("section.claim").count()) === claims.length, `${slug}: ${claims.length} claims`);
    for (const c of claims) {
      const section = page.locator(`section.claim[data-claim="${c.claim}"]`);
      const verdict = await section.getAttribute("data-verdict");
      check(verdict === c.verdict, `${slug} ${c.claim}: verdict ${verdict} = ${c.verdict}`);
      const registration = await section.getAttribute("data-registration");
      check(registration === c.registration, `${slug} ${c.claim}: ${registration} = ${c.registration}`);
      const words = await section.locator(".verdict").innerText();
      check(words.length > c.verdict.length + 10, `${slug} ${c.claim}: the verdict in words (${words})`);
      for (const item of c.context) {
        const at = item.indexOf(":");
        const attribute = ATTRIBUTES[item.slice(0, at)];
        if (!attribute) continue;
        const detail = item.slice(at + 1);
        const m = detail.match(/^(.*) \(pair (\d+)\)$/);
        const [value, pair] = m ? [m[1], `pair ${m[2]}`] : [detail, null];
        const rows = section.locator(pair ? `table.observed tr[data-pair="${pair}"]` : "table.observed tbody tr");
        const shown = await rows.first().getAttribute(attribute);
        check(shown === value, `${slug} ${c.claim}: ${attribute} ${shown} = ${value}`);
      }
    }
    if (i === 0) await page.screenshot({ path: join(shots, "report.png"), fullPage: true });
    const pdf = join(pdfDir, `report-${i}.pdf`);
    await page.pdf({ path: pdf, format: "A4", printBackground: true });
    const bytes = readFileSync(pdf);
    check(bytes.length > 1000 && bytes.subarray(0, 5).toString("latin1") === "%PDF-", `${slug}: printed to a PDF of ${bytes.length} bytes`);
  }
  // The corpus report: its headline and failing artifacts are the audit's, and it prints.
  requests.length = 0;
  const corpus = await page.goto(`${url}/report`);
  check(corpus.status() === 200, "the corpus report loads");
  check(requests.filter((u) => !u.endsWith("/favicon.ico")).length === 1, "the corpus report fetches nothing else");
  const headline = page.locator("#headline");
  check((await headline.getAttribute("data-passing")) === String(audit.artifacts_passing), `passing = ${audit.artifacts_passing}`);
  check((await headline.getAttribute("data-canonical")) === String(audit.artifacts_canonical), `canonical = ${audit.artifacts_canonical}`);
  check((await headline.innerText()).startsWith(audit.headline), `the headline reads "${audit.headline}"`);
  const last = await page.locator("table#trend tbody tr").last().locator("td").allInnerTexts();
  check(last[1] === String(audit.artifacts_passing) && last[2] === String(audit.artifacts_canonical), `the trend ends at the headline (${last.join(" ")})`);
  const failingSlugs = new Set(audit.artifacts.filter((a) => !a.passes && a.canonical_version !== null).map((a) => a.slug));
  const listed = new Set(await page.locator("section.reason tr[data-slug]").evaluateAll((rows) => rows.map((r) => r.dataset.slug)));
  check([...failingSlugs].every((s) => listed.has(s)) && [...listed].every((s) => failingSlugs.has(s)), `the ${failingSlugs.size} failing artifacts are listed by reason`);
  const corpusPdf = join(pdfDir, "corpus.pdf");
  await page.pdf({ path: corpusPdf, format: "A4", printBackground: true });
  const corpusBytes = readFileSync(corpusPdf);
  check(corpusBytes.subarray(0, 5).toString("latin1") === "%PDF-", `the corpus report printed to a PDF of ${corpusBytes.length} bytes`);

  check(errors.length === 0, `no script errors${errors.length ? ": " + errors.join("; ") : ""}`);
} finally {
  await close();
}
