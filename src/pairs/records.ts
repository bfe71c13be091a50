// What the pair builders read and write: verified samples grouped by problem (from `stepwise verify`), pairs in
// one internal shape, and the two file formats of DESIGN.md ("Records").
//
// A pair is (question, prefix, chosen, rejected): the prefix is the reasoning both sides share ("" for outcome
// pairs), chosen and rejected what follows it. How `stepwise dpo` (src/train/data.ts readPairsFile) reads them back:
// - TRL: {prompt, chosen, rejected, id, kind}: the prompt is used as it is, so it is promptText(question) + prefix;
//   kind "stepdpo" marks one-step pairs (no EOS after the step); other kinds are whole completions (EOS appended).
// - Step-DPO: {prompt, initial_reason_steps, chosen, rejected, full_chosen, full_rejected, answer}: the prompt is the
//   question (dpo applies promptText) and initial_reason_steps the prefix; dpo reads every such record as one-step.

import { InputError } from "../core/errors.js";
import { readJsonl } from "../data/jsonl.js";
import { splitSteps } from "../verify/steps.js";

export type PairKind = "outcome" | "scdpo" | "stepdpo";
export const PAIR_KINDS: readonly PairKind[] = ["outcome", "scdpo", "stepdpo"];
export type PairFormat = "trl" | "stepdpo";
export const PAIR_FORMATS: readonly PairFormat[] = ["trl", "stepdpo"];

export interface VerifiedSample {
  where: string; // file:line
  sample: number | null;
  completion: string;
  correct: boolean | null;
  steps: { text: string; ok: boolean | null }[] | null; // null when the record has none
  firstErrorStep: number | null;
  cut: number | null; // step-controlled samples: steps kept from the reference solution
  prefix: string | null;
  finishReason: string | null; // "length": cut off by the token limit, so it never produced an EOS
}

export interface ProblemSamples {
  id: string;
  question: string;
  answer: string; // reference solution or final answer
  samples: VerifiedSample[];
  unreachable?: boolean; // Step-DPO: no rollout from the bare question reached the answer
}

export interface Pair {
  id: string;
  kind: PairKind;
  question: string;
  prefix: string; // shared reasoning before chosen / rejected, ending with a line break ("" for none)
  chosen: string;
  rejected: string;
  fullChosen: string; // the whole chosen solution (prefix included)
  fullRejected: string;
  answer: string; // the final answer
  rejectedEos?: boolean; // false: the rejected side ends without EOS (cut after its first wrong step, or cut off by
  // the token limit); whole-solution pairs otherwise end both sides with EOS. Step-DPO pairs never have one.
}

/** Which chosen sides count: "sound" = the right answer and no step the verifier finds wrong; "answer" = the right answer. */
export type ChosenRule = "sound" | "answer";
export const CHOSEN_RULES: readonly ChosenRule[] = ["sound", "answer"];
/** What a rejected side holds: the whole wrong completion, or only up to its first wrong step (no EOS). */
export type RejectedRule = "full" | "first_error";
export const REJECTED_RULES: readonly RejectedRule[] = ["full", "first_error"];

/** A correct sample that passes the chosen rule. */
export function acceptable(s: VerifiedSample, rule: ChosenRule): boolean {
  if (s.correct !== true) return false;
  return rule === "answer" || (s.firstErrorStep === null && !(s.steps ?? []).some((x) => x.ok === false));
}

/**
 * The rejected side of a wrong completion `text` that starts at offset `from` of the sample's completion: the
 * whole rest, or (first_error) the rest up to the end of the sample's first wrong step (its line break included).
 * `eos` is false when the side was cut, or when the sample itself was cut off by the token limit.
 */
export function rejectedSide(
  s: VerifiedSample,
  from: number,
  rule: RejectedRule,
  tally: Tally,
): { text: string; eos: boolean } {
  const whole = s.completion.slice(from);
  const eos = s.finishReason !== "length";
  if (rule === "full") return { text: whole, eos };
  const e = s.firstErrorStep;
  const spans = e === null ? [] : splitSteps(s.completion);
  if (e === null || e >= spans.length || spans[e].start < from) {
    tally.skip("rejected sides kept whole: no located wrong step after the prefix");
    return { text: whole, eos };
  }
  let end = spans[e].end;
  if (s.completion[end] === "\n") end++;
  if (end >= s.completion.length) return { text: whole, eos }; // the wrong step is the last: nothing to cut
  return { text: s.completion.slice(from, end), eos: false };
}

/** Counts of what was left out, by reason. */
export class Tally {
  readonly skipped: Record<string, number> = {};
  skip(reason: string, n = 1): void {
    if (n > 0) this.skipped[reason] = (this.skipped[reason] ?? 0) + n;
  }
}

function str(v: unknown): string | null {
  return typeof v === "string" ? v : typeof v === "number" ? String(v) : null;
}

