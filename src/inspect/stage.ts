// The inspect stages as library functions, each a typed config (validated once by its *Config function; errors
// name the flag or the key) and a function of it and a StageContext:
//   scoreText       per-token log-probs of a text, and rewards beta * log(pi / pi_ref) against a reference
//   creditText      which tokens and steps a DPO-trained policy credits or blames (credit.ts), an HTML heatmap
//   corruptEvalFile how often the lowest-reward step of a corrupted solution is the corrupted one (corrupt.ts)
//   searchFile      implicit-reward guided step-level beam search against greedy decoding (search.ts)
// Each loads the policy and its reference (src/model/policy-ref.ts) and frees them before it returns.

import path from "node:path";
import { writeFileAtomic, writeJsonlAtomic } from "../core/atomic.js";
import { asKeys, KnobReader, type Naming } from "../core/config.js";
import { InputError } from "../core/errors.js";
import { writeOutput } from "../core/outputs.js";
import { progressOf, type StageContext } from "../core/stage.js";
import { PROMPT_TEMPLATES, type PromptTemplate, promptText } from "../data/format.js";
import { collect, loadMapped } from "../data/load.js";
import { loadPolicyAndRef, type PolicyRefSource } from "../model/policy-ref.js";
import type { MathTask } from "../verify/record.js";
import { type CorruptEvalResult, type CorruptMode, corruptEval } from "./corrupt.js";
import { type Credit, type SequenceScore, scoreCredit, scoreSequence } from "./credit.js";
import { creditHtml } from "./render.js";
import { type SearchResult, type SearchScore, searchProblems } from "./search.js";

type Given = Record<string, unknown>;

/** The DPO beta of the implicit reward: a number > 0 (default 0.1). */
const betaOf = (r: KnobReader) => r.num("beta", 0.1, (x) => x > 0, "a number > 0");

const templateOf = (r: KnobReader) => r.choice("template", PROMPT_TEMPLATES, "plain", "plain or chat");

/** The policy (model), its reference (ref: needed or not) and the backend that runs them. */
function policyRefOf(r: KnobReader, needRef: boolean): PolicyRefSource {
  return {
    model: r.need("model", "DIR"),
    ref: needRef ? r.need("ref", "DIR", "the model the policy was trained from") : r.str("ref", null),
    backend: r.str("backend", null),
    threads: r.int("threads", null),
  };
}

/** The first `limit` problems of a file of {id, question, answer}; none is an InputError naming the file. */
async function readProblems(file: string, limit: number | null) {
  const problems = (await collect(loadMapped(file))).slice(0, limit ?? undefined);
  if (problems.length === 0) throw new InputError("no problems", file);
  return problems;
}

// --- score ---

export interface ScoreConfig extends PolicyRefSource {
  text: string; // scored whole, BOS added as the tokenizer adds it
  beta: number; // DPO beta of the reward (0.1); rewards only with a ref
}

export function scoreConfig(given: Partial<ScoreConfig> | Given, naming: Naming = asKeys()): ScoreConfig {
  const r = new KnobReader(given as Given, naming);
  r.required("model", "DIR");
  const text = r.need("text", "STR");
  const beta = betaOf(r);
  return { ...policyRefOf(r, false), text, beta };
}

/** Each token's log-prob under the model given every token before it, and its reward against c.ref when set. */
export async function scoreText(c: ScoreConfig, _ctx: StageContext = {}): Promise<SequenceScore> {
  const m = loadPolicyAndRef(c, "score against the model this one was trained from");
  try {
    const ids = m.tokenizer.encode(c.text);
    if (ids.length === 0) throw new InputError("the text has no tokens", "--text");
    return scoreSequence(m.model, m.ref, m.tokenizer, ids, c.beta);
  } finally {
    m.dispose();
  }
}

// --- credit ---

export interface CreditConfig extends PolicyRefSource {
  ref: string; // the model the policy was trained from
  text: string; // the completion to score
  prompt: string; // text before it, context only (no rewards); "" = BOS alone
  question: string | null; // or a problem's question: the prompt is made as SFT makes it (template)
  template: PromptTemplate; // plain or chat, for question
  eos: boolean; // also score an end-of-sequence token after the text
  beta: number; // DPO beta of the reward (0.1)
  html: string | null; // a self-contained HTML heatmap written here (atomically)
}

