// `stepwise score`: per-token log-probs of a text under a model and, with a reference model, the per-token implicit
// reward beta * log(pi / pi_ref) that DPO assigns (Rafailov et al. 2024, "Your language model is secretly a Q-function").

import { backendByName, getBackend } from "../backend/index.js";
import { InputError } from "../core/errors.js";
import { scoreSequence, type SequenceScore } from "../inspect/credit.js";
import { loadModel, loadModelTokenizer } from "../model/hub.js";
import type { Llama } from "../model/llama.js";
import type { TextTokenizer } from "../model/tokenizer.js";
import type { Command } from "./command.js";
import { flagNumber, intOption } from "./options.js";

/** What `stepwise score --json` prints: the sequence scores of src/inspect/credit.ts. */
export type ScoreResult = SequenceScore;

/** Scores `text` (tokenized with BOS as the tokenizer adds it) under `model`, and against `ref` when given. */
export function scoreText(
  model: Llama,
  tokenizer: TextTokenizer,
  text: string,
  ref: Llama | null,
  beta: number,
): ScoreResult {
  const ids = tokenizer.encode(text);
  if (ids.length === 0) throw new InputError("the text has no tokens", "--text");
  return scoreSequence(model, ref, tokenizer, ids, beta);
}

function table(r: ScoreResult): string {
  const lines = ["  pos      id  logprob     reward  text"];
  const num = (x: number | null | undefined) => (x === null || x === undefined ? "" : x.toFixed(4));
  r.tokens.forEach((t, i) => {
    lines.push(
      `${String(i).padStart(5)} ${String(t.id).padStart(7)}  ${num(t.logprob).padStart(8)}  ` +
        `${num(t.reward).padStart(9)}  ${JSON.stringify(t.text)}`,
    );
  });
  lines.push(
    `total logprob ${r.total_logprob.toFixed(4)}` +
      (r.total_reward !== undefined ? `, total reward ${r.total_reward.toFixed(4)}` : ""),
  );
  return lines.join("\n");
}

export const scoreCommand: Command = {
  name: "score",
  summary: "per-token log-probs of a text, and implicit rewards beta*log(pi/pi_ref) against a reference",
  usage: "stepwise score --model DIR [--ref DIR] [--beta 0.1] --text STR [--json]",
  help: [
    "The text is tokenized with the model folder's tokenizer.json (BOS added as the tokenizer does) and scored",
    "teacher-forced: each token's log-prob given every token before it.",
    "options:",
    "  --model DIR     model folder (config.json, safetensors, tokenizer.json), a .gguf file or a Hugging Face name",
    "  --ref DIR       reference model folder (same vocabulary): adds each token's reward beta*log(pi/pi_ref)",
    "  --beta X        DPO beta of the reward (default 0.1)",
    "  --text STR      the text to score",
    '  --json          print {"tokens": [{"id", "text", "logprob", "reward"?}], "total_logprob", "total_reward"?};',
    "                  tokens is the whole sequence the model sees, BOS included with logprob null",
    "  --backend B     native (default when built) or reference",
    "  --threads N     worker threads of the native backend",
  ].join("\n"),
  async run(values) {
    if (typeof values.model !== "string") throw new InputError("--model DIR is required");
    if (typeof values.text !== "string") throw new InputError("--text STR is required");
    const beta = values.beta === undefined ? 0.1 : flagNumber(values.beta);
    if (!Number.isFinite(beta) || beta <= 0) throw new InputError(`--beta must be a number > 0, got "${values.beta}"`);
    const be = values.backend ? backendByName(String(values.backend)) : getBackend();
    if (values.threads !== undefined) be.setThreads(intOption(values, "threads", 1));
    const tokenizer = loadModelTokenizer(values.model);
    const model = loadModel(values.model, { backend: be });
    let ref: Llama | null = null;
    try {
      if (typeof values.ref === "string") {
        ref = loadModel(values.ref, { backend: be });
        if (ref.config.vocab_size !== model.config.vocab_size) {
          throw new InputError(
            `the reference's vocabulary (${ref.config.vocab_size}) differs from the model's ` +
              `(${model.config.vocab_size})`,
            values.ref,
            "score against the model this one was trained from",
          );
        }
      }
      const r = scoreText(model, tokenizer, values.text, ref, beta);
      console.log(values.json ? JSON.stringify(r) : table(r));
      return 0;
    } finally {
      model.dispose();
      ref?.dispose();
    }
  },
};
