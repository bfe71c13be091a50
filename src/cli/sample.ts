// `stepwise sample`: N completions per problem (or step-controlled continuations of each reference solution),
// batched, seeded, streamed to JSONL, resumable.
//
// Resuming: the output is append-only; every batch is written and fsynced before the next starts. A rerun of the
// same command reads the file back, drops a torn last line (a kill during a write), and generates only the
// (id, sample) pairs that are missing. Every sample's randomness derives from (--seed, id, sample index) alone, so
// a resumed run writes exactly the lines an uninterrupted run would have. The options that decide the samples are
// kept beside the output (OUT.config.json): a rerun with different ones is refused rather than mixed in.

import fs from "node:fs";
import { open } from "node:fs/promises";
import path from "node:path";
import { backendByName, getBackend, setBackend } from "../backend/index.js";
import { EndpointError, InputError, InterruptedError } from "../core/errors.js";
import { cooperative, stopRequested } from "../core/interrupt.js";
import { Rng } from "../core/rng.js";
import { promptText, completionText, type PromptTemplate } from "../data/format.js";
import { loadCode, loadGsm8k, loadMapped, loadMath, newStats } from "../data/load.js";
import { writeFileAtomic } from "../data/jsonl.js";
import { fnv1a } from "../data/task.js";
import { sequenceSeed } from "../model/generate.js";
import { LocalCompleter } from "../sample/local.js";
import {
  continueStepwise, cutCount, cutPoint, DEFAULT_SCHEDULE, parseCut, parseStepSchedule, solutionPrefix, solutionSteps,
  type CutSpec, type StepSchedule,
} from "../sample/stepcontrol.js";
import type { Completer, Completion, FinishReason } from "../sample/types.js";
import { prepareOutputFile, withOutputLock } from "../core/outputs.js";
import { Progress } from "./progress.js";
import { intOption, numOption } from "./options.js";
import type { Command } from "./main.js";

type Values = Record<string, string | boolean | undefined>;

export { intOption } from "./options.js";

// --- completers from flags (shared with `stepwise pairs`) ---

export const COMPLETER_OPTIONS = {
  model: { type: "string" }, endpoint: { type: "string" }, "endpoint-model": { type: "string" },
  backend: { type: "string" }, threads: { type: "string" }, retries: { type: "string" }, timeout: { type: "string" },
} as const;

export const COMPLETER_HELP = [
  "  --model DIR          generate with the local engine from a model folder, a .gguf file or a Hugging Face name",
  "  --endpoint URL       or with an OpenAI-compatible /v1/completions server (vLLM, SGLang, llama.cpp, Ollama,",
  "                       stepwise serve); URL1,URL2,... balances the load over several",
  "  --endpoint-model M   the server's model (default: the first of /v1/models)",
  "  --retries N          endpoint: retries of one request after its first attempt (default 6), with",
  "                       exponential backoff and full jitter; a server's Retry-After is honoured (up to 20 s)",
  "  --timeout S          endpoint: seconds one attempt may take, to the whole body (default 300)",
  "  --backend B          local engine: native (default when built) or reference",
  "  --threads N          local engine: native backend threads (default: all cores)",
].join("\n");

/** The completer the flags name (--model or --endpoint), or null when `optional` and neither is given. */
export async function completerFrom(values: Values, o: { batchSize: number; seed: number; optional?: boolean }): Promise<Completer | null> {
  const model = values.model;
  const endpoint = values.endpoint;
  if (model !== undefined && endpoint !== undefined) throw new InputError("give --model DIR or --endpoint URL, not both");
  if (endpoint === undefined) {
    for (const flag of ["retries", "timeout"]) {
      if (values[flag] !== undefined) throw new InputError(`--${flag} needs --endpoint`);
    }
  }
  if (typeof model === "string") {
    if (values.backend) setBackend(backendByName(String(values.backend)));
    if (values.threads !== undefined) getBackend().setThreads(intOption(values, "threads", 1));
    return LocalCompleter.load(model, { batchSize: o.batchSize, seed: o.seed });
  }
  if (typeof endpoint === "string") {
    return httpCompleter(endpoint, values["endpoint-model"], {
      retries: intOption(values, "retries", 6, 0),
      timeoutMs: 1000 * numOption(values, "timeout", 300, (x) => x > 0 && x <= 86_400, "a number of seconds in (0, 86400]")!,
    });
  }
  if (o.optional) return null;
  throw new InputError("--model DIR or --endpoint URL is required");
}