/** What creditText returns (and `stepwise credit --json` prints): the Credit, and the heatmap's absolute path. */
export type CreditResult = Credit & { html?: string };

export function creditConfig(given: Partial<CreditConfig> | Given, naming: Naming = asKeys()): CreditConfig {
  const r = new KnobReader(given as Given, naming);
  const text = r.need("text", "STR");
  if (r.has("prompt") && r.has("question"))
    throw new InputError(`give ${naming.name("prompt")} or ${naming.name("question")}, not both`);
  const beta = betaOf(r);
  const question = r.str("question", null);
  const template = question === null ? "plain" : templateOf(r);
  const { ref, ...pr } = policyRefOf(r, true);
  const html = r.str("html", null);
  return { ...pr, ref: ref!, text, prompt: r.str("prompt", ""), question, template, eos: r.bool("eos"), beta, html };
}

/** The per-token and per-step implicit rewards of c.text after its prompt, and the heatmap when c.html is set. */
export async function creditText(c: CreditConfig, _ctx: StageContext = {}): Promise<CreditResult> {
  const m = loadPolicyAndRef(c);
  try {
    const prompt = c.question !== null ? promptText(c.question, c.template, m.tokenizer) : c.prompt;
    const credit = scoreCredit(m.model, m.ref!, m.tokenizer, c.text, { beta: c.beta, prompt, addEos: c.eos });
    if (c.html === null) return credit;
    const page = creditHtml(credit, { model: c.model, ref: c.ref });
    await writeOutput(c.html, (f) => writeFileAtomic(f, page));
    return { ...credit, html: path.resolve(c.html) };
  } finally {
    m.dispose();
  }
}

// --- credit --corrupt-eval ---

export interface CorruptEvalConfig extends PolicyRefSource {
  ref: string; // the model the policy was trained from
  problems: string; // {id, question, answer} with full solutions (as `stepwise task` writes)
  corrupt_mode: CorruptMode; // keep (later steps as they were) or recompute (the wrong value carried on)
  seed: number; // which step of each solution is corrupted, and how (0)
  template: PromptTemplate; // plain or chat
  limit: number | null; // the first N problems
  beta: number; // DPO beta of the reward (0.1)
  out: string | null; // per-problem records, JSONL
}

export function corruptEvalConfig(
  given: Partial<CorruptEvalConfig> | Given,
  naming: Naming = asKeys(),
): CorruptEvalConfig {
  const r = new KnobReader(given as Given, naming);
  const problems = r.need("problems", "FILE", "problems with reference solutions");
  const beta = betaOf(r);
  const seed = r.int("seed", 0, 0);
  const template = templateOf(r);
  const mode = r.choice("corrupt_mode", ["keep", "recompute"] as const, "keep", "keep or recompute");
  const limit = r.int("limit", null);
  const { ref, ...pr } = policyRefOf(r, true);
  return { ...pr, ref: ref!, problems, corrupt_mode: mode, seed, template, limit, beta, out: r.str("out", null) };
}

/** The corrupt-eval summary (the per-problem records go to c.out when set). */
export type CorruptEvalSummary = Omit<CorruptEvalResult, "records">;

/** The lines `stepwise credit --corrupt-eval` prints: each hit rate against chance. */
export function corruptEvalText(r: CorruptEvalSummary): string {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  return (
    `corrupted solutions: ${r.n} (${r.skipped} skipped)\n` +
    `lowest implicit reward step is the corrupted one: ${pct(r.implicit_reward_hit_rate)}\n` +
    `lowest reference mean log-prob step:               ${pct(r.ref_logprob_hit_rate)}\n` +
    `chance:                                            ${pct(r.chance)}`
  );
}

