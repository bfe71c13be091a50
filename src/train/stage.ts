// The training stages as library functions: `sft(config, ctx)` and `dpo(config, ctx)` read a JSONL or parquet file
// (src/train/data.ts), train, and write a Hugging Face model folder with metrics.jsonl, checkpoints/ and the
// resolved train_config.json beside the weights. Each config type owns its knobs and their defaults; `sftConfig` and
// `dpoConfig` validate a partial one once (flags, the run config and TypeScript callers share that validator).
//
//   const model = await sft(sftConfig({ data: "sft.jsonl", init: "tiny", out: "runs/sft", lr: 3e-3 }));
//   await dpo(dpoConfig({ model: "runs/sft", pairs: "pairs.jsonl", out: "runs/dpo", beta: 0.1 }));

import { writeJsonAtomic } from "../core/atomic.js";
import fs from "node:fs";
import path from "node:path";
import { asKeys, KnobReader, type Naming } from "../core/config.js";
import { InputError, InterruptedError } from "../core/errors.js";
import { cooperative } from "../core/interrupt.js";
import { checkNotInput, checkOutputDir, claimRunDir, lockOutput } from "../core/outputs.js";
import { logOf, progressOf, stopOf, type ProgressSink, type StageContext } from "../core/stage.js";
import { PROMPT_TEMPLATES, type PromptTemplate } from "../data/format.js";
import type { Tensor } from "../engine/tensor.js";
import { loadModel, loadModelTokenizer, saveModel } from "../model/hub.js";
import type { Llama } from "../model/llama.js";
import { attachLora, mergeAndUnload } from "../model/lora.js";
import { initModel } from "../model/presets.js";
import type { TextTokenizer } from "../model/tokenizer.js";
import { packExamples, paddingFraction, type Example } from "./batch.js";
import { readPairsFile, readSftFile, readSftTexts, type ReadOptions, type Skipped } from "./data.js";
import { cachedRefLogpsAsync, dpoObjective, precomputeRefLogpsAsync, type Reference, type TokenPair } from "./dpo.js";
import { LOSS_NAMES, parseLosses } from "./losses.js";
import { dataOrder, type LoopConfig, type Objective } from "./loop.js";
import { METRICS } from "./metrics.js";
import type { ScheduleKind } from "./schedule.js";
import { packedSftObjective, sftObjective, withReplay } from "./sft.js";
import { REPORT_TO, type ReportTo, train, type TrainResult } from "./trainer.js";

/** The knobs both training stages have. */
export interface TrainKnobs {
  out: string; // the model folder written (weights, tokenizer, metrics.jsonl, checkpoints/)
  epochs: number; // passes over the data (1)
  max_steps: number | null; // stop after this many optimizer steps (null: epochs decide)
  batch_size: number; // items per micro-batch (8)
  grad_accum: number; // micro-batches per optimizer step (1)
  lr: number | null; // peak learning rate; null: the stage's (SFT 1e-3 from scratch, 2e-5 pretrained; DPO 1e-6)
  lr_schedule: ScheduleKind; // after warmup (cosine)
  warmup_ratio: number; // fraction of steps spent warming up (0.1)
  weight_decay: number; // AdamW decoupled weight decay (0; norms and biases never decay)
  max_grad_norm: number; // clip the global gradient norm (1; 0 turns clipping off)
  seed: number; // data order, LoRA init and dropout (0)
  save_every: number; // checkpoint every N optimizer steps (0: at the end only)
  keep_checkpoints: number; // checkpoints kept (2)
  resume: boolean; // continue from the newest intact checkpoint in out
  overwrite: boolean; // replace the outputs of an earlier run in out (refused without this or resume)
  max_length: number; // longest prompt + completion in tokens (1024)
  template: PromptTemplate; // plain (question, newline, solution) or chat, for {question, answer} and Step-DPO records
  skip_bad: boolean; // count and skip bad lines instead of stopping
  eval_every: number; // score the held-out file every N steps (0: at the end only)
  lora: number | null; // rank-R LoRA adapters instead of every weight (null: every weight trains)
  lora_alpha: number | null; // adapter scale alpha / R (null: 2R)
  lora_dropout: number; // dropout on the adapters' inputs while training (0)
  lora_targets: string[] | null; // modules to adapt (null: all seven projections)
  merge: boolean; // with lora: merge the adapters into the weights before saving
  report_to: ReportTo[]; // also log every step to: tensorboard (<out>/runs/); [] or "none": nowhere else
}

