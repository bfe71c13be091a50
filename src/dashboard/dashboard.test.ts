// The dashboard's API on a real pipeline run made with the CLI: discovery, metrics polling (torn lines, resets),
// evals, pairs with the first differing step, credit against `stepwise score`, and refused paths.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { EVALS, makePipelineRun, PAIRS, STEP_PAIR } from "./fixture.js";
import { firstDifferingStep, pairView } from "./pairs.js";
import { discoverRuns, type HttpError, readMetrics, resolveInside } from "./runs.js";
import { DashboardServer } from "./server.js";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "stepwise-dashboard-"));
const runs = path.join(root, "runs");
let server: DashboardServer;
let base = "";

before(async () => {
  fs.mkdirSync(runs);
  makePipelineRun(runs);
  server = new DashboardServer({ root: runs });
  base = await server.listen(0);
});

after(async () => {
  await server?.close();
  fs.rmSync(root, { recursive: true, force: true });
});

// biome-ignore lint/suspicious/noExplicitAny: the server's JSON, read field by field by the assertions below
async function get(url: string, init?: RequestInit): Promise<{ status: number; body: any }> {
  const res = await fetch(base + url, init);
  return { status: res.status, body: await res.json() };
}

test("readMetrics keeps numbers, skips bad lines, leaves a torn last line for later, and notices a rewrite", () => {
  const f = path.join(root, "m.jsonl");
  fs.writeFileSync(f, '{"step":1,"loss":2.5,"note":"x"}\nnot json\n{"step":2,"loss":2.25}\n{"step":3,"lo');
  let c = readMetrics(f, 0);
  assert.deepEqual(c.records, [
    { step: 1, loss: 2.5 },
    { step: 2, loss: 2.25 },
  ]);
  assert.equal(c.next, 2);
  fs.appendFileSync(f, 'ss":2}\n');
  c = readMetrics(f, c.next);
  assert.deepEqual(c, { records: [{ step: 3, loss: 2 }], next: 3, reset: false });
  fs.writeFileSync(f, '{"step":1,"loss":9}\n'); // a resumed run rewrote the file
  c = readMetrics(f, 3);
  assert.deepEqual(c, { records: [{ step: 1, loss: 9 }], next: 1, reset: true });
  assert.deepEqual(readMetrics(path.join(root, "missing.jsonl"), 0), { records: [], next: 0, reset: false });
});

test("resolveInside refuses .., absolute paths and symlinks out of the root", () => {
  const status = (rel: string) => {
    try {
      resolveInside(runs, rel, "run");
      return 200;
    } catch (e) {
      return (e as HttpError).status;
    }
  };
  fs.symlinkSync(os.tmpdir(), path.join(runs, "escape"));
  try {
    assert.equal(status("pipe/seed-1/sft"), 200);
    assert.equal(status("pipe/../pipe"), 400);
    assert.equal(status(".."), 400);
    assert.equal(status("/etc"), 400);
    assert.equal(status("pipe\\..\\.."), 400);
    assert.equal(status("escape"), 400);
    assert.equal(status("nope"), 404);
  } finally {
    fs.unlinkSync(path.join(runs, "escape"));
  }
});

test("pairs: the first differing step, Step-DPO full solutions, bad lines", () => {
  assert.equal(firstDifferingStep(["a", "b", "c"], ["a", "b ", "d"]), 2);
  assert.equal(firstDifferingStep(["a"], ["a", "b"]), 1);
  assert.equal(firstDifferingStep(["a"], ["a"]), null);
  const v = pairView(1, JSON.stringify(PAIRS[0]));
  assert.deepEqual(v.chosen_steps, ["5 + 3 = <<5+3=8>>8", "8 * 2 = <<8*2=16>>16", "#### 16"]);
  assert.equal(v.first_diff, 1);
  assert.equal(v.context, PAIRS[0].prompt, "a TRL prompt is the context as it is");
  const step = pairView(2, JSON.stringify({ ...STEP_PAIR, prompt: "Cy has 5 cards. How many?" }));
  assert.equal(
    step.context,
    "Cy has 5 cards. How many?\n5 + 3 = <<5+3=8>>8\n",
    "Step-DPO: prompt text of the question + steps",
  );
  assert.equal(step.first_diff, 1, "Step-DPO pairs compare the full solutions");
  assert.match(pairView(3, "{").error ?? "", /not valid JSON/);
  assert.equal(pairView(4, '{"prompt":"x","chosen":"y"}').error, "missing chosen or rejected");
});

