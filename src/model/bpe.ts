// Byte-level BPE training for the from-scratch presets: `stepwise sft --init tiny` learns its tokenizer from the
// SFT data, so a word of the task ("stickers", " bakery") is one token while every digit stays a token of its own
// (arithmetic sees each digit; numbers never merge). The result is an ordinary tokenizer.json that
// @huggingface/tokenizers, Python `tokenizers` and llama.cpp (pre-tokenizer "smollm") read with the same ids.
//
// Pre-tokenization is SmolLM2's: each \p{N} character is isolated, then GPT-2's byte-level split. Training is
// the textbook algorithm (Sennrich et al. 2016): count words once, then repeatedly merge the most frequent
// adjacent pair, ties broken by the pair's text so the same corpus always gives the same merges.

import { InputError } from "../core/errors.js";
import { byteLevelAlphabet, byteLevelSpelling, preTokenizerJson } from "./gguf-vocab.js";
import { BUILTIN_SPECIALS, builtinStyleFiles, TextTokenizer } from "./tokenizer.js";

// GPT-2's split regex (the ByteLevel pre-tokenizer's use_regex), applied after digits are isolated.
const GPT2_SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;
const DIGIT = /(\p{N})/u;

/** The pre-tokenized words of a text, each in its byte-level spelling. */
export function preTokenize(text: string): string[] {
  const words: string[] = [];
  for (const piece of text.split(DIGIT)) {
    if (piece === "") continue;
    for (const m of piece.matchAll(GPT2_SPLIT)) words.push(byteLevelSpelling(m[0]));
  }
  return words;
}

export interface BpeOptions {
  vocabSize: number; // specials + 256 byte tokens + merges, at most
  minFrequency?: number; // a pair seen fewer times is never merged, default 2
}

/** Merges learned from `texts`, in order. A pair with a digit in either half is never merged. */
export function learnMerges(texts: Iterable<string>, opts: BpeOptions): [string, string][] {
  const budget = opts.vocabSize - BUILTIN_SPECIALS.length - 256;
  if (budget < 0)
    throw new InputError(
      `vocabulary size ${opts.vocabSize} is below the ${BUILTIN_SPECIALS.length + 256} specials and bytes`,
    );
  const counts = new Map<string, number>();
  for (const t of texts) for (const w of preTokenize(t)) counts.set(w, (counts.get(w) ?? 0) + 1);
  const words = [...counts].map(([w, n]) => ({ parts: [...w], n }));
  const merges: [string, string][] = [];
  const minFreq = opts.minFrequency ?? 2;
  const hasDigit = (s: string) => /[0-9]/.test(s);
  while (merges.length < budget) {
    const pairs = new Map<string, number>();
    for (const { parts, n } of words) {
      for (let i = 0; i + 1 < parts.length; i++) {
        if (hasDigit(parts[i]) || hasDigit(parts[i + 1])) continue;
        const key = `${parts[i]} ${parts[i + 1]}`;
        pairs.set(key, (pairs.get(key) ?? 0) + n);
      }
    }
    let best: string | null = null;
    let bestN = 0;
    for (const [key, n] of pairs)
      if (n > bestN || (n === bestN && best !== null && key < best)) [best, bestN] = [key, n];
    if (best === null || bestN < minFreq) break;
    const [a, b] = best.split(" ") as [string, string];
    merges.push([a, b]);
    for (const w of words) {
      const p = w.parts;
      for (let i = 0; i + 1 < p.length; i++) if (p[i] === a && p[i + 1] === b) p.splice(i, 2, a + b);
    }
  }
  return merges;
}

/**
 * tokenizer.json / tokenizer_config.json of a byte-level BPE tokenizer learned from `texts`: ids 0-3 the built-in
 * specials (<pad> <s> </s> <unk>), then the 256 byte tokens, then one token per merge. BOS is added as the
 * built-in tokenizer adds it, and the chat template is the built-in one.
 */
export function trainBpeTokenizerFiles(
  texts: Iterable<string>,
  opts: BpeOptions,
): ReturnType<typeof builtinStyleFiles> {
  const merges = learnMerges(texts, opts);
  const vocab: Record<string, number> = {};
  let next = 0;
  for (const s of BUILTIN_SPECIALS) vocab[s] = next++;
  for (const c of byteLevelAlphabet()) vocab[c] = next++;
  for (const [a, b] of merges) if (!(a + b in vocab)) vocab[a + b] = next++;
  return builtinStyleFiles({
    pre_tokenizer: preTokenizerJson("smollm"),
    decoder: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
    unk_token: null,
    vocab,
    merges,
  });
}

/** A byte-level BPE tokenizer learned from `texts` (see trainBpeTokenizerFiles). */
export function trainBpeTokenizer(texts: Iterable<string>, opts: BpeOptions): TextTokenizer {
  const { json, config } = trainBpeTokenizerFiles(texts, opts);
  return new TextTokenizer(json, config, "learned BPE tokenizer");
}
