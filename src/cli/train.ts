// `stepwise sft` and `stepwise dpo`: read a JSONL or parquet file (src/train/data.ts), train, write a Hugging Face
// model folder with metrics.jsonl, checkpoints/ and the resolved train_config.json beside the weights.

import fs from "node:fs";
import path from "node:path";
import { InputError, InterruptedError } from "../core/errors.js";
import { cooperative, stopRequested } from "../core/interrupt.js";
import { backendByName, getBackend, setBackend } from "../backend/index.js";
import type { PromptTemplate } from "../data/format.js";
import { writeJsonAtomic } from "../model/safetensors.js";
import { loadModel, loadModelTokenizer, saveModel } from "../model/hub.js";
import { initModel } from "../model/presets.js";
import type { TextTokenizer } from "../model/tokenizer.js";
import type { Llama } from "../model/llama.js";
import { attachLora, mergeAndUnload } from "../model/lora.js";
import type { Tensor } from "../engine/tensor.js";
import { packExamples, paddingFraction, type Example } from "../train/batch.js";
import { readPairsFile, readSftFile, readSftTexts, type ReadOptions, type Skipped } from "../train/data.js";
import { cachedRefLogpsAsync, dpoObjective, precomputeRefLogpsAsync, type Reference, type TokenPair } from "../train/dpo.js";
import { parseLosses } from "../train/losses.js";
import { dataOrder, type LoopConfig, type Objective } from "../train/loop.js";
import { METRICS } from "../train/metrics.js";
import { parseSchedule } from "../train/schedule.js";
import { packedSftObjective, sftObjective } from "../train/sft.js";
import { train, type TrainResult } from "../train/trainer.js";
import type { Command } from "./main.js";
import { flagNumber, intOption } from "./options.js";
import { checkNotInput, checkOutputDir, claimRunDir, lockOutput } from "./outputs.js";
import { Progress } from "./progress.js";

type Values = Record<string, string | boolean | undefined>;

const TRAIN_OPTIONS = {
  epochs: { type: "string" }, "max-steps": { type: "string" }, "batch-size": { type: "string" },
  "grad-accum": { type: "string" }, lr: { type: "string" }, "lr-schedule": { type: "string" },
  "warmup-ratio": { type: "string" }, "weight-decay": { type: "string" }, "max-grad-norm": { type: "string" },
  seed: { type: "string" }, "save-every": { type: "string" }, "keep-checkpoints": { type: "string" },
  resume: { type: "boolean" }, overwrite: { type: "boolean" }, threads: { type: "string" }, backend: { type: "string" },
  "max-length": { type: "string" }, template: { type: "string" }, "skip-bad": { type: "boolean" },
  out: { type: "string" }, json: { type: "boolean" }, "eval-every": { type: "string" },
  lora: { type: "string" }, "lora-alpha": { type: "string" }, "lora-dropout": { type: "string" },
  "lora-targets": { type: "string" }, merge: { type: "boolean" },
} as const;

const TRAIN_HELP = [
  "  --out DIR            output model folder (weights, tokenizer, metrics.jsonl, checkpoints/)",
  "  --epochs N           passes over the data (default 1)",
  "  --max-steps N        stop after N optimizer steps",
  "  --batch-size N       items per micro-batch (default 8)",
  "  --grad-accum N       micro-batches per optimizer step (default 1)",
  "  --lr X               peak learning rate",
  "  --lr-schedule S      cosine (default), linear or constant, after warmup",
  "  --warmup-ratio X     fraction of steps spent warming up (default 0.1)",
  "  --weight-decay X     AdamW decoupled weight decay (default 0; norms and biases never decay)",
  "  --max-grad-norm X    clip the global gradient norm (default 1; 0 turns clipping off)",
  "  --seed N             data order (default 0)",
  "  --save-every N       checkpoint every N optimizer steps (default 0: at the end only)",
  "  --keep-checkpoints N checkpoints kept (default 2)",
  "  --resume             continue from the newest intact checkpoint in --out",
  "  --overwrite          replace the outputs of an earlier run in --out (refused without this or --resume)",
  "  --max-length N       longest prompt + completion in tokens (default 1024)",
  "  --template T         plain (default: question, newline, solution) or chat (the model's chat template)",
  "                       for {question, answer} and Step-DPO records; messages always use the chat template",
  "  --skip-bad           count and skip bad lines (parquet: rows) instead of stopping",
  "  --threads N          native backend threads (default: all cores)",
  "  --backend B          native (default when built) or reference",
  "  --eval-every N       score the held-out file every N steps (default: at the end only)",
  "  --lora R             train rank-R LoRA adapters instead of every weight (the base stays frozen)",
  "  --lora-alpha A       adapter scale alpha / R (default 2R)",
  "  --lora-dropout P     dropout on the adapters' inputs while training (default 0)",
  "  --lora-targets LIST  modules to adapt (default q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj)",
  "  --merge              with --lora: merge the adapters into the weights before saving (a plain HF folder)",
  "  --json               print a JSON summary at the end",
].join("\n");

