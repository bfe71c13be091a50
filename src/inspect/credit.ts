// Credit assignment: the per-token implicit reward beta * log(pi(token | prefix) / pi_ref(token | prefix)) that a
// DPO-trained policy assigns against its reference (Rafailov et al. 2024, "Your language model is secretly a
// Q-function"), and its sums per step (a line of a GSM8K solution, or a "Step k:" block), as the SCDPO and Step-DPO
// papers draw them. Rendering (terminal colours, HTML heatmap, table) lives in render.ts.
//
// The one home of the per-token reward: tokenRewards computes it, and CreditToken is a scored token, for every
// caller (`stepwise credit`, `stepwise score`, the dashboard's credit view, the reward-guided beam search).
//
// A text is a prompt plus a completion; only the completion's tokens get rewards. The prompt and completion are
// tokenized together as SFT and DPO tokenize them (TextTokenizer.encodePromptCompletion), so the scores are those
// the trainer saw. Each token's character span in the completion comes from incremental decoding, and a token
// belongs to the step its span starts in; a newline (or other whitespace) after a step's text belongs to that step.

import { InputError } from "../core/errors.js";
import { Detokenizer } from "../model/generate.js";
import type { Llama } from "../model/llama.js";
import { scoreTokens } from "../model/score.js";
import type { TextTokenizer } from "../model/tokenizer.js";
import { splitSteps } from "../verify/steps.js";

/**
 * The implicit reward of each scored token: out[t] = beta * (logprob[t] - refLogprob[t]), where logprob[t] and
 * refLogprob[t] are log pi(token t | prefix) and log pi_ref(token t | prefix) (Rafailov et al. 2024).
 */
export function tokenRewards(logprob: ArrayLike<number>, refLogprob: ArrayLike<number>, beta: number): Float64Array {
  if (logprob.length !== refLogprob.length) {
    throw new InputError(`log-probs of ${logprob.length} tokens against reference log-probs of ${refLogprob.length}`);
  }
  return Float64Array.from(logprob, (lp, t) => beta * (lp - refLogprob[t]));
}

/** One token of a scored sequence: its log-prob given the tokens before it and, against a reference, its reward. */
export interface CreditToken {
  id: number;
  text: string; // the token's own text (tokenText), special tokens included
  logprob: number | null; // log pi(token | prefix); null for a sequence's first token (BOS): nothing precedes it
  reward?: number | null; // with a reference: beta * (logprob - ref_logprob) (tokenRewards); null where logprob is
}

/** A completion token of a Credit: always preceded by the prompt, so never null; placed in its text and step. */
export interface CompletionToken extends CreditToken {
  start: number; // span in Credit.completion: completion.slice(start, end) is what this token adds to the text
  end: number;
  logprob: number; // log pi(token | prefix)
  ref_logprob: number; // log pi_ref(token | prefix)
  reward: number; // beta * (logprob - ref_logprob)
  step: number; // index of the step (splitSteps of the completion) that holds the token
}

/** A whole sequence scored token by token (`stepwise score --json`; the dashboard's credit view adds to it). */
export interface SequenceScore {
  tokens: CreditToken[]; // every token the model sees, BOS included
  total_logprob: number;
  total_reward?: number; // with a reference: the sequence's implicit reward, the sum of the tokens'
}

export interface StepCredit {
  index: number;
  text: string; // the step's text, without surrounding whitespace
  start: number; // offsets of the step text in Credit.completion
  end: number;
  tokens: number; // tokens in the step (its trailing newline included)
  reward: number; // sum of the tokens' rewards: the step's implicit reward
  logprob: number; // sum of the tokens' policy log-probs
  ref_logprob: number; // sum of the tokens' reference log-probs
}

export interface Credit {
  prompt: string;
  completion: string; // the completion as decoded from its tokens (the given text for usual tokenizers)
  beta: number;
  tokens: CompletionToken[];
  steps: StepCredit[];
  total_reward: number; // sum over tokens, equal to the sum over steps
  max_abs_reward: number; // the colour scale: the largest |reward| of a token
}

/** The tokens of one prompt + completion, split where the loss would start. */
export interface PromptCompletionIds {
  prompt: number[]; // at least one token (BOS, or the prompt's)
  completion: number[];
}

