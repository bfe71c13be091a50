// The recipe's stages called from TypeScript, no argv: task -> SFT -> sample -> verify -> pairs -> DPO on a micro
// model, each with its typed config; config errors name the key; a stop request through the AbortSignal ends DPO
// after a step with a checkpoint, and the same config with resume finishes it.

import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
// Everything from the package's entry point, as a user imports it.
import {
  dpo,
  dpoConfig,
  InputError,
  InterruptedError,
  missingSamplesText,
  pairsConfig,
  pairsSummaryText,
  resolveConfig,
  type StageContext,
  sample,
  sampleConfig,
  sampleSummaryText,
  sft,
  sftConfig,
  taskConfig,
  verifyConfig,
  verifyFile,
  writePairs,
  writeTask,
} from "../index.js";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stepwise-stages-"));
const at = (f: string) => path.join(dir, f);
const lines = (f: string) =>
  fs
    .readFileSync(f, "utf8")
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l));

test("stages from TypeScript: task, sft, sample, verify, pairs, dpo (stopped by the signal, then resumed)", async () => {
  const logged: string[] = [];
  const ctx: StageContext = { log: (m) => logged.push(m) };
  await writeTask(taskConfig({ preset: "easy", n: 40, seed: 3 }), at("train.jsonl"), ctx);
  assert.equal(lines(at("train.jsonl")).length, 40);

  const trained = await sft(
    sftConfig({
      data: at("train.jsonl"),
      init: "tiny",
      tokenizer: "chars",
      out: at("sft"),
      batch_size: 8,
      lr: 3e-3,
      seed: 1,
    }),
    ctx,
  );
  assert.equal(trained.kind, "sft");
  assert.equal(trained.steps, 5); // 40 examples, batches of 8, one epoch
  assert.ok(Number.isFinite(trained.loss));
  assert.ok(fs.existsSync(at("sft/model.safetensors")));

  const s = await sample(
    sampleConfig({
      model: at("sft"),
      problems: at("train.jsonl"),
      out: at("samples.jsonl"),
      n: 3,
      max_tokens: 30,
      seed: 1,
    }),
    ctx,
  );
  assert.equal(s.written, 120);
  // the summaries the commands print are library functions too
  assert.match(sampleSummaryText(s), /^sampled 120 \(0 already present\) of 120 for 40 problems into /);
  assert.equal(missingSamplesText(s), null);
  assert.match(
    missingSamplesText({ ...s, missing: [{ id: "p7", sample: 2 }], last_error: "HTTP 500" }) ?? "",
    /^1 of 120 samples are missing: .*HTTP 500.*\n {2}"p7": sample 2\n/,
  );
  const v = await verifyFile(verifyConfig({ task: "arith", in: at("samples.jsonl"), out: at("verified.jsonl") }), ctx);
  assert.equal(v.n, 120);
  assert.equal(v.correct + v.incorrect + v.undecided, 120);

  // A random-ish micro model rarely solves a problem: pairs from hand-made verified records instead, so the
  // DPO stage below has something to train on whatever the samples were.
  const verified = lines(at("verified.jsonl"))
    .slice(0, 6)
    .flatMap((r, i) => [
      { ...r, sample: 0, completion: r.answer, correct: true, first_error_step: null, steps: [] },
      {
        ...r,
        sample: 1,
        completion: `${i} + 1 = <<${i}+1=9>>9\n#### 9`,
        correct: false,
        first_error_step: 0,
        steps: [],
      },
    ]);
  fs.writeFileSync(at("hand-verified.jsonl"), verified.map((r) => JSON.stringify(r)).join("\n") + "\n");
  const p = await writePairs(
    pairsConfig({
      kind: "outcome",
      task: "arith",
      chosen: "answer",
      in: at("hand-verified.jsonl"),
      out: at("pairs.jsonl"),
    }),
    ctx,
  );
  assert.equal(p.pairs, 6);
  assert.match(
    pairsSummaryText(p),
    /^6 outcome pairs \(trl format\) from 12 samples of 2 problems into .*; 2 problems have pairs/,
  );
  assert.deepEqual(Object.keys(lines(at("pairs.jsonl"))[0]).slice(0, 3), ["prompt", "chosen", "rejected"]);

  // Stopped through the signal after the first step: a checkpoint of it exists; resume finishes the run.
  const stop = new AbortController();
  const config = dpoConfig({
    model: at("sft"),
    pairs: at("pairs.jsonl"),
    out: at("dpo"),
    batch_size: 2,
    beta: 0.5,
    lr: 1e-4,
    save_every: 1,
  });
  let steps = 0;
  const quiet = { set() {}, tick() {}, note() {}, finish() {} };
  const stopping: StageContext = {
    ...ctx,
    signal: stop.signal,
    // the training bar asks to stop once step 1 is done (the reference pass before it has its own bar)
    progress: (label) =>
      label !== "dpo"
        ? quiet
        : {
            ...quiet,
            set: (n) => {
              steps = n;
              if (n >= 1) stop.abort("SIGTERM");
            },
          },
  };
  await assert.rejects(
    dpo(config, stopping),
    (e: unknown) =>
      e instanceof InterruptedError && e.signal === "SIGTERM" && /stopped after step 1 of 3/.test(e.message),
  );
  assert.equal(steps, 1);
  const done = await dpo({ ...config, resume: true }, ctx);
  assert.equal(done.steps, 3);
  assert.equal(done.resumed_from, 1);
  assert.ok(fs.existsSync(at("dpo/model.safetensors")));

  // SFT replay: one example of the SFT data per pair joins each batch; its mean token loss is logged as replay_loss.
  const replayed = await dpo(dpoConfig({ ...config, out: at("dpo-replay"), replay: at("train.jsonl") }), ctx);
  assert.equal(replayed.steps, 3);
  const metrics = lines(at("dpo-replay/metrics.jsonl")).filter((r) => r.loss !== undefined);
  assert.ok(metrics.length > 0 && metrics.every((r) => r.replay_loss > 0 && Number.isFinite(r.replay_loss)));
  assert.ok(lines(at("dpo/metrics.jsonl")).every((r) => r.replay_loss === undefined));
  assert.equal(JSON.parse(fs.readFileSync(at("dpo-replay/train_config.json"), "utf8")).replay, at("train.jsonl"));
});