test("discovery: the pipeline run with its training runs nested, checkpoints skipped", () => {
  const found = discoverRuns(runs);
  assert.deepEqual(
    found.map((r) => [r.id, r.kind, r.parent, r.isModel]),
    [
      ["pipe", "pipeline", null, false],
      ["pipe/seed-1/dpo", "training", "pipe", true],
      ["pipe/seed-1/sft", "training", "pipe", true],
    ],
  );
  const sft = found[2];
  assert.equal(sft.stage, "sft");
  const lines = fs.readFileSync(path.join(runs, "pipe/seed-1/sft/metrics.jsonl"), "utf8").trim().split("\n");
  assert.equal(sft.steps, lines.length);
  assert.equal(sft.last?.loss, JSON.parse(lines[lines.length - 1]).loss);
});

test("GET /api/runs, /api/runs/:id and /api/runs/:id/metrics?since=N follow metrics.jsonl as it grows", async () => {
  const r = await get("/api/runs");
  assert.equal(r.status, 200);
  assert.equal(r.body.runs.length, 3);
  const detail = await get("/api/runs/pipe");
  assert.deepEqual(
    detail.body.children.map((c: { id: string }) => c.id),
    ["pipe/seed-1/dpo", "pipe/seed-1/sft"],
  );
  assert.deepEqual(detail.body.pair_files, ["seed-1/pairs/outcome.jsonl", "seed-1/pairs/stepdpo.jsonl"]);
  assert.deepEqual(detail.body.credit, { model: "pipe/seed-1/dpo", ref: "pipe/seed-1/sft", beta: 0.1 });
  assert.deepEqual(detail.body.pair_counts, { "seed-1/pairs/outcome.jsonl": 2, "seed-1/pairs/stepdpo.jsonl": 1 });
  assert.deepEqual(detail.body.skipped, [{ dir: "seed-1/step-dpo", reason: "no stepdpo pairs" }]);
  const dpo = await get(`/api/runs/${encodeURIComponent("pipe/seed-1/dpo")}`);
  assert.deepEqual(dpo.body.credit, { model: "pipe/seed-1/dpo", ref: "pipe/seed-1/sft", beta: 0.1 });

  const id = encodeURIComponent("pipe/seed-1/dpo");
  const file = path.join(runs, "pipe/seed-1/dpo/metrics.jsonl");
  const n = fs.readFileSync(file, "utf8").trim().split("\n").length;
  let m = await get(`/api/runs/${id}/metrics`);
  assert.equal(m.body.records.length, n);
  for (const k of ["loss", "rewards/accuracies", "rewards/margins", "learning_rate"])
    assert.equal(typeof m.body.records[0][k], "number", k);
  fs.appendFileSync(file, JSON.stringify({ step: n + 1, loss: 0.5, "rewards/margins": 1.25 }) + '\n{"step":');
  m = await get(`/api/runs/${id}/metrics?since=${m.body.next}`);
  assert.deepEqual(m.body, {
    records: [{ step: n + 1, loss: 0.5, "rewards/margins": 1.25 }],
    next: n + 1,
    reset: false,
  });
});