/** The OpenAI-compatible client (src/sample/http.ts), loaded only when asked for: "URL" or "URL1,URL2,..." (balanced). */
async function httpCompleter(spec: string, model: string | boolean | undefined, o: { retries: number; timeoutMs: number }): Promise<Completer> {
  const urls = spec.split(",").map((u) => u.trim()).filter(Boolean);
  if (urls.length === 0) throw new InputError("--endpoint needs a URL");
  const { createHttpCompleter } = await import("../sample/http.js");
  return createHttpCompleter(urls, { model: typeof model === "string" ? model : undefined, ...o });
}

// --- problems ---

interface Problem {
  id: string;
  prompt: string; // what the model continues
  fields: Record<string, unknown>; // written into every sample record (question, answer, extra fields)
  answer: string | null; // the reference solution, for step-controlled sampling
}

type ProblemFormat = "jsonl" | "gsm8k" | "math" | "code";
const FORMATS: ProblemFormat[] = ["jsonl", "gsm8k", "math", "code"];
/** Fields later stages define: a problem's own field of that name is not carried into the samples. */
const RESERVED = new Set(["sample", "completion", "finish_reason", "logprobs", "cut", "prefix", "steps", "correct", "pred",
  "first_error_step", "result"]);

async function readProblems(file: string, format: ProblemFormat, template: PromptTemplate, completer: Completer,
  skipBad: boolean): Promise<{ problems: Problem[]; bad: number }> {
  const stats = newStats();
  const opts = { skipBad, stats };
  const problems: Problem[] = [];
  const seen = new Set<string>();
  const chat = completer instanceof LocalCompleter ? completer.tokenizer : undefined;
  if (template === "chat" && !chat) throw new InputError("--template chat needs the model's tokenizer: use --model DIR");
  const source = format === "code" ? loadCode(file, opts) : format === "gsm8k" ? loadGsm8k(file, opts)
    : format === "math" ? loadMath(file, opts) : loadMapped(file, opts);
  for await (const rec of source) {
    if (seen.has(rec.id)) throw new InputError(`duplicate problem id "${rec.id}"`, file, "samples are keyed by (id, sample): ids must be unique");
    seen.add(rec.id);
    const fields = Object.fromEntries(Object.entries(rec).filter(([k]) => !RESERVED.has(k) && k !== "id"));
    if (typeof rec.question === "string") {
      problems.push({ id: rec.id, prompt: promptText(rec.question, template, chat), fields, answer: String(rec.answer) });
    } else {
      problems.push({ id: rec.id, prompt: String(rec.prompt), fields, answer: null }); // code: the prompt as it is
    }
  }
  return { problems, bad: stats.bad };
}

// --- the append-only output ---

/** Keys of the complete records already in `file`; a torn last line is cut off the file. */
function readDone(file: string): Set<string> {
  const done = new Set<string>();
  if (!fs.existsSync(file)) return done;
  const buf = fs.readFileSync(file);
  const end = buf.lastIndexOf(10) + 1; // bytes after the last newline are a write cut short
  if (end < buf.length) fs.truncateSync(file, end);
  const lines = buf.subarray(0, end).toString("utf8").split("\n");
  lines.forEach((text, i) => {
    if (text.trim() === "") return;
    let r: { id?: unknown; sample?: unknown };
    try {
      r = JSON.parse(text);
    } catch {
      throw new InputError("not a JSON line: the output was changed by something else", `${file}:${i + 1}`,
        "remove the line, or start over with a new --out");
    }
    done.add(key(String(r.id), Number(r.sample)));
  });
  return done;
}

function key(id: string, sample: number): string {
  return `${id}\u0000${sample}`;
}

