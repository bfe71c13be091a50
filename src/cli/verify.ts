// `stepwise verify`: label completions with answer correctness, per-step verdicts and the first wrong step.

import os from "node:os";
import { createReadStream } from "node:fs";
import { InputError } from "../core/errors.js";
import { AtomicJsonlWriter, readJsonl } from "../data/jsonl.js";
import { detectSandbox, TASKS, verifyCodeRecord, verifyMathRecord, type VerifiedRecord } from "../verify/index.js";
import type { Task } from "../verify/record.js";
import { limitsProblem, type Language } from "../verify/sandbox.js";
import { Progress } from "./progress.js";
import type { Command } from "./main.js";
import { checkOutputFile } from "../core/outputs.js";
import { intOption } from "./options.js";

/** Newlines in a file, streamed: the progress bar's total. */
async function countLines(file: string): Promise<number> {
  let n = 0;
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
    for (let i = chunk.indexOf(10); i >= 0; i = chunk.indexOf(10, i + 1)) n++;
  }
  return n;
}

interface Summary {
  n: number;
  correct: number;
  incorrect: number;
  undecided: number;
  skipped_bad: number;
  accuracy: number | null;
  step_error_rate: number | null;
  sandbox?: { mode: string; protections: string[]; missing: string[] };
}

export const verifyCommand: Command = {
  name: "verify",
  summary: "label completions: answer correct, per-step verdicts, first wrong step",
  usage: "stepwise verify --task arith|gsm8k|math|code --in FILE --out FILE [--skip-bad] [--json]",
  options: {
    task: { type: "string" },
    in: { type: "string" },
    out: { type: "string" },
    "skip-bad": { type: "boolean" },
    json: { type: "boolean" },
    concurrency: { type: "string" },
    "time-limit": { type: "string" },
    "memory-limit": { type: "string" },
  },
  help: [
    "Input: one record a line with \"completion\" and \"answer\" (math tasks) or \"completion\", \"tests\", \"entry_point\",",
    "\"language\" (code). Output: each record plus {\"correct\": true|false|null, \"pred\", \"steps\": [{\"text\", \"ok\"}],",
    "\"first_error_step\"} (null = undecided); code records also get \"result\": {\"status\", \"message\", \"ms\"}.",
    "options:",
    "  --task T           arith (built-in), gsm8k (\"#### n\" answers), math (\\boxed{} answers), code (unit tests)",
    "  --in FILE          input JSONL",
    "  --out FILE         output JSONL (written atomically)",
    "  --skip-bad         skip malformed lines (counted) instead of stopping at the first",
    "  --json             print a JSON summary {\"n\", \"correct\", \"incorrect\", \"undecided\", \"skipped_bad\", \"accuracy\",",
    "                     \"step_error_rate\", \"sandbox\"?} on stdout (accuracy = correct / n: undecided counts as not",
    "                     correct; step_error_rate = share of records with steps that have a wrong step)",
    "  --concurrency N    code: programs run at once (default: number of CPU cores)",
    "  --time-limit MS    code: wall-time limit per program (default 5000)",
    "  --memory-limit MB  code: memory per program (default 256)",
    "environment: STEPWISE_SANDBOX=root-ns|bwrap|userns|basic caps the sandbox mode (default: the strongest that works)",
  ].join("\n"),
  async run(values) {
    const task = String(values.task ?? "") as Task;
    if (!TASKS.includes(task)) throw new InputError(`--task must be one of ${TASKS.join(", ")}, got "${values.task ?? ""}"`);
    if (!values.in) throw new InputError("--in FILE is required");
    if (!values.out) throw new InputError("--out FILE is required");
    checkOutputFile(String(values.out));
    const opts: VerifyFileOptions = {
      task, input: String(values.in), output: String(values.out), skipBad: Boolean(values["skip-bad"]),
      concurrency: intOption(values, "concurrency", os.availableParallelism()),
      limits: { timeMs: intOption(values, "time-limit", 5000, 1, 3_600_000), memoryMb: intOption(values, "memory-limit", 256, 1, 1 << 20) },
    };
    if (task === "code") {
      warnMissingProtections();
      await checkLimits(opts.limits);
    }
    const summary = await verifyFile(opts);
    if (values.json) {
      console.log(JSON.stringify(summary));
      return 0;
    }
    const pct = summary.accuracy === null ? "n/a" : `${(summary.accuracy * 100).toFixed(1)}%`;
    console.error(`verified ${summary.n}: ${summary.correct} correct (${pct}), ${summary.incorrect} wrong, ` +
      `${summary.undecided} undecided${summary.skipped_bad ? `, ${summary.skipped_bad} bad lines skipped` : ""}`);
    if (summary.sandbox) console.error(`sandbox: ${summary.sandbox.mode} (${summary.sandbox.protections.join(", ")})`);
    return 0;
  },
};