test("GET evals and pairs", async () => {
  const ev = await get("/api/runs/pipe/evals");
  assert.equal(ev.status, 200);
  assert.deepEqual(
    ev.body.report.variants.map((v: { name: string }) => v.name),
    ["sft", "dpo"],
  );
  const sft = ev.body.tables.find((t: { variant: string }) => t.variant === "sft");
  const want = EVALS.sft as Record<string, unknown>;
  assert.deepEqual(
    [sft.seed, sft.file, sft.accuracy, sft.n, sft.ci95, sft.by_steps, sft.by_level],
    ["seed-1", "seed-1/eval/sft.json", want.accuracy, want.n, want.ci95, want.by_steps, want.by_level],
  );
  assert.deepEqual(ev.body.tables.find((t: { variant: string }) => t.variant === "dpo").by_level, []); // none in its eval

  const page = await get(
    `/api/runs/pipe/pairs?file=${encodeURIComponent("seed-1/pairs/outcome.jsonl")}&offset=1&limit=5`,
  );
  assert.equal(page.status, 200);
  assert.equal(page.body.total, 2);
  assert.equal(page.body.pairs.length, 1);
  assert.equal(page.body.pairs[0].id, "p2");
  assert.equal(page.body.pairs[0].first_diff, 0);
  const files = await get("/api/runs/pipe/pairs");
  assert.equal(files.body.files.length, 2);
});

