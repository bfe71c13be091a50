// The dashboard in a real headless Chromium (Debian's /usr/bin/chromium driven by playwright-core) over a pipeline
// run made at test time: the charts and tables show the run's numbers, a line appended to metrics.jsonl shows up
// live, the pair browser marks the first differing step, and the credit tab draws a heatmap. Screenshots are written
// to test-artifacts/dashboard/. Without Chromium this fails with a message, unless STEPWISE_SKIP_BROWSER=1.

import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { chromium, type Browser, type Page } from "playwright-core";
import { EVALS, makePipelineRun } from "./fixture.js";
import { DashboardServer } from "./server.js";

const CHROMIUM = process.env.STEPWISE_CHROMIUM ?? "/usr/bin/chromium";
const skip =
  process.env.STEPWISE_SKIP_BROWSER === "1" && !fs.existsSync(CHROMIUM)
    ? `no Chromium at ${CHROMIUM} (STEPWISE_SKIP_BROWSER=1)`
    : false;
const artifacts = new URL("../../test-artifacts/dashboard/", import.meta.url).pathname;

const root = fs.mkdtempSync(path.join(os.tmpdir(), "stepwise-dashboard-e2e-"));
let server: DashboardServer;
let base = "";
let browser: Browser | undefined;
let page: Page;
const pageErrors: string[] = [];

before(async () => {
  if (skip) return;
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(
      `the dashboard's browser tests need Chromium at ${CHROMIUM}: install it with ` +
        "`apt-get install -y chromium` (or set STEPWISE_CHROMIUM=/path/to/chrome), or set STEPWISE_SKIP_BROWSER=1 to skip them",
    );
  }
  fs.mkdirSync(artifacts, { recursive: true });
  fs.writeFileSync(path.join(artifacts, "..", ".gitignore"), "*\n");
  makePipelineRun(root);
  server = new DashboardServer({ root });
  base = await server.listen(0);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
  page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.on("pageerror", (e) => pageErrors.push(e.message));
  page.on("console", (m) => {
    if (m.type() === "error") pageErrors.push(`${m.text()} (${m.location().url})`);
  });
});

after(async () => {
  await browser?.close();
  await server?.close();
  fs.rmSync(root, { recursive: true, force: true });
});

// A goto that changes only the hash does not reload the page, and the last run's tables would satisfy the next
// test's waits: each open starts from a blank page.
async function open(id: string, tab: string) {
  await page.goto("about:blank");
  await page.goto(`${base}/?poll=200#${new URLSearchParams({ run: id, tab })}`);
}
const shot = (name: string) => page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true });