function num(values: Values, name: string, dflt: number, min = 0, max = Infinity): number {
  const v = values[name];
  if (v === undefined) return dflt;
  const n = flagNumber(v);
  if (!Number.isFinite(n) || n < min || n > max) {
    throw new InputError(`--${name} must be a number ${max === Infinity ? `>= ${min}` : `in [${min}, ${max}]`}, got "${v}"`);
  }
  return n;
}

function loopConfig(values: Values, dfltLr: number): LoopConfig {
  if (values.lr !== undefined && !(flagNumber(values.lr) > 0)) throw new InputError(`--lr must be a number > 0, got "${values.lr}"`);
  return {
    epochs: intOption(values, "epochs", 1),
    maxSteps: values["max-steps"] === undefined ? null : intOption(values, "max-steps", 1),
    batchSize: intOption(values, "batch-size", 8),
    gradAccum: intOption(values, "grad-accum", 1),
    lr: num(values, "lr", dfltLr),
    schedule: parseSchedule(String(values["lr-schedule"] ?? "cosine")),
    warmupRatio: num(values, "warmup-ratio", 0.1, 0, 1),
    weightDecay: num(values, "weight-decay", 0),
    maxGradNorm: num(values, "max-grad-norm", 1),
    seed: intOption(values, "seed", 0, 0),
  };
}

function setup(values: Values): { out: string; warn: (m: string) => void } {
  if (values.backend) setBackend(backendByName(String(values.backend)));
  if (values.threads !== undefined) getBackend().setThreads(intOption(values, "threads", 1));
  return { out: String(values.out), warn: (m) => process.stderr.write(`stepwise: ${m}\n`) };
}

/**
 * A training command's --out, settled before any work: a folder (not a file), not an input, not holding another
 * run's outputs unless --resume or --overwrite; then created and locked (one writer) while `run` trains into it.
 */
function trainingOutput(kind: string, run: (values: Values) => Promise<number>): (values: Values) => Promise<number> {
  return async (values) => {
    const out = values.out;
    if (typeof out !== "string") throw new InputError("--out DIR is required");
    if (values.resume && values.overwrite) throw new InputError("--resume continues the run in --out, --overwrite replaces it: give one");
    loopConfig(values, 1); // bad numbers fail here, before --overwrite removes anything
    checkOutputDir(out);
    checkNotInput(out, { "--model": values.model, "--ref": values.ref, "--data": values.data, "--pairs": values.pairs });
    claimRunDir(out, { resume: Boolean(values.resume), overwrite: Boolean(values.overwrite), command: kind });
    const created = !fs.existsSync(out);
    fs.mkdirSync(out, { recursive: true });
    const release = lockOutput(out, "dir", `stepwise ${kind}`);
    try {
      return await run(values);
    } finally {
      release();
      if (created && fs.readdirSync(out).length === 0) fs.rmdirSync(out); // a run that failed at once leaves nothing
    }
  };
}

function template(values: Values): PromptTemplate {
  const t = String(values.template ?? "plain");
  if (t !== "plain" && t !== "chat") throw new InputError(`--template must be plain or chat, got "${t}"`);
  return t;
}

function readOptions(values: Values, tokenizer: TextTokenizer, warn: (m: string) => void): ReadOptions {
  return { tokenizer, template: template(values), maxLength: intOption(values, "max-length", 1024), skipBad: Boolean(values["skip-bad"]), warn };
}

function reportSkips(file: string, s: Skipped, warn: (m: string) => void): void {
  if (s.count === 0) return;
  const why = Object.entries(s.reasons).map(([r, n]) => `${n} ${r}`).join("; ");
  warn(`${file}: skipped ${s.count} lines (${why})`);
}