test("stage configs: one validator per knob, errors name the key; the run config's variants use the DPO stage's", () => {
  const bad = (f: () => unknown, re: RegExp) =>
    assert.throws(f, (e: unknown) => e instanceof InputError && re.test(e.message), String(re));
  bad(() => dpoConfig({ model: "m", pairs: "p", out: "o", beta: 0 }), /^beta: expected a number > 0, got 0/);
  bad(
    () => dpoConfig({ model: "m", pairs: "p", out: "o", label_smoothing: 0.5 }),
    /^label_smoothing: expected a number in \[0, 0\.5\)/,
  );
  bad(() => dpoConfig({ model: "m", pairs: "p", out: "o", loss: "sigmoid,nope" }), /^loss: /);
  bad(() => dpoConfig({ pairs: "p", out: "o" }), /^model is required/);
  bad(() => sftConfig({ data: "d", out: "o" }), /give model or init/);
  bad(
    () => sftConfig({ data: "d", init: "tiny", out: "o", batch_size: 0 }),
    /^batch_size: expected an integer >= 1, got 0/,
  );
  bad(() => sampleConfig({ problems: "p", out: "o", top_p: 2 }), /^top_p: expected a number in \(0, 1\]/);
  bad(() => pairsConfig({ kind: "best", in: "v", out: "o" }), /^kind: expected outcome or scdpo or stepdpo/);
  bad(() => taskConfig({ split: "dev" }), /^split: expected train or test/);
  // Defaults live with the stage: DPO's beta is 0.1 unless the run config (or a caller) says otherwise.
  assert.equal(dpoConfig({ model: "m", pairs: "p", out: "o" }).beta, 0.1);
  // A run config's variant is checked by the same validators when the config is parsed, before any stage runs.
  bad(
    () => resolveConfig({ variants: [{ name: "r", pairs: ["outcome"], loss: "robust", label_smoothing: 0.7 }] }),
    /variants\[0\]\.label_smoothing: expected a number in \[0, 0\.5\)/,
  );
  bad(() => resolveConfig({ variants: [{ name: "x", pairs: ["outcome"], loss: "sigmod" }] }), /variants\[0\]\.loss: /);
  bad(
    () => resolveConfig({ variants: [{ name: "x", pairs: ["stepdpo"], replay: "chosen", replay_weight: 0 }] }),
    /variants\[0\]\.replay_weight: expected a number > 0/,
  );
  bad(() => resolveConfig({ variants: [{ name: "x", pairs: ["stepdpo"], replay: "all" }] }), /variants\[0\]\.replay: /);
  bad(() => resolveConfig({ dpo: { batch_size: 0 } }), /dpo\.batch_size: expected an integer >= 1, got 0/);
  // Every section's values are range-checked when the config is parsed, under their dotted names (#15 item 5).
  bad(() => resolveConfig({ sft: { lr: -1 } }), /sft\.lr: expected a number > 0, got -1/);
  bad(() => resolveConfig({ sft: { max_length: -5 } }), /sft\.max_length: expected an integer >= 1, got -5/);
  bad(() => resolveConfig({ model: { vocab_size: 0 } }), /model\.vocab_size: expected an integer >= 264, got 0/);
  bad(() => resolveConfig({ pairs: { max_per_problem: 0 } }), /pairs\.max_per_problem: expected an integer >= 1/);
  bad(() => resolveConfig({ pairs: { stepdpo_rollouts: 0 } }), /pairs\.stepdpo_rollouts: expected an integer >= 1/);
  bad(() => resolveConfig({ eval: { maj: -1 } }), /eval\.maj: expected an integer >= 0, got -1/);
  bad(() => resolveConfig({ sample: { temperature: -0.5 } }), /sample\.temperature: expected a number >= 0/);
});
