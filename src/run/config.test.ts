import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { InputError } from "../core/errors.js";
import { DEFAULT_CONFIG, loadConfig, resolveConfig } from "./config.js";
import { StageCache, stageKey } from "./stages.js";
import { smooth, summarize, summaryTable, type SeedEval } from "./report.js";

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "stepwise-run-"));

test("an empty config is the default; a partial one overrides only what it names", () => {
  assert.deepEqual(resolveConfig({}), DEFAULT_CONFIG);
  const c = resolveConfig({ sft: { lr: 0.01 }, task: { steps: "2-4" } });
  assert.equal(c.sft.lr, 0.01);
  assert.equal(c.sft.epochs, DEFAULT_CONFIG.sft.epochs);
  assert.equal(c.task.steps, "2-4");
  assert.equal(c.variants.length, DEFAULT_CONFIG.variants.length);
});

test("unknown keys and wrong types are errors naming the key", () => {
  const err = (raw: unknown, re: RegExp) =>
    assert.throws(
      () => resolveConfig(raw, "cfg.yaml"),
      (e: Error) => e instanceof InputError && re.test(e.message),
    );
  err({ sft: { learning_rate: 1 } }, /unknown key "sft.learning_rate"/);
  err({ sft: { lr: "fast" } }, /sft\.lr: expected a number, got "fast"/);
  err({ sft: { lr_schedule: "step" } }, /sft\.lr_schedule: expected cosine or linear or constant, got "step"/);
  assert.equal(resolveConfig({ sft: { lr_schedule: "constant" } }).sft.lr_schedule, "constant");
  err({ seeds: 0 }, /seeds: expected an integer >= 1/);
  err({ sft: 3 }, /sft: expected a mapping/);
  err({ variants: [{ name: "x", pairs: ["outcome", "bogus"] }] }, /variants\[0\]\.pairs: unknown pair kind "bogus"/);
  err(
    { variants: [{ name: "x", pairs: ["outcome"], learning_rate: 1 }] },
    /unknown key "variants\[0\]\.learning_rate"/,
  );
  // every variant knob is checked before the first stage runs
  err(
    { variants: [{ name: "x", pairs: ["outcome"], loss: "sigmoid,bogus" }] },
    /variants\[0\]\.loss: unknown loss "bogus"/,
  );
  err(
    { variants: [{ name: "x", pairs: ["outcome"], loss: "sigmoid,sft", loss_weights: "1" }] },
    /variants\[0\]\.loss: --loss-weights/,
  );
  err({ variants: [{ name: "x", pairs: ["outcome"], beta: 0 }] }, /variants\[0\]\.beta: expected a number > 0/);
  err(
    { variants: [{ name: "x", pairs: ["outcome"], epochs: 1.5 }] },
    /variants\[0\]\.epochs: expected an integer >= 1/,
  );
  err(
    { variants: [{ name: "x", pairs: ["outcome"], rejected: "half" }] },
    /variants\[0\]\.rejected: expected full or first_error/,
  );
  err({ variants: [{ name: "x", pairs: ["stepdpo"], stepdpo_chosen: "x" }] }, /variants\[0\]\.stepdpo_chosen/);
  err({ pairs: { chosen: "lucky" } }, /pairs\.chosen: expected sound or answer/);
  err({ dpo: { beta: -1 } }, /dpo\.beta: expected a number > 0/);
  err({ task: { noise: { kind: "borrow", rate: 1.5 } } }, /task\.noise\.rate/);
  err({ task: { noise: { kind: "typo" } } }, /task\.noise\.kind/);
  const v = resolveConfig({ variants: [{ name: "x", pairs: ["outcome"], lr: 1e-4, rejected: "first_error" }] })
    .variants[0];
  assert.deepEqual([v.lr, v.rejected, v.epochs], [1e-4, "first_error", null]);
  err({ variants: [{ name: "a b", pairs: ["outcome"] }] }, /variants\[0\]\.name/);
  err(
    {
      variants: [
        { name: "x", pairs: ["outcome"] },
        { name: "x", pairs: ["scdpo"] },
      ],
    },
    /used twice/,
  );
  err({ task: { preset: "easy+expert" } }, /task\.preset: expected easy, medium or hard.*"easy\+expert"/);
  assert.equal(resolveConfig({ task: { preset: "easy + hard" } }).task.preset, "easy + hard");
  err({ sample: { problems: 10 }, task: { train: 5 } }, /sample\.problems \(10\) is more than task\.train \(5\)/);
  assert.equal(
    resolveConfig({ threads: null, variants: [{ name: "v", pairs: ["stepdpo"], beta: 0.5 }] }).variants[0].beta,
    0.5,
  );
});

test("loadConfig reads YAML and JSON and names the file on a parse error", () => {
  const dir = tmp();
  fs.writeFileSync(path.join(dir, "a.yaml"), "seeds: 3\nsft:\n  epochs: 1\n");
  fs.writeFileSync(path.join(dir, "b.json"), JSON.stringify({ dpo: { beta: 0.2 } }));
  fs.writeFileSync(path.join(dir, "bad.yaml"), "sft: [1, 2\n");
  assert.equal(loadConfig(path.join(dir, "a.yaml")).seeds, 3);
  assert.equal(loadConfig(path.join(dir, "b.json")).dpo.beta, 0.2);
  assert.throws(
    () => loadConfig(path.join(dir, "bad.yaml")),
    (e: Error) => /bad\.yaml/.test(`${e.message} ${(e as InputError).where}`),
  );
  assert.throws(() => loadConfig(path.join(dir, "missing.yaml")), /no such config file/);
});

