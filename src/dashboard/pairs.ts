// The pair browser's data: preference pairs read a page at a time, each with its chosen and rejected texts split into
// steps (splitSteps: one step a line, or "Step k:" blocks) and the first step where the two differ.

import fs from "node:fs";
import readline from "node:readline";
import { promptText } from "../data/format.js";
import { splitSteps } from "../verify/steps.js";

export interface PairView {
  line: number; // 1-based line in the file
  id: string | null;
  kind: string | null;
  prompt: string;
  chosen: string;
  rejected: string;
  initial_reason_steps: string | null; // Step-DPO: the correct steps both sides share
  /** The text before chosen/rejected as dpo trains on it: the prompt (TRL), or the question's prompt + the steps. */
  context: string;
  /** The steps compared: full_chosen/full_rejected when present (Step-DPO), else chosen/rejected. */
  chosen_steps: string[];
  rejected_steps: string[];
  /** Index into the step lists of the first step that differs; null when the two are the same step for step. */
  first_diff: number | null;
  error: string | null; // a line that is not a pair: what is wrong with it
}

export interface PairPage {
  file: string;
  offset: number;
  total: number; // non-blank lines in the file
  pairs: PairView[];
}

/** Index of the first step at which the two lists differ (ignoring surrounding blanks); null when equal. */
export function firstDifferingStep(a: string[], b: string[]): number | null {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) if ((a[i] ?? null)?.trim() !== (b[i] ?? null)?.trim()) return i;
  return null;
}

const str = (x: unknown): string | null => (typeof x === "string" ? x : null);

/**
 * What precedes the completions: a TRL prompt is used as it is; a Step-DPO record's prompt is the question, which
 * dpo turns into a prompt (the plain template) before the shared steps.
 */
function contextOf(r: Record<string, unknown>): string {
  const prompt = str(r.prompt) ?? "";
  const steps = str(r.initial_reason_steps);
  return steps === null ? prompt : promptText(prompt) + steps;
}

/** One line of a pair file as the browser shows it; bad lines come back with `error` set rather than failing. */
export function pairView(line: number, text: string): PairView {
  let rec: Record<string, unknown> | null = null;
  let error: string | null = null;
  try {
    const v = JSON.parse(text);
    if (v && typeof v === "object" && !Array.isArray(v)) rec = v;
    else error = "not a JSON object";
  } catch (e) {
    error = `not valid JSON (${(e as Error).message})`;
  }
  const r = rec ?? {};
  const chosen = str(r.chosen) ?? "";
  const rejected = str(r.rejected) ?? "";
  if (!error && (str(r.chosen) === null || str(r.rejected) === null)) error = "missing chosen or rejected";
  const fullChosen = str(r.full_chosen);
  const fullRejected = str(r.full_rejected);
  const useFull = fullChosen !== null && fullRejected !== null;
  const chosenSteps = splitSteps(useFull ? fullChosen : chosen).map((s) => s.text);
  const rejectedSteps = splitSteps(useFull ? fullRejected : rejected).map((s) => s.text);
  return {
    line,
    id: r.id === undefined || r.id === null ? null : String(r.id),
    kind: str(r.kind),
    prompt: str(r.prompt) ?? "",
    chosen,
    rejected,
    initial_reason_steps: str(r.initial_reason_steps),
    context: contextOf(r),
    chosen_steps: chosenSteps,
    rejected_steps: rejectedSteps,
    first_diff: firstDifferingStep(chosenSteps, rejectedSteps),
    error,
  };
}

/** Pairs `offset` .. `offset + limit - 1` (counting non-blank lines) of a JSONL file, and the file's total. */
export async function readPairs(file: string, name: string, offset: number, limit: number): Promise<PairPage> {
  const pairs: PairView[] = [];
  let index = 0;
  let lineNo = 0;
  const rl = readline.createInterface({ input: fs.createReadStream(file, "utf8"), crlfDelay: Infinity });
  for await (const text of rl) {
    lineNo++;
    if (!text.trim()) continue;
    if (index >= offset && index < offset + limit) pairs.push(pairView(lineNo, text));
    index++;
  }
  return { file: name, offset, total: index, pairs };
}
