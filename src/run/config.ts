// The config of `stepwise run`: every stage of the recipe on one page, defaults inline. A config file (YAML or
// JSON) overrides any subset; it is validated when parsed: an unknown key or a value of the wrong type is an error
// naming the key (`sft.lr: expected a number, got "fast"`). The resolved config is saved in the run directory.

import fs from "node:fs";
import { parse as parseYaml } from "yaml";
import { InputError } from "../core/errors.js";
import { PROMPT_TEMPLATES, type PromptTemplate } from "../data/format.js";
import { validateNoise, type NoiseConfig } from "../data/noise.js";
import { presetNames } from "../data/task.js";
import { asKeys } from "../core/config.js";
import { checkDpoKnobs, checkSftKnobs, MIN_VOCAB, SCHEDULES } from "../train/stage.js";

export interface VariantConfig {
  name: string; // directory and report name
  pairs: string[]; // pair sets trained on together: outcome, scdpo, stepdpo
  loss: string; // DPO loss list, as `stepwise dpo --loss` (sft alone: the sft-more control, SFT on the chosen sides)
  loss_weights: string | null; // as `--loss-weights`, null = 1 each
  beta: number | null; // null = dpo.beta
  // Per-variant overrides, null = the run's value (so an ablation is one config file):
  lr: number | null; // dpo.lr
  epochs: number | null; // dpo.epochs
  label_smoothing: number | null; // 0 (cDPO / robust noise rate)
  dpop_lambda: number | null; // 50 (dpop)
  chosen: string | null; // pairs.chosen
  rejected: string | null; // pairs.rejected
  stepdpo_chosen: string | null; // pairs.stepdpo_chosen
  // SFT replay in the DPO batches (one replayed example per pair): sft = the SFT data, chosen = the outcome pairs'
  // chosen sides (what sft-more trains on); null = none
  replay: string | null;
  replay_weight: number | null; // 1
}

export interface RunConfig {
  seeds: number; // runs of every seeded stage (model init, training, sampling); the report gives mean and spread
  rounds: number; // iterative rounds: a round's trained policy samples and is the reference of the next
  threads: number | null; // native backend threads, null = all cores
  task: {
    // builtin: generated arithmetic word problems (preset, steps, max_value, seed); gsm8k: GSM8K-format files
    // ({question, answer} with <<expr=value>> steps and "#### n"), checked by the gsm8k verifier
    source: string;
    train_file: string | null; // gsm8k: the training problems (the first task.train of them)
    test_file: string | null; // gsm8k: the held-out problems (the first task.test of them)
    preset: string; // easy | medium | hard, or a mix like easy+medium: the built-in task (see `stepwise task --help`)
    steps: string | null; // answer lines per problem, e.g. "2-4"; null = the preset's
    max_value: number | null; // largest intermediate value; null = the preset's
    train: number; // training problems (SFT and DPO use the same problem set, as the blog recommends)
    test: number; // held-out problems for every eval
    seed: number; // problem generation (the same problems for every seed)
    noise: NoiseConfig; // flawed reasoning in what SFT trains on (src/data/noise.ts); sampling and evals stay clean
  };
  model: {
    // A pretrained model to start from: a Hugging Face folder, a .gguf file or a Hugging Face name (owner/name[@rev]);
    // null = a model from scratch (init, tokenizer, vocab_size)
    pretrained: string | null;
    init: string; // tiny | small | a config.json: a model from scratch
    tokenizer: string; // bpe (learned from the SFT data) | chars
    vocab_size: number; // bpe vocabulary at most
    template: PromptTemplate; // plain (question, newline, solution) | chat (the pretrained model's chat template), every stage
  };
  sft: {
    epochs: number;
    batch_size: number;
    lr: number;
    max_length: number;
    bucket: boolean; // length-bucketed batches (less padding)
    lr_schedule: string; // after warmup: cosine (annealed to 0) | linear | constant (an un-annealed SFT model)
    lora: number | null; // rank-R LoRA adapters instead of every weight, merged into the SFT model; null = full SFT
  };
  eval: {
    max_tokens: number; // new tokens per greedy solution
    maj: number; // samples per problem for maj@k (0 = greedy accuracy only)
    temperature: number; // of the maj@k samples
  };
  sample: {
    problems: number; // training problems the SFT model samples on
    split: string; // "shared": the first `problems` of SFT's own problems (the blog found this better); "disjoint": the
    // last `problems` of task.train, which SFT then does not train on
    n: number; // completions per problem
    temperature: number;
    max_tokens: number;
    greedy: boolean; // add the greedy completion to each problem's samples (its own mistakes become rejected sides)
  };
  pairs: {
    max_per_problem: number; // pairs kept per problem and kind
    scdpo_n: number; // step-controlled continuations per correct solution
    scdpo_schedule: string; // temperature of generated step i: gsm8k = min(1.1+0.1i, 1.4), math, blog, or "a+b*i<=c"
    stepdpo_rollouts: number; // continuations per prefix when a wrong step is located by rollouts
    chosen: string; // outcome chosen sides: sound (right answer and every step checks) | answer (right answer)
    rejected: string; // outcome and SCDPO rejected sides: full | first_error (cut after the first wrong step, no EOS)
    stepdpo_chosen: string; // Step-DPO chosen step: rollout | corrected (the wrong line with its arithmetic fixed) | both
  };
  dpo: {
    beta: number;
    lr: number;
    epochs: number;
    batch_size: number;
  };
  variants: VariantConfig[];
}

