// The verify stage as a library function: `verifyFile(config, ctx)` labels completions with answer correctness,
// per-step verdicts and the first wrong step (code: the tests' result in the sandbox).

import { AtomicJsonlWriter } from "../core/atomic.js";
import os from "node:os";
import { createReadStream } from "node:fs";
import { asKeys, KnobReader, type Naming } from "../core/config.js";
import { InputError } from "../core/errors.js";
import { checkOutputFile } from "../core/outputs.js";
import { logOf, progressOf, type StageContext } from "../core/stage.js";
import { readJsonl } from "../data/jsonl.js";
import { detectSandbox, TASKS, verifyCodeRecord, verifyMathRecord, type VerifiedRecord } from "./index.js";
import type { Task } from "./record.js";
import { limitsProblem, type Language } from "./sandbox.js";

/** Newlines in a file, streamed: the progress bar's total. */
async function countLines(file: string): Promise<number> {
  let n = 0;
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
    for (let i = chunk.indexOf(10); i >= 0; i = chunk.indexOf(10, i + 1)) n++;
  }
  return n;
}

export interface VerifySummary {
  n: number;
  correct: number;
  incorrect: number;
  undecided: number;
  skipped_bad: number;
  accuracy: number | null;
  step_error_rate: number | null;
  sandbox?: { mode: string; protections: string[]; missing: string[] };
}

/** Says loudly, before any program runs, which sandbox protections this host cannot give and what that allows. */
function warnMissingProtections(log: (m: string) => void): void {
  const info = detectSandbox();
  if (info.missing.length === 0) return;
  log(
    `WARNING: the sandbox runs in "${info.mode}" mode; missing protections:\n` +
      info.missing.map((m) => `  - ${m.protection}: ${m.risk}\n`).join("") +
      "  (run as root with util-linux, install bubblewrap, or allow unprivileged user namespaces for the strongest mode)",
  );
}

/** Limits so tight that the interpreter itself fails would mark every program wrong (and poison pairs): refused. */
async function checkLimits(limits: { timeMs: number; memoryMb: number }): Promise<void> {
  const langs: Language[] = detectSandbox().python ? ["js", "python"] : ["js"];
  for (const lang of langs) {
    const why = await limitsProblem(lang, limits);
    if (why) {
      throw new InputError(
        `--memory-limit ${limits.memoryMb} (MB) / --time-limit ${limits.timeMs} (ms): a trivial ` +
          `${lang === "js" ? "JavaScript" : "Python"} program fails under these limits (${why})`,
        undefined,
        "every program would be marked wrong: raise --memory-limit or --time-limit",
      );
    }
  }
}

export interface VerifyConfig {
  task: Task; // arith, gsm8k, math or code
  in: string; // records with "completion" and "answer" (math) or "completion", "tests", "entry_point", "language"
  out: string; // each record plus the verdict, written atomically
  skip_bad: boolean; // skip malformed lines (counted) instead of stopping
  concurrency: number; // code: programs run at once (the CPU cores)
  time_limit: number; // code: wall-time limit per program in ms (5000)
  memory_limit: number; // code: memory per program in MB (256)
}

/** A full VerifyConfig from the knobs given (flag or key spellings), validated once. */
export function verifyConfig(
  given: Partial<VerifyConfig> | Record<string, unknown>,
  naming: Naming = asKeys(),
): VerifyConfig {
  const r = new KnobReader(given as Record<string, unknown>, naming);
  if (!r.has("task")) r.fail("task", `one of ${TASKS.join(", ")}`, "");
  return {
    task: r.choice("task", TASKS, "arith"),
    in: r.need("in", "FILE"),
    out: r.need("out", "FILE"),
    skip_bad: r.bool("skip_bad"),
    concurrency: r.int("concurrency", os.availableParallelism()),
    time_limit: r.int("time_limit", 5000, 1, 3_600_000),
    memory_limit: r.int("memory_limit", 256, 1, 1 << 20),
  };
}

/**
 * Streams c.in through the verifier into c.out (atomically), in input order; returns the counts. Code runs in the
 * strongest sandbox this host allows; what it cannot protect against is logged before any program runs.
 */
export async function verifyFile(c: VerifyConfig, ctx: StageContext = {}): Promise<VerifySummary> {
  checkOutputFile(c.out);
  const limits = { timeMs: c.time_limit, memoryMb: c.memory_limit };
  if (c.task === "code") {
    warnMissingProtections(logOf(ctx));
    await checkLimits(limits);
  }
  return verifyInto(
    { task: c.task, input: c.in, output: c.out, skipBad: c.skip_bad, concurrency: c.concurrency, limits },
    ctx,
  );
}

interface VerifyFileOptions {
  task: Task;
  input: string;
  output: string;
  skipBad: boolean;
  concurrency: number;
  limits: { timeMs: number; memoryMb: number };
}

async function verifyInto(o: VerifyFileOptions, ctx: StageContext): Promise<VerifySummary> {
  const total = await countLines(o.input).catch(() => {
    throw new InputError("cannot read the input file", o.input);
  });
  const progress = progressOf(ctx, `verify ${o.task}`, { total, unit: "lines" });
  const summary: VerifySummary = {
    n: 0,
    correct: 0,
    incorrect: 0,
    undecided: 0,
    skipped_bad: 0,
    accuracy: null,
    step_error_rate: null,
  };
  let withSteps = 0;
  let withError = 0;
  const writer = new AtomicJsonlWriter(o.output);
  const pending: Promise<VerifiedRecord | null>[] = []; // code runs in flight, oldest first
  const emit = async (r: VerifiedRecord | null) => {
    progress.tick();
    if (!r) return;
    summary.n++;
    if (r.correct === true) summary.correct++;
    else if (r.correct === false) summary.incorrect++;
    else summary.undecided++;
    if (r.steps.length > 0) {
      withSteps++;
      if (r.first_error_step !== null) withError++;
    }
    await writer.write(r);
  };
  const skip = (e: unknown): null => {
    if (!(e instanceof InputError) || !o.skipBad) throw e;
    summary.skipped_bad++;
    return null;
  };
  try {
    const records = readJsonl(o.input, {
      skipBad: o.skipBad,
      onBad: () => {
        summary.skipped_bad++;
        progress.tick();
      },
    });
    for await (const { line, value } of records) {
      const where = `${o.input}:${line}`;
      if (o.task === "code") {
        pending.push(verifyCodeRecord(value, o.limits, where).catch(skip));
        if (pending.length >= o.concurrency) await emit(await pending.shift()!);
        continue;
      }
      let r: VerifiedRecord | null;
      try {
        r = verifyMathRecord(value, o.task, where);
      } catch (e) {
        r = skip(e);
      }
      await emit(r);
    }
    while (pending.length > 0) await emit(await pending.shift()!);
    await writer.commit();
  } catch (e) {
    for (const p of pending)
      p.catch(() => {
        /* the first error is the one reported */
      });
    await writer.abort();
    throw e;
  } finally {
    progress.finish();
  }
  summary.accuracy = summary.n > 0 && summary.correct + summary.incorrect > 0 ? summary.correct / summary.n : null;
  summary.step_error_rate = withSteps > 0 ? withError / withSteps : null;
  if (o.task === "code") {
    const info = detectSandbox();
    summary.sandbox = {
      mode: info.mode,
      protections: info.protections,
      missing: info.missing.map((m) => m.protection),
    };
  }
  return summary;
}