export interface SftConfig extends TrainKnobs {
  data: string; // {question, answer} or TRL's SFT formats, JSONL or parquet
  eval_data: string | null; // held-out examples: eval_loss in metrics.jsonl
  model: string | null; // start from a model folder or .gguf file (a local path)
  init: string | null; // or from a fresh model: tiny, small, or a config.json
  tokenizer: "bpe" | "chars"; // with init tiny|small: learned from data (bpe) or the built-in characters
  vocab_size: number; // bpe: the largest vocabulary (1024)
  pack: boolean; // whole examples packed into rows of up to max_length tokens
  bucket: boolean; // length-bucketed batches (less padding)
  bucket_window: number; // micro-batches per sorting window with bucket (50)
}

/** The DPO knobs a run config's variant may set (one name, one default, one validator each). */
export interface DpoKnobs {
  loss: string; // a loss list: sigmoid (default), robust, hinge, ipo, sigmoid_norm, apo_zero, dpop, sft
  loss_weights: string | null; // one weight per loss (null: 1 each)
  beta: number; // inverse temperature of the implicit reward (0.1)
  label_smoothing: number; // noise rate for sigmoid (cDPO) and robust (0)
  dpop_lambda: number; // dpop: weight of the penalty on a chosen log-prob below the reference's (50)
  replay_weight: number; // with replay: weight of the replayed examples' mean token loss (1)
}

export interface DpoConfig extends TrainKnobs, DpoKnobs {
  model: string; // the policy to train (usually the SFT model); also the reference unless ref
  pairs: string; // preference pairs, JSONL or parquet
  ref: string | null; // a reference model other than model
  reference: "precomputed" | "live"; // one batched pass cached in out, or the reference run beside every step
  eval_pairs: string | null; // held-out pairs: eval_loss, eval_rewards/... in metrics.jsonl
  replay: string | null; // SFT examples (sft's formats) replayed in DPO's batches: one per pair, SFT loss added
}

export interface TrainSummary {
  kind: "sft" | "dpo";
  out: string;
  steps: number;
  total_steps: number;
  resumed_from: number | null;
  loss: number | null;
  [extra: string]: unknown; // examples, pairs, padding_fraction, ...
}

export const SCHEDULES: readonly ScheduleKind[] = ["cosine", "linear", "constant"];

function trainKnobs(r: KnobReader): Omit<TrainKnobs, "out"> {
  const lora = r.int("lora", null, 1);
  if (!lora && r.bool("merge")) throw new InputError(`${nameOf(r, "merge")} needs ${nameOf(r, "lora")}`);
  const dropout = r.num("lora_dropout", 0, (x) => x >= 0 && x < 1, "a number in [0, 1)");
  const targets = r.list("lora_targets");
  const resume = r.bool("resume");
  const overwrite = r.bool("overwrite");
  if (resume && overwrite)
    throw new InputError("--resume continues the run in --out, --overwrite replaces it: give one");
  return {
    epochs: r.int("epochs", 1),
    max_steps: r.int("max_steps", null),
    batch_size: r.int("batch_size", 8),
    grad_accum: r.int("grad_accum", 1),
    lr: r.num("lr", null, (x) => x > 0, "a number > 0"),
    lr_schedule: r.choice("lr_schedule", SCHEDULES, "cosine"),
    warmup_ratio: r.num("warmup_ratio", 0.1, (x) => x >= 0 && x <= 1, "a number in [0, 1]"),
    weight_decay: r.num("weight_decay", 0, (x) => x >= 0, "a number >= 0"),
    max_grad_norm: r.num("max_grad_norm", 1, (x) => x >= 0, "a number >= 0"),
    seed: r.int("seed", 0, 0),
    save_every: r.int("save_every", 0, 0),
    keep_checkpoints: r.int("keep_checkpoints", 2),
    resume,
    overwrite,
    max_length: r.int("max_length", 1024),
    template: r.choice("template", PROMPT_TEMPLATES, "plain"),
    skip_bad: r.bool("skip_bad"),
    eval_every: r.int("eval_every", 0, 0),
    lora,
    lora_alpha: r.num("lora_alpha", null, (x) => x >= 0, "a number >= 0"),
    lora_dropout: dropout,
    lora_targets: targets,
    merge: r.bool("merge"),
    report_to: reportTo(r),
  };
}