const VARIANT_DEFAULT: VariantConfig = {
  name: "",
  pairs: [],
  loss: "sigmoid",
  loss_weights: null,
  beta: null,
  lr: null,
  epochs: null,
  label_smoothing: null,
  dpop_lambda: null,
  chosen: null,
  rejected: null,
  stepdpo_chosen: null,
  replay: null,
  replay_weight: null,
};
/** A variant with every unnamed knob at its default (the run's value). */
function variant(v: Partial<VariantConfig> & { name: string; pairs: string[] }): VariantConfig {
  return { ...VARIANT_DEFAULT, ...v };
}

export const DEFAULT_CONFIG: RunConfig = {
  seeds: 1,
  rounds: 1,
  threads: null,
  // The SFT data carries a systematic misconception (a borrow forgotten in 70% of the subtractions that need one):
  // the regime where preference training has something to fix (README: on clean data every variant loses to SFT).
  task: {
    source: "builtin",
    train_file: null,
    test_file: null,
    preset: "easy+medium",
    steps: "2-4",
    max_value: null,
    train: 48000,
    test: 400,
    seed: 1,
    noise: { kind: "borrow", rate: 0.7, answer: "recompute" },
  },
  model: { pretrained: null, init: "tiny", tokenizer: "bpe", vocab_size: 1024, template: "plain" },
  sft: { epochs: 1, batch_size: 32, lr: 3e-3, max_length: 512, bucket: true, lr_schedule: "cosine", lora: null },
  eval: { max_tokens: 160, maj: 4, temperature: 0.7 },
  sample: { problems: 600, split: "shared", n: 8, temperature: 1.0, max_tokens: 160, greedy: false },
  pairs: {
    max_per_problem: 4,
    scdpo_n: 4,
    scdpo_schedule: "gsm8k",
    stepdpo_rollouts: 4,
    chosen: "sound",
    rejected: "full",
    stepdpo_chosen: "rollout",
  },
  // The recipe's values of the DPO stage's knobs (src/train/stage.ts owns them, their defaults and validators;
  // a variant overrides beta, lr, epochs, loss, loss_weights, label_smoothing, dpop_lambda).
  dpo: { beta: 1.0, lr: 5e-5, epochs: 2, batch_size: 32 },
  variants: [
    variant({ name: "dpo", pairs: ["outcome"] }),
    variant({ name: "scdpo", pairs: ["outcome", "scdpo"] }),
    variant({ name: "step-dpo", pairs: ["stepdpo"] }),
    // the control: SFT continued on the chosen sides with the DPO stage's optimizer (rejection-sampling fine-tuning),
    // so a preference method's gain can be told apart from the gain of training further on verified samples
    variant({ name: "sft-more", pairs: ["outcome"], loss: "sft" }),
  ],
};

export const PAIR_KINDS = ["outcome", "scdpo", "stepdpo"] as const;
export const CHOSEN_RULES = ["sound", "answer"] as const;
export const REPLAY_SOURCES = ["sft", "chosen"] as const;
export const REJECTED_RULES = ["full", "first_error"] as const;
export const STEPDPO_CHOSEN = ["rollout", "corrected", "both"] as const;
export const TASK_SOURCES = ["builtin", "gsm8k"] as const;

