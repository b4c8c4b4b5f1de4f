// What the browser tests share: how they start Debian's chromium (headless, no sandbox: CI
// runs as root; nothing that talks to the network on its own), and how they append an event
// through the server while a page watches.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";
export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

// Starts chromium with a fresh profile and a window `width` wide; its first page collects
// script errors and console errors in `errors`. `close()` stops it and removes the profile.
export async function launch(width) {
  const profile = mkdtempSync(join(tmpdir(), "assay-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width, height: 860 },
    args: ["--headless", ...CHROMIUM_ARGS],
  });
  const errors = [];
  const page = context.pages()[0] ?? (await context.newPage());
  page.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(`console error: ${m.text()}`);
  });
  const close = async () => {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  };
  return { page, errors, close };
}

// Appends one `metric.recorded` for run r-0001, signed by the demo's runner key, through the
// server at `url` with the `assay` binary `bin`; returns the acknowledgement ({seq, digest}).
export function appendProbe(bin, url, demoDir, name, value) {
  const out = execFileSync(bin, [
    "append",
    "--server", url,
    "--key", join(demoDir, "keys", "runner-gpu-node-1.key"),
    "--type", "metric.recorded",
    "--subject", "run/r-0001",
    "--data", JSON.stringify({ run: "r-0001", name, step: 1, value, unit: "x" }),
    "--json",
  ]).toString();
  return JSON.parse(out.trim().split("\n").pop());
}