/** TRL's report_to: a list of destinations (a comma-separated string or a list); "none" alone means none. */
function reportTo(r: KnobReader): ReportTo[] {
  const given = r.list("report_to");
  if (given === null) return [];
  if (given.length === 1 && given[0] === "none") return [];
  const bad = given.find((d) => !REPORT_TO.includes(d as ReportTo));
  if (bad !== undefined) return r.fail("report_to", `${REPORT_TO.join(", ")} or none (not ${bad})`);
  return [...new Set(given)] as ReportTo[];
}

const nameOf = (r: KnobReader, key: string) => r.naming.name(key);

/** A full SftConfig from the knobs given (flag or key spellings), validated; errors name knobs as `naming` says. */
export function sftConfig(
  given: Partial<SftConfig> | Record<string, unknown>,
  naming: Naming = asKeys(),
  file?: string,
): SftConfig {
  const r = new KnobReader(given as Record<string, unknown>, naming, file);
  const base = { out: r.need("out", "DIR"), ...trainKnobs(r) };
  const model = r.str("model", null);
  const init = r.str("init", null);
  if (model === null && init === null)
    throw new InputError(naming.flags ? "give --model DIR or --init tiny|small|CONFIG.json" : "give model or init");
  const bucket = r.bool("bucket");
  if (r.has("bucket_window") && !bucket)
    throw new InputError(`${nameOf(r, "bucket_window")} needs ${nameOf(r, "bucket")}`);
  return {
    ...base,
    data: r.need("data", "FILE"),
    eval_data: r.str("eval_data", null),
    model,
    init,
    tokenizer: r.choice("tokenizer", ["bpe", "chars"] as const, "bpe"),
    vocab_size: r.int("vocab_size", 1024, MIN_VOCAB),
    pack: r.bool("pack"),
    bucket,
    bucket_window: r.int("bucket_window", 50),
  };
}

/** The smallest BPE vocabulary a model from scratch may ask for (the 256 bytes and the special tokens). */
export const MIN_VOCAB = 264;

/**
 * Checks the training knobs in `given` with the validators sftConfig uses: the run config checks its sft section
 * with this when it is parsed, before any stage runs.
 */
export function checkSftKnobs(given: Record<string, unknown>, naming: Naming = asKeys(), file?: string): void {
  trainKnobs(new KnobReader(given, naming, file));
}

/**
 * Checks the training and DPO knobs in `given` (paths aside) with the validators dpoConfig uses: the run config
 * checks its dpo section and every variant with this when it is parsed, before any stage runs.
 */
export function checkDpoKnobs(given: Record<string, unknown>, naming: Naming = asKeys(), file?: string): void {
  const r = new KnobReader(given, naming, file);
  trainKnobs(r);
  readDpoKnobs(r);
}

