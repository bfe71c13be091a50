// The sample stage as a library function: `sample(config, ctx)` writes N completions per problem (or step-controlled
// continuations of each reference solution), batched, seeded, streamed to JSONL, resumable.
//
// Resuming: the output is append-only; every batch is written and fsynced before the next starts. A rerun of the
// same config reads the file back, drops a torn last line (a kill during a write), and generates only the
// (id, sample) pairs that are missing. Every sample's randomness derives from (seed, id, sample index) alone, so
// a resumed run writes exactly the lines an uninterrupted run would have. The options that decide the samples are
// kept beside the output (OUT.config.json): a rerun with different ones is refused rather than mixed in.

import { writeFileAtomic } from "../core/atomic.js";
import fs from "node:fs";
import { open } from "node:fs/promises";
import path from "node:path";
import { asKeys, KnobReader, type Naming } from "../core/config.js";
import { EndpointError, InputError, InterruptedError } from "../core/errors.js";
import { cooperative } from "../core/interrupt.js";
import { prepareOutputFile, withOutputLock } from "../core/outputs.js";
import { Rng } from "../core/rng.js";
import { progressOf, stopOf, type StageContext } from "../core/stage.js";
import { PROMPT_TEMPLATES, promptText, completionText, type PromptTemplate } from "../data/format.js";
import { loadCode, loadGsm8k, loadMapped, loadMath, newStats } from "../data/load.js";
import { LocalCompleter } from "./local.js";
import { RESERVED_FIELDS, sampleSeed } from "./records.js";
import { openCompleter } from "./open.js";
import {
  continueStepwise,
  cutCount,
  cutPoint,
  DEFAULT_SCHEDULE,
  parseCut,
  parseStepSchedule,
  solutionPrefix,
  solutionSteps,
  type CutSpec,
  type StepSchedule,
} from "./stepcontrol.js";
import type { Completer, Completion, FinishReason } from "./types.js";

// --- problems ---

interface Problem {
  id: string;
  prompt: string; // what the model continues
  fields: Record<string, unknown>; // written into every sample record (question, answer, extra fields)
  answer: string | null; // the reference solution, for step-controlled sampling
}

export { sampleSeed } from "./records.js";

export type ProblemFormat = "jsonl" | "gsm8k" | "math" | "code";
const FORMATS: ProblemFormat[] = ["jsonl", "gsm8k", "math", "code"];