test("clear 400s, 404s and 405s; nothing outside --runs is read", async () => {
  const cases: [string, number, RegExp][] = [
    [`/api/runs/${encodeURIComponent("../..")}/metrics`, 400, /refused/],
    [`/api/runs/${encodeURIComponent("/etc")}`, 400, /relative path/],
    ["/api/runs/nope/metrics", 404, /no run "nope"/],
    ["/api/runs/pipe%2Fseed-1/metrics", 404, /no run "pipe\/seed-1"/],
    ["/api/runs/pipe/metrics?since=-1", 400, /since must be an integer/],
    ["/api/runs/pipe/what", 404, /no such endpoint/],
    [`/api/runs/pipe/pairs?file=${encodeURIComponent("../problems.jsonl")}`, 400, /refused/],
    ["/api/runs/pipe/pairs?file=report.json", 400, /\.jsonl/],
    ["/api/runs/pipe/pairs?file=seed-1/pairs/none.jsonl", 404, /no pair file/],
    ["/api/runs/%E0%A4%A/metrics", 400, /percent-encoding/],
    ["/nothing", 404, /no such endpoint/],
  ];
  for (const [url, status, msg] of cases) {
    const r = await get(url);
    assert.equal(r.status, status, url);
    assert.match(r.body.error, msg, url);
  }
  assert.equal((await get("/api/credit")).status, 405);
  const port = new URL(base).port;
  const rebound = await new Promise<number>((resolve, reject) => {
    http
      .get({ host: "127.0.0.1", port, path: "/api/runs", headers: { host: `evil.example:${port}` } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
      .on("error", reject);
  });
  assert.equal(rebound, 403, "a foreign Host header is refused");
  assert.equal((await get("/api/runs", { method: "DELETE" })).status, 405);
});

test("POST /api/credit gives stepwise score's per-token rewards, with the prompt's tokens counted; models are cached", async () => {
  const post = (body: unknown) => get("/api/credit", { method: "POST", body: JSON.stringify(body) });
  const prompt = PAIRS[0].prompt;
  const text = PAIRS[0].rejected;
  const r = await post({ model: "pipe/seed-1/dpo", ref: "pipe/seed-1/sft", prompt, text, beta: 0.1 });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const bin = new URL("../../bin/stepwise.js", import.meta.url).pathname;
  const cli = spawnSync(
    process.execPath,
    [
      bin,
      "score",
      "--model",
      "pipe/seed-1/dpo",
      "--ref",
      "pipe/seed-1/sft",
      "--text",
      prompt + text,
      "--beta",
      "0.1",
      "--json",
    ],
    { cwd: runs, encoding: "utf8" },
  );
  assert.equal(cli.status, 0, cli.stderr);
  const want = JSON.parse(cli.stdout);
  assert.deepEqual(
    r.body.tokens.map((t: { id: number }) => t.id),
    want.tokens.map((t: { id: number }) => t.id),
  );
  r.body.tokens.forEach((t: { reward: number | null }, i: number) => {
    const w = want.tokens[i].reward;
    if (w === null) assert.equal(t.reward, null);
    else assert.ok(Math.abs(t.reward! - w) < 1e-9, `token ${i}: ${t.reward} vs ${w}`);
  });
  assert.ok(r.body.prompt_tokens > 1 && r.body.prompt_tokens < r.body.tokens.length);
  const completion = r.body.tokens
    .slice(r.body.prompt_tokens)
    .reduce((s: number, t: { reward: number }) => s + t.reward, 0);
  assert.ok(Math.abs(r.body.completion_reward - completion) < 1e-12);
  assert.equal(server.models.loads, 2);
  assert.equal((await post({ model: "pipe/seed-1/dpo", ref: "pipe/seed-1/sft", text: "7" })).status, 200);
  assert.equal(server.models.loads, 2, "the second request reuses the loaded models");

  const bad: [unknown, number, RegExp][] = [
    [{ model: "pipe", ref: "pipe/seed-1/sft", text: "x" }, 404, /not a model folder/],
    [{ model: "../x", ref: "pipe/seed-1/sft", text: "x" }, 400, /refused/],
    [{ model: "pipe/seed-1/dpo", ref: "pipe/seed-1/sft" }, 400, /"text" must be a string/],
    [{ model: "pipe/seed-1/dpo", ref: "pipe/seed-1/sft", text: "x", beta: -1 }, 400, /beta/],
    [[1], 400, /JSON object/],
  ];
  for (const [body, status, msg] of bad) {
    const res = await post(body);
    assert.equal(res.status, status, JSON.stringify(body));
    assert.match(res.body.error, msg);
  }
  const notJson = await get("/api/credit", { method: "POST", body: "{" });
  assert.equal(notJson.status, 400);
});

test("--runs may be one run directory: its id is ~", async () => {
  const one = new DashboardServer({ root: path.join(runs, "pipe/seed-1/sft") });
  const url = await one.listen(0);
  try {
    const list = await (await fetch(`${url}/api/runs`)).json();
    assert.deepEqual(
      list.runs.map((r: { id: string }) => r.id),
      ["~"],
    );
    const m = await (await fetch(`${url}/api/runs/~/metrics`)).json();
    assert.ok(m.records.length > 0);
    const d = await (await fetch(`${url}/api/runs/~`)).json();
    assert.deepEqual(d.credit, { model: "~", ref: null, beta: 0.1 }, "the reference lies outside --runs: not offered");
  } finally {
    await one.close();
  }
  assert.throws(() => new DashboardServer({ root: path.join(runs, "nope") }), /not a directory/);
});

test("the page, the front end and uPlot are served locally", async () => {
  for (const [url, type] of [
    ["/", "text/html"],
    ["/web/app.js", "text/javascript"],
    ["/vendor/uPlot.esm.js", "text/javascript"],
    ["/vendor/uPlot.min.css", "text/css"],
  ]) {
    const res = await fetch(base + url);
    assert.equal(res.status, 200, url);
    assert.ok(res.headers.get("content-type")?.startsWith(type), url);
    assert.ok((await res.text()).length > 100, url);
  }
});

test("every module the front end imports is served: web/app.js's relative imports, the trainer's metric names", async () => {
  const app = await (await fetch(`${base}/web/app.js`)).text();
  const specifiers = [...app.matchAll(/^import\s[^;]*?from\s*"([^"]+)"/gm)]
    .map((m) => m[1])
    .filter((s) => s.startsWith("."));
  assert.ok(specifiers.includes("../../train/metrics.js"), specifiers.join(", "));
  for (const s of specifiers) {
    const url = new URL(s, `${base}/web/app.js`);
    const res = await fetch(url);
    assert.equal(res.status, 200, `${s} -> ${url.pathname}`);
    assert.ok(res.headers.get("content-type")?.startsWith("text/javascript"), url.pathname);
    assert.doesNotMatch(
      await res.text(),
      /^import\s/m,
      `${url.pathname} must import nothing: the server sends no module for it`,
    );
  }
});
