// Training files: SFT examples and preference pairs read from JSONL, checked, and tokenized.
//
// SFT lines: {"question", "answer"} (GSM8K, the built-in task) or {"prompt", "completion"}.
// Pair lines: TRL {"prompt", "chosen", "rejected"} or Step-DPO {"prompt", "initial_reason_steps", "chosen",
// "rejected", ...}. Step-DPO pairs (and TRL pairs with "kind": "stepdpo") hold one step each: the previous steps
// join the prompt and no EOS follows the step. Other pairs are whole completions and end with EOS.

import { InputError } from "../core/errors.js";
import { readJsonl } from "../data/jsonl.js";
import { completionText, promptText, type PromptTemplate } from "../data/format.js";
import type { TextTokenizer } from "../model/tokenizer.js";
import type { Example } from "./batch.js";
import type { TokenPair } from "./dpo.js";

export interface ReadOptions {
  tokenizer: TextTokenizer;
  template: PromptTemplate;
  maxLength: number; // tokens of prompt + completion
  skipBad: boolean; // count and skip bad lines instead of stopping
  warn?: (message: string) => void;
}

export interface Skipped {
  count: number;
  reasons: Record<string, number>;
}

function str(v: Record<string, unknown>, key: string): string | null {
  const x = v[key];
  return typeof x === "string" ? x : null;
}

class Skipper {
  readonly skipped: Skipped = { count: 0, reasons: {} };
  constructor(private readonly o: ReadOptions) {}
  bad(where: string, reason: string, hint?: string): void {
    if (!this.o.skipBad) throw new InputError(reason, where, hint ?? "fix the line, or pass --skip-bad to skip such lines");
    this.skipped.count++;
    this.skipped.reasons[reason] = (this.skipped.reasons[reason] ?? 0) + 1;
  }
}

function encode(o: ReadOptions, prompt: string, completion: string, addEos: boolean) {
  const pc = o.tokenizer.encodePromptCompletion(prompt, completion, { addEos, warn: o.warn });
  return { prompt: pc.ids.slice(0, pc.promptLength), completion: pc.ids.slice(pc.promptLength) };
}

/** SFT examples from a JSONL file. */
export async function readSftFile(file: string, o: ReadOptions): Promise<{ examples: Example[]; skipped: Skipped }> {
  const s = new Skipper(o);
  const examples: Example[] = [];
  for await (const { line, value } of readJsonl(file, { skipBad: o.skipBad, onBad: () => s.bad(`${file}`, "invalid JSON") })) {
    const where = `${file}:${line}`;
    const q = str(value, "question") ?? str(value, "problem");
    const a = str(value, "answer") ?? str(value, "solution");
    const p = str(value, "prompt");
    const c = str(value, "completion");
    let ex: Example;
    if (q !== null && a !== null) ex = encode(o, promptText(q, o.template, o.tokenizer), completionText(a), true);
    else if (p !== null && c !== null) ex = encode(o, p, c, true);
    else {
      s.bad(where, 'needs "question" and "answer" (or "prompt" and "completion") strings');
      continue;
    }
    if (ex.completion.length === 0) s.bad(where, "empty completion");
    else if (ex.prompt.length + ex.completion.length > o.maxLength) {
      s.bad(where, `longer than --max-length ${o.maxLength} tokens (${ex.prompt.length + ex.completion.length})`);
    } else examples.push(ex);
  }
  return { examples, skipped: s.skipped };
}

/** Preference pairs from a JSONL file in TRL or Step-DPO format. */
export async function readPairsFile(file: string, o: ReadOptions): Promise<{ pairs: TokenPair[]; stepLevel: number; skipped: Skipped }> {
  const s = new Skipper(o);
  const pairs: TokenPair[] = [];
  let stepLevel = 0;
  for await (const { line, value } of readJsonl(file, { skipBad: o.skipBad, onBad: () => s.bad(file, "invalid JSON") })) {
    const where = `${file}:${line}`;
    const prompt = str(value, "prompt");
    const chosen = str(value, "chosen");
    const rejected = str(value, "rejected");
    const missing = [["prompt", prompt], ["chosen", chosen], ["rejected", rejected]].filter(([, v]) => v === null).map(([k]) => k);
    if (missing.length) {
      s.bad(where, `missing or non-string field${missing.length > 1 ? "s" : ""} ${missing.join(", ")}`);
      continue;
    }
    if (!chosen!.trim() || !rejected!.trim()) {
      s.bad(where, `empty ${!chosen!.trim() ? "chosen" : "rejected"} completion`);
      continue;
    }
    const steps = str(value, "initial_reason_steps");
    const isStep = steps !== null || value.kind === "stepdpo";
    // A Step-DPO record's prompt is the question; plain prompts are used as they are.
    const head = steps !== null ? promptText(prompt!, o.template, o.tokenizer) + steps : prompt!;
    const c = encode(o, head, chosen!, !isStep);
    // "rejected_eos": false marks a rejected side cut before its end (after its first wrong step): no EOS follows it
    const r = encode(o, head, rejected!, !isStep && value.rejected_eos !== false);
    if (c.prompt.length !== r.prompt.length || c.prompt.some((t, i) => t !== r.prompt[i])) {
      o.warn?.(`${where}: the prompt tokenizes differently before chosen and rejected; using the chosen one's`);
    }
    const longest = c.prompt.length + Math.max(c.completion.length, r.completion.length);
    if (longest > o.maxLength) {
      s.bad(where, `longer than --max-length ${o.maxLength} tokens (${longest})`);
      continue;
    }
    pairs.push({ prompt: c.prompt, chosen: c.completion, rejected: r.completion });
    if (isStep) stepLevel++;
  }
  if (pairs.length === 0) throw new InputError("no usable pairs", file, s.skipped.count ? `${s.skipped.count} lines were skipped` : undefined);
  return { pairs, stepLevel, skipped: s.skipped };
}

/** The raw texts (prompt + completion) of an SFT file, for learning a tokenizer before there is one. */
export async function readSftTexts(file: string, skipBad = false): Promise<string[]> {
  const texts: string[] = [];
  for await (const { value } of readJsonl(file, { skipBad })) {
    const q = str(value, "question") ?? str(value, "problem");
    const a = str(value, "answer") ?? str(value, "solution");
    const p = str(value, "prompt");
    const c = str(value, "completion");
    if (q !== null && a !== null) texts.push(promptText(q, "plain") + completionText(a));
    else if (p !== null && c !== null) texts.push(p + c);
  }
  return texts;
}