/**
 * Runs training with a progress bar that shows loss, reward accuracy, tokens/s and ETA (counted from the step it
 * starts at, so a resumed run's ETA is honest). Ctrl-C or SIGTERM stops it after the current step, with a
 * checkpoint of that step saved: an InterruptedError that says what exists.
 */
async function runWithProgress<T>(label: string, run: Parameters<typeof train<T>>[0]): Promise<TrainResult> {
  let bar: Progress | null = null;
  try {
    const r = await cooperative(() => train({
      ...run,
      shouldStop: () => stopRequested() !== null,
      onStart(state, total) {
        bar = new Progress(label, { total, start: state.step, unit: " steps" });
      },
      onStep(record, state) {
        const acc = record[METRICS.rewardsAccuracies];
        bar?.note(`loss ${record[METRICS.loss].toFixed(4)}${acc === undefined ? "" : ` acc ${acc.toFixed(2)}`} ` +
          `${Math.round(record[METRICS.tokensPerSecond])} tok/s`);
        bar?.set(state.step);
      },
    }));
    const signal = stopRequested();
    if (r.stopped && signal) {
      throw new InterruptedError(signal, `${label} stopped after step ${r.state.step} of ${r.total}; ` +
        (r.checkpoint ? `checkpoint ${r.checkpoint} holds it` : "no step had finished, so no checkpoint exists"));
    }
    return r;
  } finally {
    (bar as Progress | null)?.finish();
  }
}

function finish(values: Values, kind: string, out: string, r: TrainResult, model: Llama, tokenizer: TextTokenizer, extra: object): number {
  if (model.lora && values.merge) mergeAndUnload(model);
  saveModel(model, out); // with unmerged adapters: the base plus adapter_config.json and adapter_model.safetensors
  tokenizer.save(out);
  const summary = { kind, out, steps: r.state.step, total_steps: r.total, resumed_from: r.resumedFrom,
    loss: r.last?.[METRICS.loss] ?? null, ...extra };
  if (values.json) console.log(JSON.stringify(summary));
  else console.error(`stepwise ${kind}: ${r.state.step}/${r.total} steps, model written to ${out}`);
  model.dispose();
  return 0;
}

async function loadPolicy(values: Values, warn: (m: string) => void): Promise<{ model: Llama; tokenizer: TextTokenizer; fromScratch: boolean }> {
  const seed = intOption(values, "seed", 0, 0);
  if (typeof values.model === "string") {
    return { model: loadModel(values.model, { warn }), tokenizer: loadModelTokenizer(values.model), fromScratch: false };
  }
  if (typeof values.init === "string") {
    const kind = String(values.tokenizer ?? "bpe");
    if (kind !== "bpe" && kind !== "chars") throw new InputError(`--tokenizer must be bpe or chars, got "${kind}"`);
    // A from-scratch built-in preset learns its BPE tokenizer from the training texts (digits stay single tokens).
    const texts = kind === "bpe" && typeof values.data === "string" ? await readSftTexts(values.data, Boolean(values["skip-bad"])) : undefined;
    const { model, tokenizer } = initModel(values.init, { seed, texts, tokenizer: texts ? "bpe" : "chars",
      vocabSize: intOption(values, "vocab-size", 1024, 264) });
    if (!tokenizer) {
      model.dispose();
      throw new InputError(`--init ${values.init} has no built-in tokenizer`, undefined, "use --init tiny or small, or --model DIR");
    }
    return { model, tokenizer, fromScratch: true };
  }
  throw new InputError("give --model DIR or --init tiny|small|CONFIG.json");
}