function intOrNull(v: unknown): number | null {
  return typeof v === "number" && Number.isInteger(v) ? v : null;
}

function stepsOf(v: unknown, where: string): VerifiedSample["steps"] {
  if (v === undefined || v === null) return null;
  const ok =
    Array.isArray(v) &&
    v.every(
      (s) =>
        s && typeof s === "object" && typeof s.text === "string" && (s.ok === true || s.ok === false || s.ok === null),
    );
  if (!ok) throw new InputError('"steps" must be a list of {"text", "ok": true|false|null}', where);
  return (v as { text: string; ok: boolean | null }[]).map((s) => ({ text: s.text, ok: s.ok }));
}

/** One verified record; InputError naming file:line when a field is missing or of the wrong type. */
function parseSample(
  v: Record<string, unknown>,
  where: string,
): { id: string; question: string; answer: string; s: VerifiedSample } {
  const id = str(v.id);
  const question = typeof v.question === "string" ? v.question : null;
  const answer = str(v.answer);
  const completion = typeof v.completion === "string" ? v.completion : null;
  const missing = [
    ["id", id],
    ["question", question],
    ["answer", answer],
    ["completion", completion],
  ]
    .filter(([, x]) => x === null)
    .map(([k]) => k);
  if (missing.length > 0)
    throw new InputError(`missing or non-string field${missing.length > 1 ? "s" : ""} ${missing.join(", ")}`, where);
  if (!("correct" in v))
    throw new InputError(
      'no "correct" field: not a verified sample',
      where,
      "run stepwise verify on the samples first",
    );
  if (v.correct !== true && v.correct !== false && v.correct !== null)
    throw new InputError('"correct" must be true, false or null', where);
  const s: VerifiedSample = {
    where,
    sample: intOrNull(v.sample),
    completion: completion!,
    correct: v.correct,
    steps: stepsOf(v.steps, where),
    firstErrorStep: intOrNull(v.first_error_step),
    cut: intOrNull(v.cut),
    prefix: typeof v.prefix === "string" ? v.prefix : null,
    finishReason: typeof v.finish_reason === "string" ? v.finish_reason : null,
  };
  return { id: id!, question: question!, answer: answer!, s };
}

/** Verified samples grouped by problem id, problems in the order of their first sample. */
export async function readVerified(
  file: string,
  skipBad: boolean,
  tally: Tally,
): Promise<{ problems: ProblemSamples[]; records: number }> {
  const byId = new Map<string, ProblemSamples>();
  let records = 0;
  const bad = (e: InputError) => {
    if (!skipBad) throw e;
    tally.skip("bad input lines");
  };
  for await (const { line, value } of readJsonl(file, { skipBad, onBad: bad })) {
    let got: ReturnType<typeof parseSample>;
    try {
      got = parseSample(value, `${file}:${line}`);
    } catch (e) {
      if (!(e instanceof InputError)) throw e;
      bad(e);
      continue;
    }
    records++;
    const p = byId.get(got.id);
    if (p) p.samples.push(got.s);
    else byId.set(got.id, { id: got.id, question: got.question, answer: got.answer, samples: [got.s] });
  }
  return { problems: [...byId.values()], records };
}

/** A pair in TRL or Step-DPO format; promptOf is promptText with the run's template. */
export function formatPair(
  p: Pair,
  format: PairFormat,
  promptOf: (question: string) => string,
): Record<string, unknown> {
  const eos = p.rejectedEos === false && p.kind !== "stepdpo" ? { rejected_eos: false } : {};
  if (format === "trl")
    return {
      prompt: promptOf(p.question) + p.prefix,
      chosen: p.chosen,
      rejected: p.rejected,
      id: p.id,
      kind: p.kind,
      ...eos,
    };
  return {
    prompt: p.question,
    initial_reason_steps: p.prefix,
    chosen: p.chosen,
    rejected: p.rejected,
    full_chosen: p.fullChosen,
    full_rejected: p.fullRejected,
    answer: p.answer,
    id: p.id,
    kind: p.kind,
    ...eos,
  };
}

/**
 * Keeps the first pair of each (prefix, chosen, rejected) and at most `cap` pairs per problem, counting what it
 * drops. Pairs arrive grouped by problem.
 */
export function capPairs(pairs: Pair[], cap: number, tally: Tally): Pair[] {
  const seen = new Set<string>();
  const perProblem = new Map<string, number>();
  return pairs.filter((p) => {
    const key = JSON.stringify([p.id, p.prefix, p.chosen, p.rejected]);
    if (seen.has(key)) {
      tally.skip("duplicate pairs");
      return false;
    }
    seen.add(key);
    const n = perProblem.get(p.id) ?? 0;
    if (n >= cap) {
      tally.skip("pairs over --max-pairs-per-problem");
      return false;
    }
    perProblem.set(p.id, n + 1);
    return true;
  });
}