function metricsOf(id: string): Record<string, number>[] {
  return fs
    .readFileSync(path.join(root, id, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
}

test("runs list and the SFT run's charts: last values from metrics.jsonl, eval_loss beside loss", {
  skip,
}, async () => {
  await open("pipe/seed-1/sft", "metrics");
  await page.waitForSelector("#latest-table");
  assert.deepEqual(await page.$$eval("#runs a[data-run]", (as) => as.map((a) => a.getAttribute("data-run"))), [
    "pipe",
    "pipe/seed-1/dpo",
    "pipe/seed-1/sft",
  ]);
  const records = metricsOf("pipe/seed-1/sft");
  const last = records[records.length - 1];
  const shown = await page.$eval('#latest-table tr[data-metric="loss"] td.num', (td) =>
    Number((td as HTMLElement).dataset.value),
  );
  assert.equal(shown, last.loss);
  assert.equal(
    await page.textContent('#latest-table tr[data-metric="loss"] td.num'),
    String(Number(last.loss.toPrecision(6))),
  );
  const charts = await page.$$eval("[data-chart]", (cs) => cs.map((c) => c.getAttribute("data-chart")));
  for (const name of ["loss", "learning_rate", "grad_norm", "num_tokens"])
    assert.ok(charts.includes(name), `chart ${name}`);
  assert.equal(charts[0], "loss");
  const lossLegend = await page.textContent('[data-chart="loss"] .u-legend');
  assert.match(lossLegend ?? "", /eval_loss/);
  assert.equal(await page.getAttribute('[data-chart="loss"]', "data-points"), String(records.length));
  await shot("sft-metrics");
});

test("a DPO run's reward charts update live as metrics.jsonl grows (torn line first)", { skip }, async () => {
  const id = "pipe/seed-1/dpo";
  await open(id, "metrics");
  await page.waitForSelector("#latest-table");
  const charts = await page.$$eval("[data-chart]", (cs) => cs.map((c) => c.getAttribute("data-chart")));
  for (const name of ["loss", "rewards/accuracies", "rewards/margins", "rewards/chosen", "learning_rate"]) {
    assert.ok(charts.includes(name), `chart ${name}`);
  }
  const n = metricsOf(id).length;
  assert.equal(await page.getAttribute('[data-chart="loss"]', "data-points"), String(n));
  const file = path.join(root, id, "metrics.jsonl");
  const next = {
    ...metricsOf(id)[n - 1],
    step: n + 1,
    loss: 0.123456,
    "rewards/margins": 0.75,
    "rewards/accuracies": 1,
  };
  const line = JSON.stringify(next);
  fs.appendFileSync(file, line.slice(0, 20)); // the trainer is mid-write
  await page.waitForTimeout(500);
  assert.equal(await page.getAttribute('[data-chart="loss"]', "data-points"), String(n), "a torn line is not shown");
  fs.appendFileSync(file, line.slice(20) + "\n");
  await page.waitForSelector(`[data-chart="loss"][data-points="${n + 1}"]`, { timeout: 5000 });
  await page.waitForSelector('#latest-table tr[data-metric="loss"] td[data-value="0.123456"]', { timeout: 5000 });
  assert.equal(await page.textContent('#latest-table tr[data-metric="rewards/margins"] td.num'), "0.75");
  await shot("dpo-metrics-live");
});

test("the pipeline's report and eval tables match report.json and eval/*.json", { skip }, async () => {
  await open("pipe", "metrics");
  await page.waitForSelector("#children-table");
  assert.equal(await page.$$eval("#children-table tbody tr", (rs) => rs.length), 2);
  assert.match((await page.textContent(".skipped")) ?? "", /seed-1\/step-dpo \(no stepdpo pairs\)/);
  await page.waitForSelector('[data-compare="rewards/margins"]');
  assert.match((await page.textContent('[data-compare="loss"] .u-legend')) ?? "", /dpo/);
  await shot("pipeline-overview");
  await page.click('button[data-tab="evals"]');
  await page.waitForSelector("#eval-table");
  for (const [variant, e] of Object.entries(EVALS) as [string, { accuracy: number; n: number }][]) {
    const row = `#eval-table tr[data-file="seed-1/eval/${variant}.json"]`;
    const cells = await page.$$eval(`${row} td`, (tds) =>
      tds.map((td) => [td.textContent, (td as HTMLElement).dataset.value ?? null]),
    );
    assert.equal(cells[1][0], variant);
    assert.equal(Number(cells[2][1]), e.accuracy);
    assert.equal(cells[2][0], `${(100 * e.accuracy).toFixed(1)}%`);
    assert.equal(Number(cells[3][1]), e.n);
  }
  assert.equal(await page.textContent('#report-table tr[data-variant="dpo"] td.num'), "75.0%");
  assert.ok(await page.$("#by-steps-table"));
  assert.deepEqual(await page.$$eval("#by-level-table th", (ths) => ths.map((th) => th.textContent)), [
    "seed",
    "variant",
    "easy",
    "medium",
  ]);
  await shot("pipeline-evals");
});

test("the pair browser marks the first differing step; the credit tab draws the rejected side's heatmap", {
  skip,
}, async () => {
  await open("pipe", "pairs");
  await page.waitForSelector(".pair");
  const first = '.pair[data-line="1"]';
  assert.equal(await page.textContent(`${first} .chosen .step.diff-first`), "8 * 2 = <<8*2=16>>16");
  assert.equal(await page.textContent(`${first} .rejected .step.diff-first`), "8 * 3 = <<8*3=24>>24");
  assert.deepEqual(await page.$$eval(`${first} .rejected .step`, (s) => s.map((x) => x.className)), [
    "step same",
    "step diff-first",
    "step after",
  ]);
  assert.match((await page.textContent(`${first} .first-diff`)) ?? "", /first differing step: 2/);
  await page.selectOption("#pair-file", "seed-1/pairs/stepdpo.jsonl");
  await page.waitForSelector('.pair[data-line="1"] .muted:has-text("5 + 3")');
  assert.equal(await page.textContent('.pair[data-line="1"] .rejected .step.diff-first'), "8 * 3 = <<8*3=24>>24");
  await page.selectOption("#pair-file", "seed-1/pairs/outcome.jsonl");
  await page.waitForSelector(`${first} .chosen .step.diff-first:has-text("8 * 2")`);
  await shot("pairs");

  await page.click(`${first} button[data-credit="rejected"]`);
  await page.waitForSelector("#heatmap .tok", { timeout: 15000 });
  assert.equal(await page.inputValue("#credit-model"), "pipe/seed-1/dpo");
  assert.equal(await page.inputValue("#credit-ref"), "pipe/seed-1/sft");
  const toks = await page.$$eval("#heatmap .tok", (ts) =>
    ts.map((t) => ({
      text: t.textContent,
      prompt: t.classList.contains("prompt-tok"),
      bg: (t as HTMLElement).style.background,
    })),
  );
  assert.ok(toks.some((t) => t.prompt) && toks.some((t) => !t.prompt), "prompt tokens are marked");
  assert.ok(toks.filter((t) => t.bg.startsWith("rgb")).length >= toks.length - 1, "every scored token is coloured");
  assert.ok(
    toks
      .map((t) => t.text)
      .join("")
      .includes("24"),
    "the rejected completion is scored",
  );
  assert.ok(Number.isFinite(Number(await page.textContent("#completion-reward"))));
  await shot("credit-heatmap");
  assert.deepEqual(pageErrors, [], "no errors in the page");
});