function readDpoKnobs(r: KnobReader): DpoKnobs {
  const loss = r.str("loss", "sigmoid");
  const weights = r.str("loss_weights", null);
  try {
    parseLosses(loss, weights ?? undefined);
  } catch (e) {
    if (r.naming.flags) throw e;
    throw new InputError(`${nameOf(r, "loss")}: ${(e as Error).message}`, r.file, `losses: ${LOSS_NAMES.join(", ")}`);
  }
  return {
    loss,
    loss_weights: weights,
    beta: r.num("beta", 0.1, (x) => x > 0, "a number > 0"),
    label_smoothing: r.num("label_smoothing", 0, (x) => x >= 0 && x < 0.5, "a number in [0, 0.5)"),
    dpop_lambda: r.num("dpop_lambda", 50, (x) => x >= 0, "a number >= 0"),
    replay_weight: r.num("replay_weight", 1, (x) => x > 0, "a number > 0"),
  };
}

/** A full DpoConfig from the knobs given, validated. */
export function dpoConfig(
  given: Partial<DpoConfig> | Record<string, unknown>,
  naming: Naming = asKeys(),
  file?: string,
): DpoConfig {
  const r = new KnobReader(given as Record<string, unknown>, naming, file);
  return {
    out: r.need("out", "DIR"),
    ...trainKnobs(r),
    ...readDpoKnobs(r),
    model: r.need("model", "DIR"),
    pairs: r.need("pairs", "FILE"),
    ref: r.str("ref", null),
    reference: r.choice("reference", ["precomputed", "live"] as const, "precomputed"),
    eval_pairs: r.str("eval_pairs", null),
    replay: r.str("replay", null),
  };
}

function loopConfig(c: TrainKnobs, dfltLr: number): LoopConfig {
  return {
    epochs: c.epochs,
    maxSteps: c.max_steps,
    batchSize: c.batch_size,
    gradAccum: c.grad_accum,
    lr: c.lr ?? dfltLr,
    schedule: c.lr_schedule,
    warmupRatio: c.warmup_ratio,
    weightDecay: c.weight_decay,
    maxGradNorm: c.max_grad_norm,
    seed: c.seed,
  };
}

/** What train_config.json records of the adapters. */
const loraRecord = (c: TrainKnobs) =>
  c.lora === null ? null : { r: c.lora, alpha: c.lora_alpha, dropout: c.lora_dropout, targets: c.lora_targets };

/**
 * The output folder, settled before any work: a folder (not a file), not an input, not holding another run's
 * outputs unless resume or overwrite; then created and locked (one writer) while `run` trains into it.
 */
async function intoOutput<T>(
  kind: string,
  c: TrainKnobs,
  inputs: Record<string, unknown>,
  run: () => Promise<T>,
): Promise<T> {
  const out = c.out;
  checkOutputDir(out);
  checkNotInput(out, inputs);
  claimRunDir(out, { resume: c.resume, overwrite: c.overwrite, command: kind });
  const created = !fs.existsSync(out);
  fs.mkdirSync(out, { recursive: true });
  const release = lockOutput(out, "dir", `stepwise ${kind}`);
  try {
    return await run();
  } finally {
    release();
    if (created && fs.readdirSync(out).length === 0) fs.rmdirSync(out); // a run that failed at once leaves nothing
  }
}

function readOptions(c: TrainKnobs, tokenizer: TextTokenizer, warn: (m: string) => void): ReadOptions {
  return { tokenizer, template: c.template, maxLength: c.max_length, skipBad: c.skip_bad, warn };
}

function reportSkips(file: string, s: Skipped, warn: (m: string) => void): void {
  if (s.count === 0) return;
  const why = Object.entries(s.reasons)
    .map(([r, n]) => `${n} ${r}`)
    .join("; ");
  warn(`${file}: skipped ${s.count} lines (${why})`);
}

/**
 * Runs training with a progress display of loss, reward accuracy, tokens/s and steps (counted from the step it
 * starts at, so a resumed run's rate is honest). A stop request ends it after the current step, with a checkpoint
 * of that step saved: an InterruptedError that says what exists.
 */