export const sftCommand: Command = {
  name: "sft",
  cooperative: true,
  resumeFlag: "--resume",
  summary: "supervised fine-tuning on step-formatted solutions (loss on completion tokens only)",
  usage: "stepwise sft --data FILE (--model DIR | --init tiny|small|CONFIG.json) --out DIR [options]",
  options: { ...TRAIN_OPTIONS, data: { type: "string" }, model: { type: "string" }, init: { type: "string" },
    "eval-data": { type: "string" }, pack: { type: "boolean" }, bucket: { type: "boolean" }, "bucket-window": { type: "string" }, tokenizer: { type: "string" }, "vocab-size": { type: "string" } },
  help: ["  --data FILE          JSONL or .parquet: {question, answer}, or TRL's SFT formats: {prompt, completion}",
    "                       (strings, or lists of {role, content} messages), {messages} or {text} (loss on every",
    "                       token after the first); messages are rendered with the model's chat template",
    "  --eval-data FILE     held-out examples (same formats): eval/loss in metrics.jsonl",
    "  --model DIR          start from a model folder, a .gguf file or a Hugging Face name owner/name", "  --init SPEC          or from a fresh model: tiny, small, or a config.json",
    "  --tokenizer K        with --init tiny|small: bpe (default: learned from --data; words become tokens, digits",
    "                       stay single) or chars (the built-in character tokenizer)",
    "  --vocab-size N       bpe: largest vocabulary (default 1024; fewer when the data has fewer frequent pairs)",
    "  --pack               pack whole examples into rows of up to --max-length tokens (first-fit decreasing);",
    "                       --batch-size then counts rows. Loss stays on completion tokens only, but attention",
    "                       crosses the examples of a row (no document mask): off by default",
    "  --bucket             length-bucketed batches: sort by length within seeded windows, then shuffle the",
    "                       batches (less padding, faster; seeded and resumable). Off by default: plain shuffle",
    "  --bucket-window N    micro-batches per sorting window with --bucket (default 50)",
    TRAIN_HELP].join("\n"),
  run: trainingOutput("sft", async (values) => {
    const { out, warn } = setup(values);
    if (typeof values.data !== "string") throw new InputError("--data FILE is required");
    if (values["bucket-window"] !== undefined && !values.bucket) throw new InputError("--bucket-window needs --bucket");
    const { model, tokenizer, fromScratch } = await loadPolicy(values, warn);
    const rng = maybeLora(values, model, intOption(values, "seed", 0, 0));
    const { examples, skipped } = await readSftFile(values.data, readOptions(values, tokenizer, warn));
    reportSkips(values.data, skipped, warn);
    if (examples.length === 0) throw new InputError("no usable examples", values.data);
    const loop: LoopConfig = { ...loopConfig(values, fromScratch ? 1e-3 : 2e-5),
      ...(values.bucket ? { bucket: intOption(values, "bucket-window", 50) } : {}) };
    const pack = Boolean(values.pack);
    const config = { stage: "sft", data: path.resolve(values.data), model: values.model ?? null, init: values.init ?? null, loop,
      ...(pack ? { pack } : {}),
      lora: values.lora === undefined ? null : { r: values.lora, alpha: values["lora-alpha"] ?? null, dropout: values["lora-dropout"] ?? null, targets: values["lora-targets"] ?? null },
      template: template(values), maxLength: intOption(values, "max-length", 1024) };
    writeJsonAtomic(path.join(out, "train_config.json"), config);
    const padId = tokenizer.padId ?? tokenizer.eosId ?? 0;
    const objective = sftObjective(model, padId);
    const evalItems = typeof values["eval-data"] === "string"
      ? (await readSftFile(values["eval-data"], readOptions(values, tokenizer, warn))).examples : [];
    const every = intOption(values, "eval-every", 0, 0);
    const common = { outDir: out, kind: "sft" as const, params: trainable(model), loop, rng,
      saveEvery: intOption(values, "save-every", 0, 0), keepLast: intOption(values, "keep-checkpoints", 2),
      resume: Boolean(values.resume), config, warn };
    const rows = pack ? packExamples(examples, intOption(values, "max-length", 1024)) : null;
    const packed = packedSftObjective(model, padId);
    const r = rows
      // Held-out loss is on unpacked examples (one a row) either way: exact, and comparable between the two.
      ? await runWithProgress<Example[]>("sft", { ...common, items: rows, objective: packed,
        evaluation: { items: evalItems.map((e) => [e]), objective: packed, every, batchSize: loop.batchSize } })
      : await runWithProgress<Example>("sft", { ...common, items: examples, objective,
        evaluation: { items: evalItems, objective, every, batchSize: loop.batchSize } });
    const padding = rows ? epochPadding(rows, loop, packed) : epochPadding(examples, loop, objective);
    if (!values.json) warn(`padding: ${(100 * padding).toFixed(1)}% of batch positions (first epoch's batches)`);
    return finish(values, "sft", out, r, model, tokenizer, { examples: examples.length, skipped: skipped.count,
      ...(rows ? { packed_rows: rows.length } : {}), padding_fraction: padding });
  }),
};