/** Says loudly, before any program runs, which sandbox protections this host cannot give and what that allows. */
function warnMissingProtections(): void {
  const info = detectSandbox();
  if (info.missing.length === 0) return;
  process.stderr.write(`stepwise verify: WARNING: the sandbox runs in "${info.mode}" mode; missing protections:\n` +
    info.missing.map((m) => `  - ${m.protection}: ${m.risk}\n`).join("") +
    "  (run as root with util-linux, install bubblewrap, or allow unprivileged user namespaces for the strongest mode)\n");
}

/** Limits so tight that the interpreter itself fails would mark every program wrong (and poison pairs): refused. */
async function checkLimits(limits: { timeMs: number; memoryMb: number }): Promise<void> {
  const langs: Language[] = detectSandbox().python ? ["js", "python"] : ["js"];
  for (const lang of langs) {
    const why = await limitsProblem(lang, limits);
    if (why) {
      throw new InputError(`--memory-limit ${limits.memoryMb} (MB) / --time-limit ${limits.timeMs} (ms): a trivial ` +
        `${lang === "js" ? "JavaScript" : "Python"} program fails under these limits (${why})`, undefined,
        "every program would be marked wrong: raise --memory-limit or --time-limit");
    }
  }
}

interface VerifyFileOptions {
  task: Task;
  input: string;
  output: string;
  skipBad: boolean;
  concurrency: number;
  limits: { timeMs: number; memoryMb: number };
}

/** Streams `input` through the verifier into `output` (atomically), in input order; returns the counts. */
async function verifyFile(o: VerifyFileOptions): Promise<Summary> {
  const total = await countLines(o.input).catch(() => { throw new InputError("cannot read the input file", o.input); });
  const progress = new Progress(`verify ${o.task}`, { total, unit: "lines" });
  const summary: Summary = { n: 0, correct: 0, incorrect: 0, undecided: 0, skipped_bad: 0, accuracy: null, step_error_rate: null };
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
    const records = readJsonl(o.input, { skipBad: o.skipBad, onBad: () => { summary.skipped_bad++; progress.tick(); } });
    for await (const { line, value } of records) {
      const where = `${o.input}:${line}`;
      if (o.task === "code") {
        pending.push(verifyCodeRecord(value, o.limits, where).catch(skip));
        if (pending.length >= o.concurrency) await emit(await pending.shift()!);
        continue;
      }
      let r: VerifiedRecord | null;
      try { r = verifyMathRecord(value, o.task, where); } catch (e) { r = skip(e); }
      await emit(r);
    }
    while (pending.length > 0) await emit(await pending.shift()!);
    await writer.commit();
  } catch (e) {
    for (const p of pending) p.catch(() => { /* the first error is the one reported */ });
    await writer.abort();
    throw e;
  } finally {
    progress.finish();
  }
  summary.accuracy = summary.n > 0 && summary.correct + summary.incorrect > 0 ? summary.correct / summary.n : null;
  summary.step_error_rate = withSteps > 0 ? withError / withSteps : null;
  if (o.task === "code") {
    const info = detectSandbox();
    summary.sandbox = { mode: info.mode, protections: info.protections, missing: info.missing.map((m) => m.protection) };
  }
  return summary;
}
