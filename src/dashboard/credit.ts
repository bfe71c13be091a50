// Credit heatmaps on request: the per-token implicit reward beta * log(pi / pi_ref) of a text, scored by
// scoreSequence (src/inspect/credit.ts) as `stepwise score` scores it (Rafailov et al. 2024), with the model folders
// loaded once and kept in a small cache keyed by folder and the weights' modification time.

import fs from "node:fs";
import path from "node:path";
import type { Backend } from "../backend/backend.js";
import { scoreSequence, type CreditToken } from "../inspect/credit.js";
import { loadModel, loadModelTokenizer } from "../model/hub.js";
import type { Llama } from "../model/llama.js";
import type { TextTokenizer } from "../model/tokenizer.js";
import { HttpError } from "./runs.js";

interface Loaded {
  key: string;
  model: Llama;
  tokenizer: TextTokenizer;
}

/** `stepwise score --json`'s fields with a reference, plus where the prompt ends. */
export interface CreditResult {
  tokens: CreditToken[]; // the whole sequence the model sees, BOS first (its logprob and reward null)
  total_logprob: number;
  total_reward: number;
  /** How many leading tokens (BOS included) belong to the prompt; their rewards are context, not the completion's. */
  prompt_tokens: number;
  /** Sum of the rewards of the tokens after the prompt: the completion's implicit reward. */
  completion_reward: number;
  beta: number;
}

function weightsMtime(dir: string): number {
  for (const f of ["model.safetensors", "model.safetensors.index.json", "adapter_model.safetensors"]) {
    try {
      return fs.statSync(path.join(dir, f)).mtimeMs;
    } catch {
      /* try the next name */
    }
  }
  return 0;
}

/** Loaded models, least recently used first out; evicted models are disposed. */
export class ModelCache {
  private readonly entries: Loaded[] = [];
  loads = 0; // how many times a folder was read from disk (tests check the cache works)

  constructor(
    private readonly backend: Backend | undefined,
    private readonly capacity = 4,
  ) {}

  get(dir: string): Loaded {
    const key = `${fs.realpathSync(dir)}@${weightsMtime(dir)}`;
    const at = this.entries.findIndex((e) => e.key === key);
    if (at >= 0) {
      const [hit] = this.entries.splice(at, 1);
      this.entries.push(hit);
      return hit;
    }
    const tokenizer = loadModelTokenizer(dir);
    const model = loadModel(dir, { backend: this.backend, warn: () => {} });
    this.loads++;
    const entry = { key, model, tokenizer };
    this.entries.push(entry);
    while (this.entries.length > this.capacity) this.entries.shift()!.model.dispose();
    return entry;
  }

  dispose(): void {
    for (const e of this.entries.splice(0)) e.model.dispose();
  }
}

/** Leading ids shared by the tokenization of the prompt alone (without end tokens) and of prompt + completion. */
function promptTokenCount(tokenizer: TextTokenizer, prompt: string, ids: number[]): number {
  if (!prompt) return ids.length > 0 && tokenizer.prefixIds.length > 0 ? tokenizer.prefixIds.length : 0;
  const p = tokenizer.encode(prompt);
  const bare = p.slice(
    0,
    p.length - (tokenizer.suffixIds.length && p.length >= tokenizer.suffixIds.length ? tokenizer.suffixIds.length : 0),
  );
  let n = 0;
  while (n < bare.length && n < ids.length && bare[n] === ids[n]) n++;
  return n;
}

/** Scores prompt + text under the policy folder against the reference folder. */
export function credit(
  cache: ModelCache,
  policyDir: string,
  refDir: string,
  prompt: string,
  text: string,
  beta: number,
): CreditResult {
  const policy = cache.get(policyDir);
  const ref = cache.get(refDir);
  if (ref.model.config.vocab_size !== policy.model.config.vocab_size) {
    throw new HttpError(
      400,
      `the reference's vocabulary (${ref.model.config.vocab_size}) differs from the model's ` +
        `(${policy.model.config.vocab_size}): score against the model this one was trained from`,
    );
  }
  const full = prompt + text;
  if (!full) throw new HttpError(400, "the text is empty");
  const ids = policy.tokenizer.encode(full);
  if (ids.length === 0) throw new HttpError(400, "the text has no tokens");
  const scored = scoreSequence(policy.model, ref.model, policy.tokenizer, ids, beta);
  const promptTokens = promptTokenCount(policy.tokenizer, prompt, ids);
  let completionReward = 0;
  for (const t of scored.tokens.slice(promptTokens)) completionReward += t.reward ?? 0;
  return {
    tokens: scored.tokens,
    total_logprob: scored.total_logprob,
    total_reward: scored.total_reward ?? 0,
    prompt_tokens: promptTokens,
    completion_reward: completionReward,
    beta,
  };
}