/**
 * Tokens of prompt + completion as SFT/DPO make them (BOS first; EOS after the completion when addEos). With an
 * empty prompt the text is scored after BOS alone. Throws when there is nothing to score.
 */
export function encodeForCredit(
  tokenizer: TextTokenizer,
  prompt: string,
  completion: string,
  opts: { addEos?: boolean } = {},
): PromptCompletionIds {
  const pc = tokenizer.encodePromptCompletion(prompt, completion, { addEos: opts.addEos ?? false, warn: () => {} });
  let promptLength = pc.promptLength;
  if (promptLength === 0) {
    if (pc.ids.length < 2) throw new InputError("nothing to score: the text has no tokens after the first", "--text");
    promptLength = 1; // a tokenizer without BOS: the first token has no context and no log-prob
  }
  const ids = { prompt: pc.ids.slice(0, promptLength), completion: pc.ids.slice(promptLength) };
  if (ids.completion.length === 0) throw new InputError("the text has no tokens to score", "--text");
  return ids;
}

/** Character spans of completion tokens decoded after the prompt tokens, and the decoded completion. */
export function tokenSpans(
  tokenizer: TextTokenizer,
  prompt: number[],
  completion: number[],
): { text: string; spans: [number, number][] } {
  const detok = new Detokenizer(tokenizer, prompt);
  let text = "";
  const spans = completion.map((id, i): [number, number] => {
    const start = text.length;
    text += detok.push(id);
    if (i === completion.length - 1) text += detok.flush();
    return [start, text.length];
  });
  return { text, spans };
}

/**
 * Per-token policy and reference log-probs of many prompt/completion pairs: one scoreTokens batch per model.
 * out[i].logprob[t] is log p(completion[t] | prompt, completion[0..t)).
 */
export function completionTokenLogprobs(
  policy: Llama,
  ref: Llama | null,
  examples: PromptCompletionIds[],
): { logprob: Float64Array; ref_logprob: Float64Array | null }[] {
  const seqs = examples.map((e) => [...e.prompt, ...e.completion]);
  const lps = scoreTokens(policy, seqs);
  const refLps = ref ? scoreTokens(ref, seqs) : null;
  return examples.map((e, i) => {
    const from = e.prompt.length - 1; // lp[t] scores token t + 1
    return { logprob: lps[i].slice(from), ref_logprob: refLps ? refLps[i].slice(from) : null };
  });
}

/** Builds a Credit from token ids and both models' log-probs of the completion tokens (pure; no model). */
export function creditFromLogprobs(
  tokenizer: TextTokenizer,
  prompt: string,
  ids: PromptCompletionIds,
  logprob: ArrayLike<number>,
  refLogprob: ArrayLike<number>,
  beta: number,
): Credit {
  if (logprob.length !== ids.completion.length || refLogprob.length !== ids.completion.length) {
    throw new InputError(
      `log-probs of ${logprob.length}/${refLogprob.length} tokens for ${ids.completion.length} completion tokens`,
    );
  }
  const { text, spans } = tokenSpans(tokenizer, ids.prompt, ids.completion);
  const stepSpans = splitSteps(text);
  const rewards = tokenRewards(logprob, refLogprob, beta);
  const tokens = ids.completion.map(
    (id, t): CompletionToken => ({
      id,
      text: tokenizer.tokenText(id),
      start: spans[t][0],
      end: spans[t][1],
      logprob: logprob[t],
      ref_logprob: refLogprob[t],
      reward: rewards[t],
      step: stepOf(stepSpans, spans[t][0]),
    }),
  );
  const steps = stepRewards(tokens, text);
  let total = 0;
  let maxAbs = 0;
  for (const t of tokens) {
    total += t.reward;
    maxAbs = Math.max(maxAbs, Math.abs(t.reward));
  }
  return { prompt, completion: text, beta, tokens, steps, total_reward: total, max_abs_reward: maxAbs };
}

/** Index of the step a token starting at `at` belongs to: the last step starting at or before it (0 before any). */
function stepOf(steps: { start: number }[], at: number): number {
  let k = 0;
  while (k + 1 < steps.length && steps[k + 1].start <= at) k++;
  return k;
}