// Keys whose value may be null besides their default's type.
const VARIANT_NUMBERS = ["beta", "lr", "epochs", "label_smoothing", "dpop_lambda", "replay_weight"];
const NULLABLE = new Set([
  "threads",
  "task.steps",
  "task.train_file",
  "task.test_file",
  "task.max_value",
  "model.pretrained",
  "sft.lora",
  ...Object.keys(VARIANT_DEFAULT)
    .filter((k) => k !== "name" && k !== "pairs" && k !== "loss")
    .map((k) => `variants.${k}`),
]);
const NUMBER_TYPES: Record<string, "string" | "number"> = {
  "task.max_value": "number",
  threads: "number",
  "sft.lora": "number",
  ...Object.fromEntries(VARIANT_NUMBERS.map((k) => [`variants.${k}`, "number" as const])),
};

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/** `dflt` overridden by `raw`, checked key by key against the default's types. */
function merge(dflt: Obj, raw: unknown, where: string, file: string): Obj {
  if (!isObj(raw)) throw new InputError(`${where || "config"}: expected a mapping, got ${JSON.stringify(raw)}`, file);
  const out: Obj = structuredClone(dflt);
  for (const [k, v] of Object.entries(raw)) {
    const key = where ? `${where}.${k}` : k;
    if (!(k in dflt))
      throw new InputError(
        `unknown key "${key}"`,
        file,
        `known: ${Object.keys(dflt)
          .map((x) => (where ? `${where}.${x}` : x))
          .join(", ")}`,
      );
    out[k] = checkValue(dflt[k], v, key, file);
  }
  return out;
}

function checkValue(dflt: unknown, v: unknown, key: string, file: string): unknown {
  const general = key.replace(/\[\d+\]/g, "");
  if (v === null && NULLABLE.has(general)) return null;
  if (key === "variants") {
    if (!Array.isArray(v) || v.length === 0) throw new InputError(`variants: expected a non-empty list`, file);
    return v.map((item, i) => checkVariant(item, `variants[${i}]`, file));
  }
  const want = dflt === null ? (NUMBER_TYPES[general] ?? "string") : Array.isArray(dflt) ? "array" : typeof dflt;
  if (want === "object") return merge(dflt as Obj, v, key, file);
  const got = Array.isArray(v) ? "array" : v === null ? "null" : typeof v;
  if (got !== want) throw new InputError(`${key}: expected a ${want}, got ${JSON.stringify(v)}`, file);
  if (want === "number" && !Number.isFinite(v as number))
    throw new InputError(`${key}: expected a finite number`, file);
  return v;
}

function checkVariant(raw: unknown, where: string, file: string): VariantConfig {
  const v = merge(VARIANT_DEFAULT as unknown as Obj, raw, where, file) as unknown as VariantConfig;
  if (!/^[a-z0-9][a-z0-9._-]*$/i.test(v.name))
    throw new InputError(`${where}.name: a directory-safe name is required, got ${JSON.stringify(v.name)}`, file);
  if (v.pairs.length === 0) throw new InputError(`${where}.pairs: name at least one of ${PAIR_KINDS.join(", ")}`, file);
  for (const p of v.pairs) {
    if (!(PAIR_KINDS as readonly string[]).includes(p as string))
      throw new InputError(
        `${where}.pairs: unknown pair kind ${JSON.stringify(p)}`,
        file,
        `use ${PAIR_KINDS.join(", ")}`,
      );
  }
  // The DPO knobs are checked by the DPO stage's own validators (one name, one default, one check each).
  const knobs = {
    loss: v.loss,
    loss_weights: v.loss_weights,
    beta: v.beta,
    lr: v.lr,
    epochs: v.epochs,
    label_smoothing: v.label_smoothing,
    dpop_lambda: v.dpop_lambda,
    replay_weight: v.replay_weight,
  };
  checkDpoKnobs(knobs, asKeys(`${where}.`), file);
  oneOf(v.replay, REPLAY_SOURCES, `${where}.replay`, file);
  oneOf(v.chosen, CHOSEN_RULES, `${where}.chosen`, file);
  oneOf(v.rejected, REJECTED_RULES, `${where}.rejected`, file);
  oneOf(v.stepdpo_chosen, STEPDPO_CHOSEN, `${where}.stepdpo_chosen`, file);
  return v;
}

function oneOf(v: string | null, allowed: readonly string[], key: string, file: string): void {
  if (v !== null && !allowed.includes(v))
    throw new InputError(`${key}: expected ${allowed.join(" or ")}, got ${JSON.stringify(v)}`, file);
}