/** The share of padding in the first epoch's micro-batches, in the order the loop reads them. */
function epochPadding<T>(items: T[], loop: LoopConfig, objective: Objective<T>): number {
  const lengthOf = (item: T) => objective.lengthOf!(item);
  return paddingFraction(items.map(lengthOf), dataOrder(items, loop, 0, lengthOf), loop.batchSize);
}

/** --lora R: freezes the base and attaches adapters; returns the dropout RNG hooks for exact resume. */
function maybeLora(values: Values, model: Llama, seed: number): TrainRunRng | undefined {
  if (values.lora === undefined) {
    if (values.merge) throw new InputError("--merge needs --lora");
    return undefined;
  }
  const r = intOption(values, "lora", 8);
  const dropout = num(values, "lora-dropout", 0);
  if (dropout >= 1) throw new InputError(`--lora-dropout must be < 1, got ${dropout}`);
  const targets = typeof values["lora-targets"] === "string" ? values["lora-targets"].split(",").map((t) => t.trim()) : undefined;
  const adapter = attachLora(model, { r, alpha: values["lora-alpha"] === undefined ? undefined : num(values, "lora-alpha", 0),
    dropout, targetModules: targets, seed });
  adapter.training = true;
  return { get: () => adapter.rngState(), set: (s) => adapter.setRngState(s) };
}

type TrainRunRng = { get(): Uint32Array; set(state: Uint32Array): void };

function trainable(model: Llama) {
  return new Map([...model.params].filter(([, t]) => t.requiresGrad));
}