/**
 * Per-step sums of token rewards and log-probs. Steps are splitSteps(completion); a token belongs to the step its
 * span starts in (whitespace after a step's text, such as its newline, to that step). A completion with no step
 * text (only whitespace) is one step holding every token.
 */
export function stepRewards(
  tokens: readonly Pick<CompletionToken, "start" | "reward" | "logprob" | "ref_logprob">[],
  completion: string,
): StepCredit[] {
  const spans = splitSteps(completion);
  const steps: StepCredit[] = (spans.length ? spans : [{ text: completion, start: 0, end: completion.length }]).map(
    (s, index) => ({
      index,
      text: s.text,
      start: s.start,
      end: s.end,
      tokens: 0,
      reward: 0,
      logprob: 0,
      ref_logprob: 0,
    }),
  );
  for (const t of tokens) {
    const s = steps[stepOf(steps, t.start)];
    s.tokens++;
    s.reward += t.reward;
    s.logprob += t.logprob;
    s.ref_logprob += t.ref_logprob;
  }
  return steps;
}

export interface CreditOptions {
  beta?: number; // DPO beta of the reward, default 0.1
  prompt?: string; // text before the completion; its tokens are context only (default "": BOS alone)
  addEos?: boolean; // score an EOS after the completion, as SFT/DPO train on whole completions (default false)
}

/** The per-token and per-step implicit reward of `completion` under policy against ref. */
export function scoreCredit(
  policy: Llama,
  ref: Llama,
  tokenizer: TextTokenizer,
  completion: string,
  opts: CreditOptions = {},
): Credit {
  return scoreCredits(policy, ref, tokenizer, [{ prompt: opts.prompt ?? "", completion }], opts)[0];
}

/** scoreCredit for many texts, scored in one batch per model. */
export function scoreCredits(
  policy: Llama,
  ref: Llama,
  tokenizer: TextTokenizer,
  texts: { prompt: string; completion: string }[],
  opts: Omit<CreditOptions, "prompt"> = {},
): Credit[] {
  const beta = opts.beta ?? 0.1;
  if (!(beta > 0) || !Number.isFinite(beta)) throw new InputError(`beta must be a number > 0, got ${beta}`);
  if (ref.config.vocab_size !== policy.config.vocab_size) {
    throw new InputError(
      `the reference's vocabulary (${ref.config.vocab_size}) differs from the model's ` +
        `(${policy.config.vocab_size})`,
      ref.source,
      "score against the model this one was trained from",
    );
  }
  const ids = texts.map((t) => encodeForCredit(tokenizer, t.prompt, t.completion, { addEos: opts.addEos }));
  const lps = completionTokenLogprobs(policy, ref, ids);
  return texts.map((t, i) =>
    creditFromLogprobs(tokenizer, t.prompt, ids[i], lps[i].logprob, lps[i].ref_logprob!, beta),
  );
}

/**
 * Scores token ids (BOS first, as the tokenizer adds it) under `policy` and, when `ref` is given, their rewards
 * against it with tokenRewards. The first token has logprob (and reward) null. ids holds at least one token.
 */
export function scoreSequence(
  policy: Llama,
  ref: Llama | null,
  tokenizer: TextTokenizer,
  ids: number[],
  beta: number,
): SequenceScore {
  const [lp] = scoreTokens(policy, [ids]); // (T-1) log-probs of tokens 1.. given what precedes them
  const rewards = ref ? tokenRewards(lp, scoreTokens(ref, [ids])[0], beta) : null;
  let total = 0;
  let totalReward = 0;
  const tokens = ids.map((id, i): CreditToken => {
    const logprob = i === 0 ? null : lp[i - 1];
    const t: CreditToken = { id, text: tokenizer.tokenText(id), logprob };
    if (logprob !== null) total += logprob;
    if (rewards) {
      t.reward = logprob === null ? null : rewards[i - 1];
      totalReward += t.reward ?? 0;
    }
    return t;
  });
  return { tokens, total_logprob: total, ...(rewards ? { total_reward: totalReward } : {}) };
}
