// Training files: SFT examples and preference pairs read from JSONL or parquet (src/data/rows.ts), checked, and
// tokenized. Every format of TRL is read (src/data/trl.ts lists them), and tokenized as TRL 1.16's trainers do:
//
// SFT: {"question", "answer"} (GSM8K, the built-in task: --template plain or chat) and {"prompt", "completion"}
// (strings, or lists of messages rendered with the chat template) train on the completion; {"text"} and {"messages"}
// (language modeling) on every token after the first, which nothing predicts. Text gets EOS; a rendered chat ends
// as its template ends it (no EOS is added), as in TRL.
// Pairs: TRL {"prompt", "chosen", "rejected"}, explicit or implicit, strings or messages, or Step-DPO {"prompt",
// "initial_reason_steps", "chosen", "rejected", ...}. Step-DPO pairs (and TRL pairs with "kind": "stepdpo") hold one
// step each: the previous steps join the prompt and no EOS follows the step. Other string pairs are whole
// completions and end with EOS. A conversational prompt is rendered with the generation prompt, prompt + chosen and
// prompt + rejected without it; the prompt's tokens are the longest prefix that the prompt alone shares with both
// (TRL's rule, so that each side's sequence is exactly its own tokenization).

import { InputError } from "../core/errors.js";
import { readRows } from "../data/rows.js";
import { isBad, parsePreference, parseSft, templateExtra, type Bad, type Message } from "../data/trl.js";
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

/** Bad records counted and skipped (--skip-bad) or thrown; a warning about a file said once. */
class Skipper {
  readonly skipped: Skipped = { count: 0, reasons: {} };
  private readonly said = new Set<string>();
  constructor(private readonly o: ReadOptions) {}
  bad(where: string, reason: string, hint?: string): void {
    if (!this.o.skipBad)
      throw new InputError(reason, where, hint ?? "fix the line, or pass --skip-bad to skip such lines");
    this.skipped.count++;
    this.skipped.reasons[reason] = (this.skipped.reasons[reason] ?? 0) + 1;
  }
  warnOnce(key: string, message: string): void {
    if (this.said.has(key)) return;
    this.said.add(key);
    this.o.warn?.(message);
  }
}

function encode(o: ReadOptions, prompt: string, completion: string, addEos: boolean) {
  const pc = o.tokenizer.encodePromptCompletion(prompt, completion, { addEos, warn: o.warn });
  return { prompt: pc.ids.slice(0, pc.promptLength), completion: pc.ids.slice(pc.promptLength) };
}

function commonPrefix(a: number[], b: number[]): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}

/** Renders and tokenizes conversations with the model's chat template; a template that fails names the record. */
class Chat {
  constructor(
    private readonly o: ReadOptions,
    private readonly s: Skipper,
  ) {}

  /** Ids of a rendered chat, as transformers' apply_chat_template(tokenize=True): no post-processor tokens. */
  ids(
    where: string,
    messages: Message[],
    addGenerationPrompt: boolean,
    extra: Record<string, unknown>,
  ): number[] | Bad {
    const tok = this.o.tokenizer;
    if (tok.chatTemplate === null) {
      throw new InputError(
        "a conversational record needs the model's chat template, and its tokenizer has none",
        where,
        "use a model whose tokenizer_config.json has a chat_template, or write the record's fields as strings",
      );
    }
    try {
      return tok.encode(tok.applyChatTemplate(messages, { addGenerationPrompt, extra }), { addSpecialTokens: false });
    } catch (e) {
      if (!(e instanceof InputError)) throw e;
      return {
        bad: `the chat template failed on this record (${e.message.replace(/^.*?chat template failed: /, "")})`,
      };
    }
  }