async function trainWithProgress<T>(
  label: string,
  ctx: StageContext,
  run: Parameters<typeof train<T>>[0],
): Promise<TrainResult> {
  let bar: ProgressSink | null = null;
  try {
    const r = await cooperative(() =>
      train({
        ...run,
        shouldStop: () => stopOf(ctx) !== null,
        onStart(state, total) {
          bar = progressOf(ctx, label, { total, start: state.step, unit: " steps" });
        },
        onStep(record, state) {
          const acc = record[METRICS.rewardsAccuracies];
          bar?.note(
            `loss ${record[METRICS.loss].toFixed(4)}${acc === undefined ? "" : ` acc ${acc.toFixed(2)}`} ` +
              `${Math.round(record[METRICS.tokensPerSecond])} tok/s`,
          );
          bar?.set(state.step);
        },
      }),
    );
    const signal = stopOf(ctx);
    if (r.stopped && signal) {
      throw new InterruptedError(
        signal,
        `${label} stopped after step ${r.state.step} of ${r.total}; ` +
          (r.checkpoint ? `checkpoint ${r.checkpoint} holds it` : "no step had finished, so no checkpoint exists"),
      );
    }
    return r;
  } finally {
    (bar as ProgressSink | null)?.finish();
  }
}

function save(
  c: TrainKnobs,
  kind: "sft" | "dpo",
  r: TrainResult,
  model: Llama,
  tokenizer: TextTokenizer,
  extra: object,
): TrainSummary {
  if (model.lora && c.merge) mergeAndUnload(model);
  saveModel(model, c.out); // with unmerged adapters: the base plus adapter_config.json and adapter_model.safetensors
  tokenizer.save(c.out);
  model.dispose();
  return {
    kind,
    out: c.out,
    steps: r.state.step,
    total_steps: r.total,
    resumed_from: r.resumedFrom,
    loss: r.last?.[METRICS.loss] ?? null,
    ...extra,
  };
}

async function loadPolicy(
  c: SftConfig | DpoConfig,
  warn: (m: string) => void,
): Promise<{ model: Llama; tokenizer: TextTokenizer; fromScratch: boolean }> {
  if (c.model !== null)
    return { model: loadModel(c.model, { warn }), tokenizer: loadModelTokenizer(c.model), fromScratch: false };
  const s = c as SftConfig;
  // A from-scratch built-in preset learns its BPE tokenizer from the training texts (digits stay single tokens).
  const texts = s.tokenizer === "bpe" ? await readSftTexts(s.data, s.skip_bad) : undefined;
  const { model, tokenizer } = initModel(s.init!, {
    seed: s.seed,
    texts,
    tokenizer: texts ? "bpe" : "chars",
    vocabSize: s.vocab_size,
  });
  if (!tokenizer) {
    model.dispose();
    throw new InputError(
      `--init ${s.init} has no built-in tokenizer`,
      undefined,
      "use --init tiny or small, or --model DIR",
    );
  }
  return { model, tokenizer, fromScratch: true };
}

/** lora: freezes the base and attaches adapters; returns the dropout RNG hooks for exact resume. */
function maybeLora(c: TrainKnobs, model: Llama): TrainRunRng | undefined {
  if (c.lora === null) return undefined;
  const adapter = attachLora(model, {
    r: c.lora,
    alpha: c.lora_alpha ?? undefined,
    dropout: c.lora_dropout,
    targetModules: c.lora_targets ?? undefined,
    seed: c.seed,
  });
  adapter.training = true;
  return { get: () => adapter.rngState(), set: (s) => adapter.setRngState(s) };
}

type TrainRunRng = { get(): Uint32Array; set(state: Uint32Array): void };

function trainable(model: Llama) {
  return new Map([...model.params].filter(([, t]) => t.requiresGrad));
}

/** The share of padding in the first epoch's micro-batches, in the order the loop reads them. */
function epochPadding<T>(items: T[], loop: LoopConfig, objective: Objective<T>): number {
  const lengthOf = (item: T) => objective.lengthOf!(item);
  return paddingFraction(items.map(lengthOf), dataOrder(items, loop, 0, lengthOf), loop.batchSize);
}