/** Semantic checks the types cannot express. */
function checkRanges(c: RunConfig, file: string): void {
  const positive: [string, number][] = [
    ["seeds", c.seeds],
    ["rounds", c.rounds],
    ["task.train", c.task.train],
    ["task.test", c.task.test],
    ["sft.epochs", c.sft.epochs],
    ["sft.batch_size", c.sft.batch_size],
    ["sample.problems", c.sample.problems],
    ["sample.n", c.sample.n],
    ["eval.max_tokens", c.eval.max_tokens],
    ["sample.max_tokens", c.sample.max_tokens],
    ["pairs.max_per_problem", c.pairs.max_per_problem],
    ["pairs.scdpo_n", c.pairs.scdpo_n],
    ["pairs.stepdpo_rollouts", c.pairs.stepdpo_rollouts],
  ];
  for (const [k, v] of positive)
    if (!Number.isInteger(v) || v < 1) throw new InputError(`${k}: expected an integer >= 1, got ${v}`, file);
  if (!Number.isInteger(c.eval.maj) || c.eval.maj < 0)
    throw new InputError(`eval.maj: expected an integer >= 0, got ${c.eval.maj}`, file);
  for (const [k, v] of [
    ["eval.temperature", c.eval.temperature],
    ["sample.temperature", c.sample.temperature],
  ] as const)
    if (!(v >= 0)) throw new InputError(`${k}: expected a number >= 0, got ${v}`, file);
  if (c.model.pretrained === null && !(Number.isInteger(c.model.vocab_size) && c.model.vocab_size >= MIN_VOCAB))
    throw new InputError(`model.vocab_size: expected an integer >= ${MIN_VOCAB}, got ${c.model.vocab_size}`, file);
  oneOf(c.sft.lr_schedule, SCHEDULES, "sft.lr_schedule", file);
  checkSftKnobs({ lr: c.sft.lr, max_length: c.sft.max_length }, asKeys("sft."), file);
  oneOf(c.task.source, TASK_SOURCES, "task.source", file);
  if (c.task.source === "gsm8k") {
    for (const k of ["train_file", "test_file"] as const) {
      const f = c.task[k];
      if (f === null) throw new InputError(`task.${k}: task.source gsm8k needs the GSM8K-format file`, file);
      if (!fs.existsSync(f)) throw new InputError(`task.${k}: no such file: ${f}`, file);
    }
  } else if (c.task.train_file !== null || c.task.test_file !== null) {
    throw new InputError("task.train_file and task.test_file are for task.source gsm8k", file);
  }
  if (!presetNames(c.task.preset)) {
    throw new InputError(
      `task.preset: expected easy, medium or hard, or several different ones joined by "+" (easy+medium), got ${JSON.stringify(c.task.preset)}`,
      file,
    );
  }
  try {
    validateNoise(c.task.noise, "task.noise");
  } catch (e) {
    throw new InputError((e as Error).message, file);
  }
  if (c.sample.problems > c.task.train)
    throw new InputError(`sample.problems (${c.sample.problems}) is more than task.train (${c.task.train})`, file);
  if (c.sample.split !== "shared" && c.sample.split !== "disjoint")
    throw new InputError(`sample.split: expected "shared" or "disjoint", got ${JSON.stringify(c.sample.split)}`, file);
  if (c.sample.split === "disjoint" && c.sample.problems >= c.task.train) {
    throw new InputError(
      `sample.split disjoint: sample.problems (${c.sample.problems}) leaves no SFT problems of task.train (${c.task.train})`,
      file,
    );
  }
  oneOf(c.model.template, PROMPT_TEMPLATES, "model.template", file);
  if (c.model.template === "chat" && c.model.pretrained === null) {
    throw new InputError(
      "model.template chat needs model.pretrained (a model whose tokenizer has a chat template)",
      file,
    );
  }
  if (c.sft.lora !== null && !(Number.isInteger(c.sft.lora) && c.sft.lora >= 1))
    throw new InputError(`sft.lora: expected an integer >= 1 (the rank) or null, got ${c.sft.lora}`, file);
  oneOf(c.pairs.chosen, CHOSEN_RULES, "pairs.chosen", file);
  oneOf(c.pairs.rejected, REJECTED_RULES, "pairs.rejected", file);
  oneOf(c.pairs.stepdpo_chosen, STEPDPO_CHOSEN, "pairs.stepdpo_chosen", file);
  checkDpoKnobs(c.dpo, asKeys("dpo."), file);
  const names = new Set<string>();
  for (const v of c.variants) {
    if (names.has(v.name) || v.name === "sft")
      throw new InputError(`variants: the name "${v.name}" is used twice (or is "sft")`, file);
    names.add(v.name);
  }
}

/** The default config overridden by a parsed YAML/JSON document. */
export function resolveConfig(raw: unknown, file = "config"): RunConfig {
  const c = merge(DEFAULT_CONFIG as unknown as Obj, raw ?? {}, "", file) as unknown as RunConfig;
  checkRanges(c, file);
  return c;
}

/** Reads and validates a YAML or JSON config file (JSON is YAML). */
export function loadConfig(file: string): RunConfig {
  if (!fs.existsSync(file)) throw new InputError("no such config file", file);
  let raw: unknown;
  try {
    raw = parseYaml(fs.readFileSync(file, "utf8"));
  } catch (e) {
    throw new InputError(`not valid YAML or JSON: ${(e as Error).message}`, file);
  }
  return resolveConfig(raw, file);
}