/** Saves the options that decide the samples beside the output, or checks a resumed run's against them. */
function checkConfig(out: string, config: Record<string, unknown>): void {
  const file = `${out}.config.json`;
  if (!fs.existsSync(file)) {
    if (fs.existsSync(out) && fs.statSync(out).size > 0) {
      throw new InputError(`the output exists but ${path.basename(file)} does not: not written by stepwise sample?`, out,
        "choose another --out, or delete the file");
    }
    return;
  }
  let old: Record<string, unknown>;
  try {
    old = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    throw new InputError(`cannot read (${(e as Error).message})`, file);
  }
  const keys = [...new Set([...Object.keys(old), ...Object.keys(config)])];
  const diff = keys.filter((k) => JSON.stringify(old[k]) !== JSON.stringify(config[k]));
  if (diff.length > 0) {
    const shown = diff.map((k) => `${k}: ${JSON.stringify(old[k])} before, ${JSON.stringify(config[k])} now`).join("; ");
    throw new InputError(`cannot resume with different options (${shown})`, out,
      "rerun with the same options to resume, or choose another --out (or delete OUT and OUT.config.json)");
  }
}

// --- the stage ---

export interface SampleOptions {
  problems: string;
  format: ProblemFormat;
  out: string;
  n: number;
  temperature: number;
  topP?: number;
  topK?: number;
  maxTokens: number;
  stop?: string[];
  seed: number;
  logprobs: boolean;
  template: PromptTemplate;
  batchSize: number;
  skipBad: boolean;
  /** Step-controlled sampling: the schedule, where to cut, and the most steps generated. */
  stepControl?: { schedule: StepSchedule; cut: CutSpec; maxSteps: number };
}

export interface SampleSummary {
  problems: number;
  samples: number; // expected in the output when the run ends
  present: number; // already in the output at the start (a resumed run)
  written: number; // by this run
  skipped: Record<string, number>; // what was not sampled, and why
  finish_reasons: Record<FinishReason, number>; // of the samples written by this run
  out: string;
  missing: { id: string; sample: number }[]; // samples whose requests kept failing: a rerun generates them
  unattempted?: number; // samples not asked for after MAX_DEFERRED failures (a rerun generates them too)
  last_error?: string; // the last failure, when some are missing
}

/** One sample to generate. */
interface Job {
  problem: Problem;
  sample: number;
  cut?: number;
  prefix?: string;
  seed: number;
}

/** The seed of sample `sample` of problem `id`: independent of every other sample, the batching and resuming. */
export function sampleSeed(seed: number, id: string, sample: number): number {
  return sequenceSeed(fnv1a(`${seed >>> 0}\u0000${id}`), sample);
}

/**
 * Every sample the run should hold, in output order, generated one at a time (memory stays bounded whatever --n
 * is); what cannot be sampled is counted into `skipped`.
 */
function* plan(problems: Problem[], o: SampleOptions, skipped: Record<string, number>): Generator<Job> {
  const skip = (why: string, count = 1) => (skipped[why] = (skipped[why] ?? 0) + count);
  for (const problem of problems) {
    if (!o.stepControl) {
      for (let s = 0; s < o.n; s++) yield { problem, sample: s, seed: sampleSeed(o.seed, problem.id, s) };
      continue;
    }
    const { cut } = o.stepControl;
    const total = o.n * cutCount(cut);
    if (problem.answer === null) {
      skip("samples of problems without a reference solution", total);
      continue;
    }
    const solution = completionText(problem.answer);
    const sol = solutionSteps(solution);
    if (sol.steps.length < 2) {
      skip("samples of problems whose answer is not a solution in steps", total);
      continue;
    }
    for (let s = 0; s < total; s++) {
      const rng = new Rng(sampleSeed(o.seed, problem.id, s));
      const k = cutPoint(cut, sol, Math.floor(s / o.n), rng);
      if (k === null) {
        skip("samples cut beyond the end of the solution");
        continue;
      }
      yield { problem, sample: s, cut: k, prefix: solutionPrefix(solution, k), seed: rng.nextU32() };
    }
  }
}

