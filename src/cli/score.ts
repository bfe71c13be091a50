// `stepwise score`: per-token log-probs of a text under a model and, with a reference model, the per-token implicit
// reward beta * log(pi / pi_ref) that DPO assigns (Rafailov et al. 2024, "Your language model is secretly a Q-function").

import { asFlags } from "../core/config.js";
import { scoreConfig, scoreText } from "../inspect/stage.js";
import { scoreTable } from "../inspect/render.js";
import type { Command } from "./command.js";
import { cliContext } from "./context.js";

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
    const r = await scoreText(scoreConfig(values, asFlags), cliContext());
    console.log(values.json ? JSON.stringify(r) : scoreTable(r));
    return 0;
  },
};