export const dpoCommand: Command = {
  name: "dpo",
  cooperative: true,
  resumeFlag: "--resume",
  summary: "DPO-family training on preference pairs (outcome, SCDPO or Step-DPO)",
  usage: "stepwise dpo --model DIR --pairs FILE --out DIR [--loss sigmoid[,sft]] [--loss-weights 1,0.2] [--beta 0.1] [options]",
  options: { ...TRAIN_OPTIONS, model: { type: "string" }, pairs: { type: "string" }, loss: { type: "string" },
    "loss-weights": { type: "string" }, beta: { type: "string" }, "label-smoothing": { type: "string" },
    "dpop-lambda": { type: "string" }, ref: { type: "string" }, reference: { type: "string" }, "eval-pairs": { type: "string" } },
  help: ["  --model DIR          the policy to train (usually the SFT model); also the reference unless --ref",
    "  --pairs FILE         JSONL or .parquet pairs: TRL {prompt, chosen, rejected} as strings or lists of",
    "                       {role, content} messages (the model's chat template), or {chosen, rejected} alone",
    "                       (implicit prompt: their common start), or Step-DPO format",
    "  --loss L[,L...]      sigmoid (default), robust, hinge, ipo, sigmoid_norm, apo_zero, dpop, sft",
    "  --loss-weights W,... one weight per loss (default 1 each); sigmoid,sft with 1,0.2 is Iterative RPO",
    "  --beta X             inverse temperature of the implicit reward (default 0.1)",
    "  --label-smoothing X  noise rate for sigmoid (cDPO) and robust (default 0)",
    "  --dpop-lambda X      dpop: weight of the penalty on a chosen log-prob below the reference's (default 50)",
    "  --ref DIR            a reference model other than --model",
    "  --reference MODE     precomputed (default: one batched pass, cached in --out) or live",
    "  --eval-pairs FILE    held-out pairs (same formats): eval/loss, eval/rewards/... in metrics.jsonl",
    TRAIN_HELP].join("\n"),
  run: trainingOutput("dpo", async (values) => {
    const { out, warn } = setup(values);
    if (typeof values.model !== "string") throw new InputError("--model DIR is required");
    if (typeof values.pairs !== "string") throw new InputError("--pairs FILE is required");
    const losses = parseLosses(String(values.loss ?? "sigmoid"), values["loss-weights"] as string | undefined);
    const beta = num(values, "beta", 0.1);
    const labelSmoothing = num(values, "label-smoothing", 0);
    if (beta <= 0) throw new InputError(`--beta must be > 0, got ${beta}`);
    if (labelSmoothing >= 0.5) throw new InputError(`--label-smoothing must be < 0.5, got ${labelSmoothing}`);
    const dpopLambda = num(values, "dpop-lambda", 50);
    if (!(dpopLambda >= 0)) throw new InputError(`--dpop-lambda must be >= 0, got ${dpopLambda}`);
    const mode = String(values.reference ?? "precomputed");
    if (mode !== "precomputed" && mode !== "live") throw new InputError(`--reference must be precomputed or live, got "${mode}"`);
    const { model, tokenizer } = await loadPolicy(values, warn);
    const rng = maybeLora(values, model, intOption(values, "seed", 0, 0));
    const { pairs, stepLevel, skipped } = await readPairsFile(values.pairs, readOptions(values, tokenizer, warn));
    reportSkips(values.pairs, skipped, warn);
    const loop = loopConfig(values, 1e-6);
    const refDir = typeof values.ref === "string" ? values.ref : values.model;
    const config = { stage: "dpo", pairs: path.resolve(values.pairs), model: path.resolve(values.model), ref: path.resolve(refDir),
      losses, beta, labelSmoothing, ...(losses.some((l) => l.name === "dpop") ? { dpopLambda } : {}), reference: mode, loop, template: template(values), maxLength: intOption(values, "max-length", 1024),
      lora: values.lora === undefined ? null : { r: values.lora, alpha: values["lora-alpha"] ?? null, dropout: values["lora-dropout"] ?? null, targets: values["lora-targets"] ?? null } };
    // With adapters the reference is the frozen base itself, adapters off: no second copy of the weights.
    const sameModel = refDir === values.model;
    const baseRef = values.lora !== undefined && sameModel
      ? { forward: (ids: Tensor, o?: { pos?: Tensor; keyMask?: Tensor | null }) => model.withAdaptersDisabled(() => model.forward(ids, o)) }
      : null;
    writeJsonAtomic(path.join(out, "train_config.json"), config);
    const padId = tokenizer.padId ?? tokenizer.eosId ?? 0;
    const evalPairs = typeof values["eval-pairs"] === "string"
      ? (await readPairsFile(values["eval-pairs"], readOptions(values, tokenizer, warn))).pairs : [];
    let refModel: Llama | null = null;
    // The reference pass stops at a batch on Ctrl-C (nothing of it is saved; a resume starts it again).
    const refFor = async (items: TokenPair[], file: string, source: string): Promise<Reference> => {
      if (mode === "live") return { kind: "live", model: baseRef ?? (refModel ??= loadModel(refDir, { warn })) };
      const key = JSON.stringify({ ref: config.ref, pairs: source, template: config.template, maxLength: config.maxLength });
      const logps = await cooperative(() => cachedRefLogpsAsync(path.join(out, file), key, async () => {
        const ref = baseRef ?? (sameModel ? model : (refModel ??= loadModel(refDir, { warn })));
        const bar = new Progress("reference log-probs", { total: items.length, unit: " pairs" });
        try {
          return await precomputeRefLogpsAsync(ref, items, padId, loop.batchSize, (done) => bar.set(done), () => stopRequested() !== null);
        } finally {
          bar.finish();
        }
      }));
      const signal = stopRequested();
      if (!logps) throw new InterruptedError(signal ?? "SIGINT", `the reference log-prob pass (${file}) stopped before its end; no training step ran`);
      return { kind: "precomputed", logps };
    };
    const reference = await refFor(pairs, "ref_logps.json", config.pairs);
    const options = { beta, labelSmoothing, dpopLambda, losses, padId };
    const evaluation = evalPairs.length === 0 ? undefined : {
      items: evalPairs, every: intOption(values, "eval-every", 0, 0), batchSize: loop.batchSize,
      objective: dpoObjective(model, await refFor(evalPairs, "ref_logps_eval.json", path.resolve(String(values["eval-pairs"]))), options),
    };
    try {
      const r = await runWithProgress("dpo", {
        outDir: out, kind: "dpo", items: pairs, params: trainable(model),
        objective: dpoObjective(model, reference, options), loop, evaluation, rng,
        saveEvery: intOption(values, "save-every", 0, 0), keepLast: intOption(values, "keep-checkpoints", 2),
        resume: Boolean(values.resume), config, warn,
      });
      return finish(values, "dpo", out, r, model, tokenizer, { pairs: pairs.length, step_pairs: stepLevel, skipped: skipped.count });
    } finally {
      (refModel as Llama | null)?.dispose();
    }
  }),
};