/** Corrupts one step of each reference solution and checks which step each predictor blames (corrupt.ts). */
export async function corruptEvalFile(c: CorruptEvalConfig, ctx: StageContext = {}): Promise<CorruptEvalSummary> {
  const problems = await readProblems(c.problems, c.limit);
  const m = loadPolicyAndRef(c);
  try {
    const bar = progressOf(ctx, "credit corrupt-eval", { total: problems.length, unit: "solutions" });
    const { beta, seed, template, corrupt_mode: mode } = c;
    const r = corruptEval(m.model, m.ref!, m.tokenizer, problems, {
      beta,
      seed,
      template,
      mode,
      onProgress: (d) => bar.set(d),
    });
    bar.finish();
    const { records, ...summary } = r;
    if (c.out !== null) await writeOutput(c.out, (f) => writeJsonlAtomic(f, records));
    return summary;
  } finally {
    m.dispose();
  }
}

// --- search ---

export interface SearchConfig extends PolicyRefSource {
  problems: string; // {id, question, answer} (a reference solution or a final answer)
  beams: number; // beams kept per problem
  expand: number; // sampled candidates per beam and step besides the greedy one (3)
  temperature: number; // of the sampled candidates (0.7)
  score: SearchScore; // reward: beta*log(pi/pi_ref) (needs ref), or logprob: the policy's log-prob
  beta: number; // DPO beta of the reward (0.1)
  max_steps: number; // steps (lines) per solution at most (12)
  max_tokens: number; // generated tokens per solution at most (256)
  seed: number; // seeds the sampled candidates (0)
  batch_size: number; // rows generated and scored together (32)
  template: PromptTemplate; // plain or chat
  task: MathTask; // how answers are compared: arith, gsm8k or math
  limit: number | null; // the first N problems
  out: string | null; // per-problem records, JSONL
}

/** What searchFile returns (and `stepwise search --json` prints): the summary and the seconds it took. */
export type SearchSummary = Omit<SearchResult, "records"> & { seconds: number };

export function searchConfig(given: Partial<SearchConfig> | Given, naming: Naming = asKeys()): SearchConfig {
  const r = new KnobReader(given as Given, naming);
  const problems = r.need("problems", "FILE");
  r.required("beams", "K");
  const score = r.choice("score", ["reward", "logprob"] as const, "reward", "reward or logprob");
  const task = r.choice("task", ["arith", "gsm8k", "math"] as const, "arith", "arith, gsm8k or math");
  const knobs = {
    problems,
    beams: r.int("beams", 1),
    expand: r.int("expand", 3, 0),
    temperature: r.num("temperature", 0.7, (x) => x >= 0, "a number >= 0"),
    beta: betaOf(r),
    score,
    max_steps: r.int("max_steps", 12),
    max_tokens: r.int("max_tokens", 256),
    seed: r.int("seed", 0, 0),
    batch_size: r.int("batch_size", 32),
    template: templateOf(r),
    task,
    limit: r.int("limit", null),
  };
  return { ...knobs, ...policyRefOf(r, score === "reward"), out: r.str("out", null) };
}

/** Greedy decoding and beam search on each problem, verified against its reference (search.ts). */
export async function searchFile(c: SearchConfig, ctx: StageContext = {}): Promise<SearchSummary> {
  const problems = await readProblems(c.problems, c.limit);
  const m = loadPolicyAndRef(c);
  try {
    const t0 = performance.now();
    const bar = progressOf(ctx, "search", { total: problems.length, unit: "problems" });
    const r = searchProblems(m.model, m.ref, m.tokenizer, problems, {
      beams: c.beams,
      expand: c.expand,
      temperature: c.temperature,
      beta: c.beta,
      score: c.score,
      maxSteps: c.max_steps,
      maxTokens: c.max_tokens,
      seed: c.seed,
      batchSize: c.batch_size,
      template: c.template,
      task: c.task,
      onProgress: (d) => bar.set(d),
    });
    bar.finish();
    const { records, ...summary } = r;
    if (c.out !== null) await writeOutput(c.out, (f) => writeJsonlAtomic(f, records));
    return { ...summary, seconds: Number(((performance.now() - t0) / 1000).toFixed(2)) };
  } finally {
    m.dispose();
  }
}