/** Supervised fine-tuning (loss on completion tokens only) into c.out; resumable. */
export function sft(c: SftConfig, ctx: StageContext = {}): Promise<TrainSummary> {
  const warn = logOf(ctx);
  return intoOutput("sft", c, { "--model": c.model, "--data": c.data }, async () => {
    const { model, tokenizer, fromScratch } = await loadPolicy(c, warn);
    const rng = maybeLora(c, model);
    const { examples, skipped } = await readSftFile(c.data, readOptions(c, tokenizer, warn));
    reportSkips(c.data, skipped, warn);
    if (examples.length === 0) throw new InputError("no usable examples", c.data);
    const loop: LoopConfig = {
      ...loopConfig(c, fromScratch ? 1e-3 : 2e-5),
      ...(c.bucket ? { bucket: c.bucket_window } : {}),
    };
    const config = {
      stage: "sft",
      data: path.resolve(c.data),
      model: c.model,
      init: c.init,
      loop,
      ...(c.pack ? { pack: true } : {}),
      lora: loraRecord(c),
      template: c.template,
      maxLength: c.max_length,
    };
    writeJsonAtomic(path.join(c.out, "train_config.json"), config);
    const padId = tokenizer.padId ?? tokenizer.eosId ?? 0;
    const objective = sftObjective(model, padId);
    const evalItems =
      c.eval_data !== null ? (await readSftFile(c.eval_data, readOptions(c, tokenizer, warn))).examples : [];
    const common = {
      outDir: c.out,
      kind: "sft" as const,
      params: trainable(model),
      loop,
      rng,
      saveEvery: c.save_every,
      keepLast: c.keep_checkpoints,
      resume: c.resume,
      config,
      warn,
      reportTo: c.report_to,
    };
    const rows = c.pack ? packExamples(examples, c.max_length) : null;
    const packed = packedSftObjective(model, padId);
    const every = c.eval_every;
    const r = rows
      ? // Held-out loss is on unpacked examples (one a row) either way: exact, and comparable between the two.
        await trainWithProgress<Example[]>("sft", ctx, {
          ...common,
          items: rows,
          objective: packed,
          evaluation: { items: evalItems.map((e) => [e]), objective: packed, every, batchSize: loop.batchSize },
        })
      : await trainWithProgress<Example>("sft", ctx, {
          ...common,
          items: examples,
          objective,
          evaluation: { items: evalItems, objective, every, batchSize: loop.batchSize },
        });
    const padding = rows ? epochPadding(rows, loop, packed) : epochPadding(examples, loop, objective);
    return save(c, "sft", r, model, tokenizer, {
      examples: examples.length,
      skipped: skipped.count,
      ...(rows ? { packed_rows: rows.length } : {}),
      padding_fraction: padding,
    });
  });
}