test("stage keys are stable under key order and change with any value", () => {
  assert.equal(stageKey({ a: 1, b: [1, { c: 2, d: 3 }] }), stageKey({ b: [1, { d: 3, c: 2 }], a: 1 }));
  assert.notEqual(stageKey({ a: 1 }), stageKey({ a: 2 }));
  assert.notEqual(stageKey("x", 1), stageKey("x", 1, 2));
});

test("the stage cache: done only with the same key and outputs present; a new key clears old outputs", () => {
  const dir = tmp();
  const cache = new StageCache(dir);
  assert.equal(cache.done("s", "k1"), false);
  cache.begin("s", "k1", ["out.txt"]);
  fs.writeFileSync(path.join(dir, "out.txt"), "one");
  assert.equal(cache.done("s", "k1"), false, "not done before finish");
  cache.finish("s", "k1", ["out.txt"], 1.5);
  assert.equal(cache.done("s", "k1"), true);
  assert.equal(cache.done("s", "k2"), false);
  assert.equal(cache.all()[0].seconds, 1.5);
  // an interrupted stage under key k2 leaves its pending marker; running it again under k3 clears its outputs
  cache.begin("s", "k2", ["out.txt"]);
  assert.equal(fs.existsSync(path.join(dir, "out.txt")), false, "k1's output removed when k2 starts");
  fs.writeFileSync(path.join(dir, "out.txt"), "partial");
  cache.begin("s", "k2", ["out.txt"]);
  assert.equal(
    fs.readFileSync(path.join(dir, "out.txt"), "utf8"),
    "partial",
    "same key: a resumable stage keeps its work",
  );
  fs.rmSync(path.join(dir, "out.txt"));
  cache.finish("s", "k2", ["out.txt"], 1);
  assert.equal(cache.done("s", "k2"), false, "a missing output means not done");
});

test("summaries: means over seeds, pooled Wilson interval, spread, accuracy by steps", () => {
  const e = (name: string, seed: number, correct: number, n = 10): SeedEval => ({
    name,
    seed,
    round: 1,
    correct,
    n,
    accuracy: correct / n,
    ci95: [0, 1],
    step_error_rate: 0.1 * seed,
    by_steps: [
      { steps: 2, n: n / 2, accuracy: correct / n },
      { steps: 3, n: n / 2, accuracy: correct / n },
    ],
  });
  const [sft, dpo] = summarize([e("sft", 1, 3), e("sft", 2, 5), e("dpo", 1, 6), e("dpo", 2, 8)]);
  assert.equal(sft.name, "sft");
  assert.equal(sft.accuracy, 0.4);
  assert.ok(Math.abs(sft.spread! - Math.SQRT2 * 0.1) < 1e-12);
  assert.equal(dpo.accuracy, 0.7);
  assert.ok(dpo.ci95[0] < 0.7 && dpo.ci95[1] > 0.7);
  assert.ok(Math.abs(sft.step_error_rate! - 0.15) < 1e-12);
  assert.deepEqual(
    dpo.by_steps.map((b) => b.n),
    [10, 10],
  );
  const table = summaryTable({ format: 1, variants: [sft, dpo], seeds: 2, seconds: 12, config: {} });
  assert.match(table, /dpo\s+70\.0/);
  assert.match(table, /\+30\.0/);
});

test("smooth: a trailing moving average over about 1/25 of the points", () => {
  const pts: [number, number][] = Array.from({ length: 50 }, (_, i) => [i + 1, i % 2 === 0 ? 1 : 3]);
  const s = smooth(pts);
  assert.equal(s.length, 50);
  assert.deepEqual(s[0], [1, 1]); // window 2: the first point alone
  for (const [, y] of s.slice(1)) assert.equal(y, 2);
  assert.deepEqual(smooth([[1, 5]]), [[1, 5]]);
});

test("the shipped examples/ablations.yaml is a valid config: every variant differs from dpo in what it says", () => {
  const c = loadConfig(new URL("../../examples/ablations.yaml", import.meta.url).pathname);
  assert.equal(c.task.noise.kind, "borrow");
  assert.deepEqual(
    c.variants.map((v) => v.name),
    ["dpo", "dpo-answer", "dpo-cut", "dpo-nll", "step-dpo", "step-dpo-min", "scdpo", "scdpo-cut", "sft-more"],
  );
  assert.equal(c.variants.find((v) => v.name === "sft-more")!.loss, "sft");
});

test("every shipped example config parses (a GSM8K one may name files this checkout lacks)", () => {
  const dir = new URL("../../examples/", import.meta.url).pathname;
  const files = fs.readdirSync(dir).filter((f) => f.endsWith(".yaml"));
  assert.ok(files.length >= 5);
  for (const f of files) {
    try {
      loadConfig(path.join(dir, f));
    } catch (e) {
      const text = fs.readFileSync(path.join(dir, f), "utf8");
      assert.ok(
        /source: gsm8k/.test(text) && /no such file/.test((e as Error).message),
        `${f}: ${(e as Error).message}`,
      );
    }
  }
});