async function readProblems(
  file: string,
  format: ProblemFormat,
  template: PromptTemplate,
  completer: Completer,
  skipBad: boolean,
): Promise<{ problems: Problem[]; bad: number }> {
  const stats = newStats();
  const opts = { skipBad, stats };
  const problems: Problem[] = [];
  const seen = new Set<string>();
  const chat = completer instanceof LocalCompleter ? completer.tokenizer : undefined;
  if (template === "chat" && !chat)
    throw new InputError("--template chat needs the model's tokenizer: use --model DIR");
  const source =
    format === "code"
      ? loadCode(file, opts)
      : format === "gsm8k"
        ? loadGsm8k(file, opts)
        : format === "math"
          ? loadMath(file, opts)
          : loadMapped(file, opts);
  for await (const rec of source) {
    if (seen.has(rec.id))
      throw new InputError(
        `duplicate problem id "${rec.id}"`,
        file,
        "samples are keyed by (id, sample): ids must be unique",
      );
    seen.add(rec.id);
    const fields = Object.fromEntries(Object.entries(rec).filter(([k]) => !RESERVED_FIELDS.has(k) && k !== "id"));
    if (typeof rec.question === "string") {
      problems.push({
        id: rec.id,
        prompt: promptText(rec.question, template, chat),
        fields,
        answer: String(rec.answer),
      });
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
      throw new InputError(
        "not a JSON line: the output was changed by something else",
        `${file}:${i + 1}`,
        "remove the line, or start over with a new --out",
      );
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
      throw new InputError(
        `the output exists but ${path.basename(file)} does not: not written by stepwise sample?`,
        out,
        "choose another --out, or delete the file",
      );
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
    const shown = diff
      .map((k) => `${k}: ${JSON.stringify(old[k])} before, ${JSON.stringify(config[k])} now`)
      .join("; ");
    throw new InputError(
      `cannot resume with different options (${shown})`,
      out,
      "rerun with the same options to resume, or choose another --out (or delete OUT and OUT.config.json)",
    );
  }
}

// --- the stage ---

export interface SampleConfig {
  problems: string; // the problems file
  format: ProblemFormat; // jsonl (id/question/answer), gsm8k, math (problem/solution), code (prompt/tests)
  out: string; // output JSONL (appended batch by batch, fsynced)
  n: number; // samples per problem (per cut point when step-controlled), 8
  temperature: number; // 1 (0 = greedy)
  top_p: number | null; // nucleus sampling (null: off)
  top_k: number | null; // the k most likely tokens (null: off)
  max_tokens: number; // new tokens per completion, 256
  stop: string[] | null; // stop strings: the completion ends before one
  seed: number; // sample s of problem id always gets the same seed, 0
  logprobs: boolean; // each sampled token's log-prob
  template: PromptTemplate; // plain or chat (the model's chat template)
  batch_size: number; // samples generated together, then written and fsynced, 16
  skip_bad: boolean; // skip malformed problem lines (counted) instead of stopping
  // Step-controlled sampling (SCDPO), on when step_temperature or cut is set: the schedule of generated step i's
  // temperature, where to cut the reference solution, and the most steps generated.
  step_temperature: string | null; // gsm8k, math, blog or "a+b*i<=c"
  cut: string | null; // random, K or A-B
  max_steps: number; // 32
  // Who samples, recorded in OUT.config.json (a resumed run must match): a model path or an endpoint URL list.
  model: string | null;
  endpoint: string | null;
  endpoint_model: string | null;
}

/** A full SampleConfig from the knobs given (flag or key spellings), validated once. */
export function sampleConfig(
  given: Partial<SampleConfig> | Record<string, unknown>,
  naming: Naming = asKeys(),
): SampleConfig {
  const r = new KnobReader(given as Record<string, unknown>, naming);
  const stop = r.has("stop") ? (r.raw("stop") as string[]) : null;
  const c: SampleConfig = {
    problems: r.need("problems", "FILE"),
    format: r.choice("format", FORMATS, "jsonl"),
    out: r.need("out", "FILE"),
    n: r.int("n", 8),
    temperature: r.num("temperature", 1, (x) => x >= 0, "a number >= 0"),
    top_p: r.num("top_p", null, (x) => x > 0 && x <= 1, "a number in (0, 1]"),
    top_k: r.num("top_k", null, (x) => Number.isInteger(x) && x >= 0, "an integer >= 0"),
    max_tokens: r.int("max_tokens", 256),
    stop: stop && stop.length > 0 ? stop : null,
    seed: r.int("seed", 0, 0),
    logprobs: r.bool("logprobs"),
    template: r.choice("template", PROMPT_TEMPLATES, "plain"),
    batch_size: r.int("batch_size", 16),
    skip_bad: r.bool("skip_bad"),
    step_temperature: r.str("step_temperature", null),
    cut: r.str("cut", null),
    max_steps: r.int("max_steps", 32),
    model: r.str("model", null),
    endpoint: r.str("endpoint", null),
    endpoint_model: r.str("endpoint_model", null),
  };
  stepControlOf(c); // a bad schedule or cut fails here, before any work
  return c;
}

/** Step-controlled sampling's parsed settings, or undefined for plain sampling. */
function stepControlOf(c: SampleConfig): StepControl | undefined {
  if (c.step_temperature === null && c.cut === null) return undefined;
  return {
    schedule: c.step_temperature === null ? DEFAULT_SCHEDULE : parseStepSchedule(c.step_temperature),
    cut: parseCut(c.cut ?? "random"),
    maxSteps: c.max_steps,
  };
}

type StepControl = { schedule: StepSchedule; cut: CutSpec; maxSteps: number };

/** SampleConfig with step control parsed: what the loops below read. */
type Plan = SampleConfig & { stepControl?: StepControl };

/** The options that decide what the samples are (not how fast they are made): a resumed run must match them. */
function decisive(o: Plan): Record<string, unknown> {
  return {
    format_version: 1,
    stage: "sample",
    model: o.model !== null ? path.resolve(o.model) : null,
    endpoint: o.endpoint,
    endpoint_model: o.endpoint_model,
    problems: path.resolve(o.problems),
    format: o.format,
    template: o.template,
    n: o.n,
    temperature: o.temperature,
    top_p: o.top_p,
    top_k: o.top_k,
    max_tokens: o.max_tokens,
    stop: o.stop,
    seed: o.seed,
    logprobs: o.logprobs,
    step_temperature: o.stepControl ? o.stepControl.schedule.spec : null,
    cut: o.stepControl
      ? o.stepControl.cut.kind === "random"
        ? "random"
        : `${o.stepControl.cut.lo}-${o.stepControl.cut.hi}`
      : null,
    max_steps: o.stepControl?.maxSteps ?? null,
  };
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

/**
 * Every sample the run should hold, in output order, generated one at a time (memory stays bounded whatever --n
 * is); what cannot be sampled is counted into `skipped`.
 */
function* plan(problems: Problem[], o: Plan, skipped: Record<string, number>): Generator<Job> {
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
function tally(
  problems: Problem[],
  o: Plan,
  done: Set<string>,
): { samples: number; present: number; skipped: Record<string, number> } {
  const skipped: Record<string, number> = {};
  if (!o.stepControl) {
    // every (problem, sample < n): counted from the problems and the output alone
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

function record(job: Job, c: Completion, o: Plan): Record<string, unknown> {
  const p = job.problem;
  const { question, answer, ...extra } = p.fields;
  return {
    id: p.id,
    sample: job.sample,
    ...(question !== undefined ? { question } : {}),
    ...(answer !== undefined ? { answer } : {}),
    completion: (job.prefix ?? "") + c.text,
    finish_reason: c.finishReason,
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
async function runBatch(completer: Completer, jobs: Job[], o: Plan): Promise<(Completion | EndpointError)[]> {
  try {
    if (o.stepControl) {
      const conts = await continueStepwise(
        completer,
        jobs.map((j) => ({ prompt: j.problem.prompt + j.prefix, seed: j.seed })),
        {
          schedule: o.stepControl.schedule,
          maxTokens: o.max_tokens,
          maxSteps: o.stepControl.maxSteps,
          topP: o.top_p ?? undefined,
          topK: o.top_k ?? undefined,
          logprobs: o.logprobs,
        },
      );
      return conts.map((c) => ({ text: c.text, finishReason: c.finishReason, tokens: c.tokens, logprobs: c.logprobs }));
    }
    const requests = jobs.map((j) => ({
      prompt: j.problem.prompt,
      params: {
        n: 1,
        temperature: o.temperature,
        topP: o.top_p ?? undefined,
        topK: o.top_k ?? undefined,
        maxTokens: o.max_tokens,
        stop: o.stop ?? undefined,
        seed: j.seed,
        logprobs: o.logprobs,
      },
    }));
    const res = completer.completeSettled
      ? await completer.completeSettled(requests)
      : await completer.complete(requests);
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

/**
 * Samples (or resumes sampling) into c.out with `completer` (the caller closes it), or with one opened here once
 * c.out is checked (so a bad output path fails before a model loads) and closed here: from `completer` when it is
 * a function, else the local model / endpoint that c names. A stop request ends it after the current batch
 * (fsynced): an InterruptedError.
 */
export async function sample(
  c: SampleConfig,
  ctx: StageContext = {},
  completer?: Completer | (() => Promise<Completer>),
): Promise<SampleSummary> {
  prepareOutputFile(c.out);
  const given = typeof completer === "object" ? completer : undefined;
  const opener =
    typeof completer === "function" ? completer : () => openCompleter(c, { batchSize: c.batch_size, seed: c.seed });
  const own = given ?? (await opener());
  const o: Plan = { ...c, stepControl: stepControlOf(c) };
  try {
    return await withOutputLock(o.out, "file", "stepwise sample", () =>
      cooperative(() => sampleInto(own, o, decisive(o), ctx)),
    );
  } finally {
    if (!given) await own.close?.();
  }
}

async function sampleInto(
  completer: Completer,
  o: Plan,
  config: Record<string, unknown>,
  ctx: StageContext,
): Promise<SampleSummary> {
  checkConfig(o.out, config);
  const { problems, bad } = await readProblems(o.problems, o.format, o.template, completer, o.skip_bad);
  if (problems.length === 0) throw new InputError("no problems", o.problems);
  if (o.stepControl && o.format === "code")
    throw new InputError("step-controlled sampling needs math problems with a reference solution");
  await writeFileAtomic(`${o.out}.config.json`, JSON.stringify(config, null, 2) + "\n");
  const done = readDone(o.out);
  const counted = tally(problems, o, done);
  const skipped: Record<string, number> = { ...(bad > 0 ? { "bad problem lines": bad } : {}), ...counted.skipped };
  const summary: SampleSummary = {
    problems: problems.length,
    samples: counted.samples,
    present: counted.present,
    written: 0,
    skipped,
    finish_reasons: { stop: 0, length: 0, eos: 0 },
    out: o.out,
    missing: [],
  };
  const progress = progressOf(ctx, o.stepControl ? "sample (step-controlled)" : "sample", {
    total: counted.samples - counted.present,
    unit: "samples",
  });
  const fh = await open(o.out, "a");
  let lastError: EndpointError | null = null;
  let todo: Iterable<Job> = plan(problems, o, {});
  let failed: Job[] = [];
  let unattempted = 0; // samples never asked for: the endpoint failed so much that the pass stopped
  try {
    for (let pass = 0; pass <= RETRY_PASSES; pass++) {
      failed = [];
      const pending = batches(todo, done, o.batch_size);
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
        const signal = stopOf(ctx);
        if (signal) {
          pending.return(undefined);
          const left = counted.samples - counted.present - summary.written;
          if (left === 0) break;
          throw new InterruptedError(
            signal,
            `${summary.present + summary.written} of ${summary.samples} samples are in ${o.out} (fsynced)`,
          );
        }
        if (failed.length >= MAX_DEFERRED) {
          // the endpoint is down: keep what failed for the later passes, stop asking
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
  if (lastError && (failed.length > 0 || unattempted > 0))
    summary.last_error = (lastError as EndpointError).message.split("\n")[0]; // without the hint
  return summary;
}

/** The one-line summary `stepwise sample` prints: written, present, finish reasons, skipped lines. */
export function sampleSummaryText(s: SampleSummary): string {
  const skipped = Object.entries(s.skipped)
    .map(([why, n]) => `${n} ${why}`)
    .join("; ");
  const f = s.finish_reasons;
  return (
    `sampled ${s.written} (${s.present} already present) of ${s.samples} for ${s.problems} problems into ` +
    `${s.out}; finish: ${f.stop} stop, ${f.eos} eos, ${f.length} length${skipped ? `; skipped: ${skipped}` : ""}`
  );
}

/** What is missing after a sampling run whose requests kept failing, and how to complete it; null when nothing is. */
export function missingSamplesText(s: SampleSummary, listAll = true): string | null {
  const unattempted = s.unattempted ?? 0;
  if (s.missing.length === 0 && unattempted === 0) return null;
  const notAsked = unattempted > 0 ? `; ${unattempted} more were not asked for after ${MAX_DEFERRED} failures` : "";
  return (
    `${s.missing.length + unattempted} of ${s.samples} samples are missing: ${s.missing.length} failed in ` +
    `${RETRY_PASSES + 1} passes${notAsked} (last error: ${s.last_error})\n${describeMissing(s.missing).join("\n")}\n` +
    `  rerun the same command to generate only these${listAll ? " (--json lists them all)" : ""}`
  );
}

/** "p1": samples 0, 3 / "p2": sample 1, one problem a line, at most `max` lines. */
export function describeMissing(missing: { id: string; sample: number }[], max = 20): string[] {
  const byId = new Map<string, number[]>();
  for (const m of missing) byId.set(m.id, [...(byId.get(m.id) ?? []), m.sample]);
  const lines = [...byId]
    .slice(0, max)
    .map(([id, ss]) => `  ${JSON.stringify(id)}: sample${ss.length > 1 ? "s" : ""} ${ss.join(", ")}`);
  if (byId.size > max) lines.push(`  ... and ${byId.size - max} more problems`);
  return lines;
}