/** DPO-family training on preference pairs (outcome, SCDPO or Step-DPO) into c.out; resumable. */
export function dpo(c: DpoConfig, ctx: StageContext = {}): Promise<TrainSummary> {
  const warn = logOf(ctx);
  const inputs = { "--model": c.model, "--ref": c.ref, "--pairs": c.pairs, "--replay": c.replay };
  return intoOutput("dpo", c, inputs, async () => {
    const losses = parseLosses(c.loss, c.loss_weights ?? undefined);
    const { model, tokenizer } = await loadPolicy(c, warn);
    const rng = maybeLora(c, model);
    const { pairs, stepLevel, skipped } = await readPairsFile(c.pairs, readOptions(c, tokenizer, warn));
    reportSkips(c.pairs, skipped, warn);
    const loop = loopConfig(c, 1e-6);
    const refDir = c.ref ?? c.model;
    const config = {
      stage: "dpo",
      pairs: path.resolve(c.pairs),
      model: path.resolve(c.model),
      ref: path.resolve(refDir),
      losses,
      beta: c.beta,
      labelSmoothing: c.label_smoothing,
      ...(losses.some((l) => l.name === "dpop") ? { dpopLambda: c.dpop_lambda } : {}),
      reference: c.reference,
      loop,
      template: c.template,
      maxLength: c.max_length,
      lora: loraRecord(c),
      ...(c.replay === null ? {} : { replay: path.resolve(c.replay), replayWeight: c.replay_weight }),
    };
    // With adapters the reference is the frozen base itself, adapters off: no second copy of the weights.
    const sameModel = refDir === c.model;
    const baseRef =
      c.lora !== null && sameModel
        ? {
            forward: (ids: Tensor, o?: { pos?: Tensor; keyMask?: Tensor | null }) =>
              model.withAdaptersDisabled(() => model.forward(ids, o)),
          }
        : null;
    writeJsonAtomic(path.join(c.out, "train_config.json"), config);
    const padId = tokenizer.padId ?? tokenizer.eosId ?? 0;
    const evalPairs =
      c.eval_pairs !== null ? (await readPairsFile(c.eval_pairs, readOptions(c, tokenizer, warn))).pairs : [];
    let refModel: Llama | null = null;
    const loadRef = (): Llama => {
      refModel ??= loadModel(refDir, { warn });
      return refModel;
    };
    // The reference pass stops at a batch on a stop request (nothing of it is saved; a resume starts it again).
    const refFor = async (items: TokenPair[], file: string, source: string): Promise<Reference> => {
      if (c.reference === "live") return { kind: "live", model: baseRef ?? loadRef() };
      const key = JSON.stringify({
        ref: config.ref,
        pairs: source,
        template: config.template,
        maxLength: config.maxLength,
      });
      const logps = await cooperative(() =>
        cachedRefLogpsAsync(path.join(c.out, file), key, async () => {
          const ref = baseRef ?? (sameModel ? model : loadRef());
          const bar = progressOf(ctx, "reference log-probs", { total: items.length, unit: " pairs" });
          try {
            return await precomputeRefLogpsAsync(
              ref,
              items,
              padId,
              loop.batchSize,
              (done) => bar.set(done),
              () => stopOf(ctx) !== null,
            );
          } finally {
            bar.finish();
          }
        }),
      );
      if (!logps)
        throw new InterruptedError(
          stopOf(ctx) ?? "SIGINT",
          `the reference log-prob pass (${file}) stopped before its end; no training step ran`,
        );
      return { kind: "precomputed", logps };
    };
    const reference = await refFor(pairs, "ref_logps.json", config.pairs);
    let replay: Example[] = [];
    if (c.replay !== null) {
      const r = await readSftFile(c.replay, readOptions(c, tokenizer, warn));
      reportSkips(c.replay, r.skipped, warn);
      if (r.examples.length === 0) throw new InputError("no usable examples to replay", c.replay);
      replay = r.examples;
    }
    const options = { beta: c.beta, labelSmoothing: c.label_smoothing, dpopLambda: c.dpop_lambda, losses, padId };
    const evaluation =
      evalPairs.length === 0
        ? undefined
        : {
            items: evalPairs,
            every: c.eval_every,
            batchSize: loop.batchSize,
            objective: dpoObjective(
              model,
              await refFor(evalPairs, "ref_logps_eval.json", path.resolve(c.eval_pairs!)),
              options,
            ),
          };
    try {
      const r = await trainWithProgress("dpo", ctx, {
        outDir: c.out,
        kind: "dpo",
        items: pairs,
        params: trainable(model),
        objective:
          replay.length === 0
            ? dpoObjective(model, reference, options)
            : withReplay(dpoObjective(model, reference, options), sftObjective(model, padId), replay, {
                weight: c.replay_weight,
                seed: c.seed,
              }),
        loop,
        evaluation,
        rng,
        saveEvery: c.save_every,
        keepLast: c.keep_checkpoints,
        resume: c.resume,
        config,
        warn,
        reportTo: c.report_to,
      });
      return save(c, "dpo", r, model, tokenizer, {
        pairs: pairs.length,
        step_pairs: stepLevel,
        skipped: skipped.count,
      });
    } finally {
      (refModel as Llama | null)?.dispose();
    }
  });
}