/** How many samples the plan holds, how many of them `done` has, and what is skipped, without holding the plan. */
function tally(problems: Problem[], o: SampleOptions, done: Set<string>): { samples: number; present: number; skipped: Record<string, number> } {
  const skipped: Record<string, number> = {};
  if (!o.stepControl) { // every (problem, sample < n): counted from the problems and the output alone
    const ids = new Set(problems.map((p) => p.id));
    let present = 0;
    for (const k of done) {
      const [id, sample] = k.split("\u0000");
      if (ids.has(id) && Number(sample) < o.n) present++;
    }
    return { samples: problems.length * o.n, present, skipped };
  }
  let samples = 0;
  let present = 0;
  for (const j of plan(problems, o, skipped)) {
    samples++;
    if (done.has(key(j.problem.id, j.sample))) present++;
  }
  return { samples, present, skipped };
}

/** Batches of the jobs `done` lacks, drawn lazily from `jobs`. */
function* batches(jobs: Iterable<Job>, done: Set<string>, size: number): Generator<Job[]> {
  let batch: Job[] = [];
  for (const j of jobs) {
    if (done.has(key(j.problem.id, j.sample))) continue;
    batch.push(j);
    if (batch.length === size) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}

function record(job: Job, c: Completion, o: SampleOptions): Record<string, unknown> {
  const p = job.problem;
  const { question, answer, ...extra } = p.fields;
  return {
    id: p.id, sample: job.sample,
    ...(question !== undefined ? { question } : {}), ...(answer !== undefined ? { answer } : {}),
    completion: (job.prefix ?? "") + c.text, finish_reason: c.finishReason,
    ...(o.logprobs ? { logprobs: c.logprobs ?? null } : {}),
    ...(job.cut !== undefined ? { cut: job.cut, prefix: job.prefix } : {}),
    ...extra,
  };
}

/**
 * Completions of one batch of jobs, in job order; an EndpointError in place of a job whose requests kept failing.
 * Over a completer that settles requests one by one (HTTP) only the failed jobs fail; otherwise a batch whose
 * call failed with an EndpointError fails as a whole. Any other error (a refusal, a bug) is thrown.
 */
async function runBatch(completer: Completer, jobs: Job[], o: SampleOptions): Promise<(Completion | EndpointError)[]> {
  try {
    if (o.stepControl) {
      const conts = await continueStepwise(completer, jobs.map((j) => ({ prompt: j.problem.prompt + j.prefix, seed: j.seed })), {
        schedule: o.stepControl.schedule, maxTokens: o.maxTokens, maxSteps: o.stepControl.maxSteps, topP: o.topP, topK: o.topK,
        logprobs: o.logprobs,
      });
      return conts.map((c) => ({ text: c.text, finishReason: c.finishReason, tokens: c.tokens, logprobs: c.logprobs }));
    }
    const requests = jobs.map((j) => ({
      prompt: j.problem.prompt,
      params: { n: 1, temperature: o.temperature, topP: o.topP, topK: o.topK, maxTokens: o.maxTokens, stop: o.stop,
        seed: j.seed, logprobs: o.logprobs },
    }));
    const res = completer.completeSettled ? await completer.completeSettled(requests) : await completer.complete(requests);
    return res.map((r, i) => {
      if (r instanceof EndpointError) return r;
      if (r instanceof Error) throw r;
      if (!r[0]) throw new Error(`${completer.name}: no completion for request ${i}`);
      return r[0];
    });
  } catch (e) {
    if (e instanceof EndpointError) return jobs.map(() => e);
    throw e;
  }
}

/** Passes over the samples that failed, after the first pass over all: a server that recovers gets them done. */
export const RETRY_PASSES = 2;

/** Failed samples a pass holds for the next one before it stops asking (memory stays bounded if the server is down). */
export const MAX_DEFERRED = 10_000;

/** The exit code of a sample run that ended with samples missing (every other sample written). */
export const INCOMPLETE_EXIT = 3;

/** Runs (or resumes) the sample stage into o.out. */
export async function runSample(completer: Completer, o: SampleOptions, config: Record<string, unknown>): Promise<SampleSummary> {
  prepareOutputFile(o.out);
  return withOutputLock(o.out, "file", "stepwise sample", () => sampleInto(completer, o, config));
}


async function sampleInto(completer: Completer, o: SampleOptions, config: Record<string, unknown>): Promise<SampleSummary> {
  checkConfig(o.out, config);
  const { problems, bad } = await readProblems(o.problems, o.format, o.template, completer, o.skipBad);
  if (problems.length === 0) throw new InputError("no problems", o.problems);
  if (o.stepControl && o.format === "code") throw new InputError("step-controlled sampling needs math problems with a reference solution");
  await writeFileAtomic(`${o.out}.config.json`, JSON.stringify(config, null, 2) + "\n");
  const done = readDone(o.out);
  const counted = tally(problems, o, done);
  const skipped: Record<string, number> = { ...(bad > 0 ? { "bad problem lines": bad } : {}), ...counted.skipped };
  const summary: SampleSummary = { problems: problems.length, samples: counted.samples, present: counted.present,
    written: 0, skipped, finish_reasons: { stop: 0, length: 0, eos: 0 }, out: o.out, missing: [] };
  const progress = new Progress(o.stepControl ? "sample (step-controlled)" : "sample", { total: counted.samples - counted.present, unit: "samples" });
  const fh = await open(o.out, "a");
  let lastError: EndpointError | null = null;
  let todo: Iterable<Job> = plan(problems, o, {});
  let failed: Job[] = [];
  let unattempted = 0; // samples never asked for: the endpoint failed so much that the pass stopped
  try {
    for (let pass = 0; pass <= RETRY_PASSES; pass++) {
      failed = [];
      const pending = batches(todo, done, o.batchSize);
      for (let next = pending.next(); !next.done; next = pending.next()) {
        const batch = next.value;
        const got = await runBatch(completer, batch, o);
        const ok = batch.flatMap((job, k) => {
          const c = got[k];
          if (c instanceof EndpointError) {
            lastError = c;
            failed.push(job);
            return [];
          }
          return [{ job, c }];
        });
        await fh.write(ok.map(({ job, c }) => JSON.stringify(record(job, c, o)) + "\n").join(""));
        await fh.sync();
        for (const { c } of ok) summary.finish_reasons[c.finishReason]++;
        summary.written += ok.length;
        progress.tick(ok.length);
        const signal = stopRequested();
        if (signal) {
          pending.return(undefined);
          const left = counted.samples - counted.present - summary.written;
          if (left === 0) break;
          throw new InterruptedError(signal, `${summary.present + summary.written} of ${summary.samples} samples are in ${o.out} (fsynced)`);
        }
        if (failed.length >= MAX_DEFERRED) { // the endpoint is down: keep what failed for the later passes, stop asking
          for (let rest = pending.next(); !rest.done; rest = pending.next()) unattempted += rest.value.length;
          break;
        }
      }
      if (failed.length === 0) break;
      todo = failed;
    }
  } finally {
    await fh.close();
    progress.finish();
  }
  summary.missing = failed.map((j) => ({ id: j.problem.id, sample: j.sample }));
  if (unattempted > 0) summary.unattempted = unattempted;
  if (lastError && (failed.length > 0 || unattempted > 0)) summary.last_error = (lastError as EndpointError).message.split("\n")[0]; // without the hint
  return summary;
}

/** "p1": samples 0, 3 / "p2": sample 1, one problem a line, at most `max` lines. */
export function describeMissing(missing: { id: string; sample: number }[], max = 20): string[] {
  const byId = new Map<string, number[]>();
  for (const m of missing) byId.set(m.id, [...(byId.get(m.id) ?? []), m.sample]);
  const lines = [...byId].slice(0, max).map(([id, ss]) => `  ${JSON.stringify(id)}: sample${ss.length > 1 ? "s" : ""} ${ss.join(", ")}`);
  if (byId.size > max) lines.push(`  ... and ${byId.size - max} more problems`);
  return lines;
}

// --- the command ---


export function templateOption(values: Values): PromptTemplate {
  const t = String(values.template ?? "plain");
  if (t !== "plain" && t !== "chat") throw new InputError(`--template must be plain or chat, got "${t}"`);
  return t;
}

function sampleOptions(values: Values): SampleOptions {
  if (typeof values.problems !== "string") throw new InputError("--problems FILE is required");
  if (typeof values.out !== "string") throw new InputError("--out FILE is required");
  const format = String(values.format ?? "jsonl") as ProblemFormat;
  if (!FORMATS.includes(format)) throw new InputError(`--format must be one of ${FORMATS.join(", ")}, got "${values.format}"`);
  const stepped = values["step-temperature"] !== undefined || values.cut !== undefined;
  const stop = (values.stop as unknown as string[] | undefined)?.map((s) => s.replace(/\\n/g, "\n"));
  return {
    problems: values.problems, format, out: values.out,
    n: intOption(values, "n", 8),
    temperature: numOption(values, "temperature", 1, (x) => x >= 0, "a number >= 0")!,
    topP: numOption(values, "top-p", undefined, (x) => x > 0 && x <= 1, "a number in (0, 1]"),
    topK: numOption(values, "top-k", undefined, (x) => Number.isInteger(x) && x >= 0, "an integer >= 0"),
    maxTokens: intOption(values, "max-tokens", 256),
    stop: stop && stop.length > 0 ? stop : undefined,
    seed: intOption(values, "seed", 0, 0),
    logprobs: Boolean(values.logprobs),
    template: templateOption(values),
    batchSize: intOption(values, "batch-size", 16),
    skipBad: Boolean(values["skip-bad"]),
    stepControl: stepped ? {
      schedule: values["step-temperature"] === undefined ? DEFAULT_SCHEDULE : parseStepSchedule(String(values["step-temperature"])),
      cut: parseCut(String(values.cut ?? "random")),
      maxSteps: intOption(values, "max-steps", 32),
    } : undefined,
  };
}

/** The options that decide what the samples are (not how fast they are made): a resumed run must match them. */
function decisive(o: SampleOptions, values: Values): Record<string, unknown> {
  return {
    format_version: 1, stage: "sample",
    model: typeof values.model === "string" ? path.resolve(values.model) : null,
    endpoint: values.endpoint ?? null, endpoint_model: values["endpoint-model"] ?? null,
    problems: path.resolve(o.problems), format: o.format, template: o.template, n: o.n, temperature: o.temperature,
    top_p: o.topP ?? null, top_k: o.topK ?? null, max_tokens: o.maxTokens, stop: o.stop ?? null, seed: o.seed,
    logprobs: o.logprobs,
    step_temperature: o.stepControl ? o.stepControl.schedule.spec : null,
    cut: o.stepControl ? (o.stepControl.cut.kind === "random" ? "random" : `${o.stepControl.cut.lo}-${o.stepControl.cut.hi}`) : null,
    max_steps: o.stepControl?.maxSteps ?? null,
  };
}

export const sampleCommand: Command = {
  name: "sample",
  cooperative: true,
  summary: "N completions per problem, or step-controlled continuations (SCDPO); resumable",
  usage: "stepwise sample --model DIR|--endpoint URL --problems FILE --n 8 --out FILE [--temperature 1] [--top-p P] " +
    "[--top-k K] [--max-tokens 256] [--seed 0] [--logprobs] [--step-temperature SCHEDULE --cut random|K|A-B] " +
    "[--template plain|chat] [--batch-size 16] [--json]",
  options: {
    ...COMPLETER_OPTIONS,
    problems: { type: "string" }, format: { type: "string" }, n: { type: "string" }, out: { type: "string" },
    temperature: { type: "string" }, "top-p": { type: "string" }, "top-k": { type: "string" },
    "max-tokens": { type: "string" }, stop: { type: "string", multiple: true }, seed: { type: "string" },
    logprobs: { type: "boolean" }, "step-temperature": { type: "string" }, cut: { type: "string" },
    "max-steps": { type: "string" }, template: { type: "string" }, "batch-size": { type: "string" },
    "skip-bad": { type: "boolean" }, json: { type: "boolean" },
  },
  help: [
    "Writes one record a line: {\"id\", \"sample\", \"question\", \"answer\", \"completion\", \"finish_reason\", \"logprobs\"?}",
    "(+ \"cut\", \"prefix\" when step-controlled; other fields of the problem are kept). Rerunning the same command",
    "after an interruption resumes: samples already written are kept, the missing ones generated, none twice.",
    "OUT.config.json records the options that decide the samples; a rerun with other ones is refused.",
    "With --endpoint, a request that still fails after its retries is tried again after the other samples (2 more",
    "passes); samples still failing then are listed and the exit code is 3, every other sample being written.",
    "options:",
    COMPLETER_HELP,
    "  --problems FILE      problems: {\"id\", \"question\", \"answer\"} (the answer a reference solution or a final answer)",
    "  --format F           jsonl (default: id/question/answer), gsm8k, math (problem/solution), code (prompt/tests)",
    "  --n N                samples per problem (per cut point when step-controlled), default 8",
    "  --out FILE           output JSONL (appended batch by batch, fsynced)",
    "  --temperature X      sampling temperature, default 1 (0 = greedy)",
    "  --top-p P            nucleus sampling (default off)",
    "  --top-k K            keep the K most likely tokens (default off)",
    "  --max-tokens N       new tokens per completion, default 256",
    "  --stop STR           stop string (repeatable; \\n for a newline); the completion ends before it",
    "  --seed N             default 0; sample s of problem id always gets the same seed",
    "  --logprobs           add each sampled token's log-prob",
    "  --template T         plain (default: question, newline) or chat (the model's chat template; needs --model)",
    "  --batch-size N       samples per batch (generated together, then written and fsynced), default 16",
    "  --skip-bad           skip malformed problem lines (counted) instead of stopping",
    "  --json               print a JSON summary {\"problems\", \"samples\", \"present\", \"written\", \"skipped\",",
    "                       \"finish_reasons\", \"out\"}",
    "step-controlled sampling (SCDPO): needs a reference solution in \"answer\"; keeps its steps 1..k and generates",
    "the rest one step (line) at a time, each step's temperature from the schedule (--temperature is not used);",
    "\"completion\" is the prefix plus the continuation.",
    "  --step-temperature S temperature of generated step i (from 0): gsm8k = min(1.1+0.1*i, 1.4) (default),",
    "                       math = min(1.0+0.05*i, 1.2), blog = 1.05, 1.1, 1.15, ..., or \"a+b*i<=c\" (b, c optional)",
    "  --cut C              random (default: k in 1..R-1, R the steps before \"####\"), K, or every k in A-B",
    "                       (n samples each; sample = (k - A) * n + j)",
    "  --max-steps N        steps generated at most, default 32",
  ].join("\n"),
  async run(values) {
    const o = sampleOptions(values);
    prepareOutputFile(o.out); // before the model loads
    const completer = await completerFrom(values, { batchSize: o.batchSize, seed: o.seed });
    let summary: SampleSummary;
    try {
      summary = await cooperative(() => runSample(completer!, o, decisive(o, values)));
    } finally {
      await completer!.close?.();
    }
    if (values.json) {
      console.log(JSON.stringify(summary));
    } else {
      const skipped = Object.entries(summary.skipped).map(([why, n]) => `${n} ${why}`).join("; ");
      const f = summary.finish_reasons;
      console.error(`sampled ${summary.written} (${summary.present} already present) of ${summary.samples} for ` +
        `${summary.problems} problems into ${summary.out}; finish: ${f.stop} stop, ${f.eos} eos, ${f.length} length` +
        (skipped ? `; skipped: ${skipped}` : ""));
    }
    const unattempted = summary.unattempted ?? 0;
    if (summary.missing.length === 0 && unattempted === 0) return 0;
    // The samples written are kept (fsynced); a rerun of the same command generates only the missing ones.
    const notAsked = unattempted > 0 ? `; ${unattempted} more were not asked for after ${MAX_DEFERRED} failures` : "";
    console.error(`stepwise sample: ${summary.missing.length + unattempted} of ${summary.samples} samples are missing: ` +
      `${summary.missing.length} failed in ${RETRY_PASSES + 1} passes${notAsked} (last error: ${summary.last_error})\n` +
      `${describeMissing(summary.missing).join("\n")}\n` +
      `  rerun the same command to generate only these${values.json ? "" : " (--json lists them all)"}`);
    return INCOMPLETE_EXIT;
  },
};
