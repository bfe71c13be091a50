// Problem loaders: GSM8K, MATH-style, generic JSONL with a field mapping, and code problems. Each streams records
// in the shapes of DESIGN.md ("Records"), keeping extra fields. A malformed line is an InputError naming file:line;
// with skipBad it is counted (and the first few errors kept) instead.

import path from "node:path";
import { InputError } from "../core/errors.js";
import { extractBoxed, extractHashAnswer } from "../verify/answer.js";
import { parseLanguage } from "../verify/code.js";
import type { Language } from "../verify/sandbox.js";
import { readJsonl } from "./jsonl.js";

export interface MathProblem {
  id: string;
  question: string;
  /** The reference solution or just the final answer. */
  answer: string;
  /** The final answer when it could be read from `answer`. */
  final?: string;
  [extra: string]: unknown;
}

export interface CodeProblemRecord {
  id: string;
  prompt: string;
  tests: string;
  entry_point: string;
  language: Language;
  [extra: string]: unknown;
}

export type ProblemFormat = "gsm8k" | "math" | "jsonl" | "code";

/** Which input field holds each record field ("question" <- "prompt", ...). Dotted paths reach into objects. */
export interface FieldMapping {
  id?: string;
  question?: string;
  answer?: string;
}

export interface LoadStats {
  bad: number;
  /** The first few errors of skipped lines. */
  errors: InputError[];
}

export interface LoadOptions {
  skipBad?: boolean;
  stats?: LoadStats;
  mapping?: FieldMapping;
}

export function newStats(): LoadStats {
  return { bad: 0, errors: [] };
}

/** "question=prompt,answer=target.text" -> { question: "prompt", answer: "target.text" }. */
export function parseMapping(spec: string): FieldMapping {
  const out: FieldMapping = {};
  for (const part of spec
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)) {
    const [key, from] = part.split("=").map((s) => s.trim());
    if ((key !== "id" && key !== "question" && key !== "answer") || !from) {
      throw new InputError(`bad field mapping "${part}"`, undefined, 'use e.g. --map "question=prompt,answer=target"');
    }
    out[key] = from;
  }
  return out;
}

function get(rec: Record<string, unknown>, key: string): unknown {
  let v: unknown = rec;
  for (const k of key.split("."))
    v = v !== null && typeof v === "object" ? (v as Record<string, unknown>)[k] : undefined;
  return v;
}

function str(rec: Record<string, unknown>, key: string, where: string): string {
  const v = get(rec, key);
  if (typeof v === "string") return v;
  if (typeof v === "number" && key !== "question" && key !== "problem") return String(v);
  throw new InputError(v === undefined ? `missing field "${key}"` : `field "${key}" must be a string`, where);
}

function idOf(rec: Record<string, unknown>, key: string, file: string, line: number): string {
  const v = get(rec, key);
  return typeof v === "string" || typeof v === "number" ? String(v) : `${path.basename(file)}:${line}`;
}

/** Runs `make` on each JSON line, turning its InputErrors into skips when asked. */
async function* each<T>(
  file: string,
  opts: LoadOptions,
  make: (rec: Record<string, unknown>, where: string, line: number) => T,
): AsyncGenerator<T> {
  const stats = opts.stats ?? newStats();
  const bad = (e: InputError) => {
    stats.bad++;
    if (stats.errors.length < 10) stats.errors.push(e);
  };
  for await (const { line, value } of readJsonl(file, { skipBad: opts.skipBad, onBad: bad })) {
    const where = `${file}:${line}`;
    try {
      yield make(value, where, line);
    } catch (e) {
      if (!(e instanceof InputError) || !opts.skipBad) throw e;
      bad(e);
    }
  }
}

/** GSM8K: {"question", "answer"} with "#### n" in the answer. */
export function loadGsm8k(file: string, opts: LoadOptions = {}): AsyncGenerator<MathProblem> {
  return each(file, opts, (rec, where, line) => {
    const question = str(rec, "question", where);
    const answer = str(rec, "answer", where);
    const final = extractHashAnswer(answer);
    if (final === null) throw new InputError('the answer has no "#### <final answer>" line', where);
    return { ...rec, id: idOf(rec, "id", file, line), question, answer, final };
  });
}

/** MATH-style: {"problem", "solution"} with \boxed{} in the solution (or an "answer" field). */
export function loadMath(file: string, opts: LoadOptions = {}): AsyncGenerator<MathProblem> {
  return each(file, opts, (rec, where, line) => {
    const question = str(rec, "problem", where);
    const solution = str(rec, "solution", where);
    const given = get(rec, "answer");
    const final = typeof given === "string" || typeof given === "number" ? String(given) : extractBoxed(solution);
    if (final === null) throw new InputError("the solution has no \\boxed{...} answer", where);
    const { problem: _p, solution: _s, ...rest } = rec;
    return { ...rest, id: idOf(rec, "id", file, line), question, answer: solution, final };
  });
}

/** Any JSONL: `mapping` names the fields holding the question and the answer (defaults: question, answer, id). */
export function loadMapped(file: string, opts: LoadOptions = {}): AsyncGenerator<MathProblem> {
  const m = { id: "id", question: "question", answer: "answer", ...opts.mapping };
  return each(file, opts, (rec, where, line) => {
    const question = str(rec, m.question, where);
    const answer = str(rec, m.answer, where);
    const final = extractHashAnswer(answer) ?? extractBoxed(answer) ?? answer.trim();
    return { ...rec, id: idOf(rec, m.id, file, line), question, answer, final };
  });
}

/** Code problems: {"prompt", "tests", "entry_point", "language": "js" | "python"}. */
export function loadCode(file: string, opts: LoadOptions = {}): AsyncGenerator<CodeProblemRecord> {
  return each(file, opts, (rec, where, line) => {
    const prompt = str(rec, "prompt", where);
    const tests = str(rec, "tests", where);
    const entry = str(rec, "entry_point", where);
    if (!/^[A-Za-z_$][\w$]*$/.test(entry)) throw new InputError(`entry_point "${entry}" is not an identifier`, where);
    const language = parseLanguage(rec.language);
    if (!language)
      throw new InputError(`language must be "js" or "python", got ${JSON.stringify(rec.language)}`, where);
    return { ...rec, id: idOf(rec, "id", file, line), prompt, tests, entry_point: entry, language };
  });
}

export function loadProblems(
  file: string,
  format: ProblemFormat,
  opts: LoadOptions = {},
): AsyncGenerator<MathProblem | CodeProblemRecord> {
  switch (format) {
    case "gsm8k":
      return loadGsm8k(file, opts);
    case "math":
      return loadMath(file, opts);
    case "jsonl":
      return loadMapped(file, opts);
    case "code":
      return loadCode(file, opts);
    default:
      return format satisfies never;
  }
}

/** Collects a stream into an array. */
export async function collect<T>(gen: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of gen) out.push(x);
  return out;
}