  /**
   * TRL's rule for a conversational prompt and its completions: the prompt rendered with the generation prompt,
   * prompt + each completion without it, and the prompt's tokens the longest prefix the prompt alone shares with
   * every prompt + completion (so each sequence is exactly its own tokenization).
   */
  split(
    where: string,
    prompt: Message[],
    completions: Message[][],
    extra: Record<string, unknown>,
  ): { prompt: number[]; completions: number[][] } | Bad {
    const p = this.ids(where, prompt, true, extra);
    if (isBad(p)) return p;
    const full: number[][] = [];
    for (const c of completions) {
      const ids = this.ids(where, [...prompt, ...c], false, extra);
      if (isBad(ids)) return ids;
      full.push(ids);
    }
    const n = Math.min(...full.map((ids) => commonPrefix(p, ids)));
    if (n < p.length) {
      this.s.warnOnce(
        "chat-prefix",
        `${where}: the chat template renders the prompt alone differently from the prompt ` +
          `followed by a reply (they differ at token ${n} of ${p.length}); the loss starts after the ${n} shared tokens ` +
          "(as TRL does; said once per file)",
      );
    }
    return { prompt: full[0].slice(0, n), completions: full.map((ids) => ids.slice(n)) };
  }
}

/** Language modeling: every token after the first is a target (nothing predicts the first). */
function everyToken(ids: number[]): Example {
  return { prompt: ids.slice(0, 1), completion: ids.slice(1) };
}

/** One SFT record as tokens, or what is wrong with it. */
function sftExample(value: Record<string, unknown>, where: string, o: ReadOptions, chat: Chat): Example | Bad {
  const q = str(value, "question") ?? str(value, "problem");
  const a = str(value, "answer") ?? str(value, "solution");
  if (q !== null && a !== null) return encode(o, promptText(q, o.template, o.tokenizer), completionText(a), true);
  const r = parseSft(value);
  if (isBad(r)) return r;
  if (r.kind === "prompt-completion" && !r.conversational) return encode(o, r.prompt, r.completion, true);
  if (r.kind === "text") {
    const ids = o.tokenizer.encode(r.text);
    if (o.tokenizer.eosId !== null && ids.at(-1) !== o.tokenizer.eosId) ids.push(o.tokenizer.eosId);
    return everyToken(ids);
  }
  const extra = templateExtra(value);
  if (isBad(extra)) return extra;
  if (r.kind === "messages") {
    const ids = chat.ids(where, r.messages, false, extra);
    return isBad(ids) ? ids : everyToken(ids);
  }
  const split = chat.split(where, r.prompt, [r.completion], extra);
  return isBad(split) ? split : { prompt: split.prompt, completion: split.completions[0] };
}

/** SFT examples from a JSONL or parquet file, in any of the formats at the top of this file. */
export async function readSftFile(file: string, o: ReadOptions): Promise<{ examples: Example[]; skipped: Skipped }> {
  const s = new Skipper(o);
  const chat = new Chat(o, s);
  const examples: Example[] = [];
  for await (const { where, value } of readRows(file, {
    skipBad: o.skipBad,
    onBad: () => s.bad(file, "invalid JSON"),
  })) {
    const ex = sftExample(value, where, o, chat);
    if (isBad(ex)) s.bad(where, ex.bad);
    else if (ex.completion.length === 0) s.bad(where, "empty completion");
    else if (ex.prompt.length + ex.completion.length > o.maxLength) {
      s.bad(where, `longer than --max-length ${o.maxLength} tokens (${ex.prompt.length + ex.completion.length})`);
    } else examples.push(ex);
  }
  return { examples, skipped: s.skipped };
}

/** A pair of strings (TRL standard, explicit or implicit prompt, or Step-DPO) as tokens. */
function stringPair(
  value: Record<string, unknown>,
  where: string,
  o: ReadOptions,
  p: { prompt: string; chosen: string; rejected: string; implicit: boolean },
): { pair: TokenPair; step: boolean } | Bad {
  const chosen = value.chosen as string;
  const rejected = value.rejected as string;
  if (!chosen.trim() || !rejected.trim()) return { bad: `empty ${!chosen.trim() ? "chosen" : "rejected"} completion` };
  const steps = str(value, "initial_reason_steps");
  if (steps !== null && p.implicit) return { bad: `missing or non-string field prompt (a Step-DPO record needs one)` };
  const isStep = steps !== null || value.kind === "stepdpo";
  // A Step-DPO record's prompt is the question; plain prompts are used as they are.
  const head = steps !== null ? promptText(p.prompt, o.template, o.tokenizer) + steps : p.prompt;
  const c = encode(o, head, p.chosen, !isStep);
  // "rejected_eos": false marks a rejected side cut before its end (after its first wrong step): no EOS follows it
  const r = encode(o, head, p.rejected, !isStep && value.rejected_eos !== false);
  if (c.prompt.length !== r.prompt.length || c.prompt.some((t, i) => t !== r.prompt[i])) {
    o.warn?.(`${where}: the prompt tokenizes differently before chosen and rejected; using the chosen one's`);
  }
  return { pair: { prompt: c.prompt, chosen: c.completion, rejected: r.completion }, step: isStep };
}

/** One preference record as tokens, or what is wrong with it. */
function tokenPair(
  value: Record<string, unknown>,
  where: string,
  o: ReadOptions,
  chat: Chat,
): { pair: TokenPair; step: boolean } | Bad {
  const p = parsePreference(value);
  if (isBad(p)) return p;
  if (!p.conversational) return stringPair(value, where, o, p);
  const extra = templateExtra(value);
  if (isBad(extra)) return extra;
  const split = chat.split(where, p.prompt, [p.chosen, p.rejected], extra);
  if (isBad(split)) return split;
  const [chosen, rejected] = split.completions;
  if (chosen.length === 0 || rejected.length === 0)
    return { bad: `empty ${chosen.length === 0 ? "chosen" : "rejected"} completion` };
  return { pair: { prompt: split.prompt, chosen, rejected }, step: false };
}

/** Preference pairs from a JSONL or parquet file, in any of TRL's formats or Step-DPO's. */
export async function readPairsFile(
  file: string,
  o: ReadOptions,
): Promise<{ pairs: TokenPair[]; stepLevel: number; skipped: Skipped }> {
  const s = new Skipper(o);
  const chat = new Chat(o, s);
  const pairs: TokenPair[] = [];
  let stepLevel = 0;
  for await (const { where, value } of readRows(file, {
    skipBad: o.skipBad,
    onBad: () => s.bad(file, "invalid JSON"),
  })) {
    const got = tokenPair(value, where, o, chat);
    if (isBad(got)) {
      s.bad(where, got.bad);
      continue;
    }
    const { pair, step } = got;
    const longest = pair.prompt.length + Math.max(pair.chosen.length, pair.rejected.length);
    if (longest > o.maxLength) {
      s.bad(where, `longer than --max-length ${o.maxLength} tokens (${longest})`);
      continue;
    }
    pairs.push(pair);
    if (step) stepLevel++;
  }
  if (pairs.length === 0)
    throw new InputError(
      "no usable pairs",
      file,
      s.skipped.count ? `${s.skipped.count} lines were skipped` : undefined,
    );
  return { pairs, stepLevel, skipped: s.skipped };
}

/** The raw texts of an SFT file (messages' contents for conversations), for learning a tokenizer before there is one. */
export async function readSftTexts(file: string, skipBad = false): Promise<string[]> {
  const texts: string[] = [];
  const contents = (ms: Message[]) => ms.map((m) => m.content).join("\n");
  for await (const { value } of readRows(file, { skipBad })) {
    const q = str(value, "question") ?? str(value, "problem");
    const a = str(value, "answer") ?? str(value, "solution");
    if (q !== null && a !== null) {
      texts.push(promptText(q, "plain") + completionText(a));
      continue;
    }
    const r = parseSft(value);
    if (isBad(r)) continue;
    if (r.kind === "text") texts.push(r.text);
    else if (r.kind === "messages") texts.push(contents(r.messages));
    else if (r.conversational) texts.push(`${contents(r.prompt)}\n${contents(r.completion)}`);
    else texts.push(r.prompt + r.completion);
  }
  return texts;
}
