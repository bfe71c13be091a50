// `stepwise sft` and `stepwise dpo`: read a JSONL or parquet file (src/train/data.ts), train, write a Hugging Face
// model folder with metrics.jsonl, checkpoints/ and the resolved train_config.json beside the weights.

import { backendFor } from "../backend/index.js";
import { asFlags, KnobReader } from "../core/config.js";
import { dpo, dpoConfig, sft, sftConfig, type TrainSummary } from "../train/stage.js";
import { cliContext } from "./context.js";
import type { Command } from "./command.js";

type Values = Record<string, string | boolean | undefined>;

const TRAIN_HELP = [
  "  --out DIR            output model folder (weights, tokenizer, metrics.jsonl, checkpoints/)",
  "  --epochs N           passes over the data (default 1)",
  "  --max-steps N        stop after N optimizer steps",
  "  --batch-size N       items per micro-batch (default 8)",
  "  --grad-accum N       micro-batches per optimizer step (default 1)",
  "  --lr X               peak learning rate",
  "  --lr-schedule S      cosine (default), linear or constant, after warmup",
  "  --warmup-ratio X     fraction of steps spent warming up (default 0.1)",
  "  --weight-decay X     AdamW decoupled weight decay (default 0; norms and biases never decay)",
  "  --max-grad-norm X    clip the global gradient norm (default 1; 0 turns clipping off)",
  "  --seed N             data order (default 0)",
  "  --save-every N       checkpoint every N optimizer steps (default 0: at the end only)",
  "  --keep-checkpoints N checkpoints kept (default 2)",
  "  --resume             continue from the newest intact checkpoint in --out",
  "  --overwrite          replace the outputs of an earlier run in --out (refused without this or --resume)",
  "  --max-length N       longest prompt + completion in tokens (default 1024)",
  "  --template T         plain (default: question, newline, solution) or chat (the model's chat template)",
  "                       for {question, answer} and Step-DPO records; messages always use the chat template",
  "  --skip-bad           count and skip bad lines (parquet: rows) instead of stopping",
  "  --threads N          native backend threads (default: all cores)",
  "  --backend B          native (default when built) or reference",
  "  --eval-every N       score the held-out file every N steps (default: at the end only)",
  "  --report-to LIST     also log every step to: tensorboard (event files in --out/runs/) or none (default)",
  "  --lora R             train rank-R LoRA adapters instead of every weight (the base stays frozen)",
  "  --lora-alpha A       adapter scale alpha / R (default 2R)",
  "  --lora-dropout P     dropout on the adapters' inputs while training (default 0)",
  "  --lora-targets LIST  modules to adapt (default q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj)",
  "  --merge              with --lora: merge the adapters into the weights before saving (a plain HF folder)",
  "  --json               print a JSON summary at the end",
].join("\n");

/** --backend and --threads: the backend the training stages find with getBackend(). */
function setup(values: Values): void {
  const r = new KnobReader(values, asFlags);
  backendFor(r.str("backend", null), r.int("threads", null), true);
}

function report(values: Values, s: TrainSummary): number {
  if (values.json) console.log(JSON.stringify(s));
  else console.error(`stepwise ${s.kind}: ${s.steps}/${s.total_steps} steps, model written to ${s.out}`);
  return 0;
}

export const sftCommand: Command = {
  name: "sft",
  cooperative: true,
  resumeFlag: "--resume",
  summary: "supervised fine-tuning on step-formatted solutions (loss on completion tokens only)",
  usage: "stepwise sft --data FILE (--model DIR | --init tiny|small|CONFIG.json) --out DIR [options]",
  help: [
    "  --data FILE          JSONL or .parquet: {question, answer}, or TRL's SFT formats: {prompt, completion}",
    "                       (strings, or lists of {role, content} messages), {messages} or {text} (loss on every",
    "                       token after the first); messages are rendered with the model's chat template",
    "  --eval-data FILE     held-out examples (same formats): eval_loss in metrics.jsonl",
    "  --model DIR          start from a model folder, a .gguf file or a Hugging Face name owner/name",
    "  --init SPEC          or from a fresh model: tiny, small, or a config.json",
    "  --tokenizer K        with --init tiny|small: bpe (default: learned from --data; words become tokens, digits",
    "                       stay single) or chars (the built-in character tokenizer)",
    "  --vocab-size N       bpe: largest vocabulary (default 1024; fewer when the data has fewer frequent pairs)",
    "  --pack               pack whole examples into rows of up to --max-length tokens (first-fit decreasing);",
    "                       --batch-size then counts rows. Loss stays on completion tokens only, but attention",
    "                       crosses the examples of a row (no document mask): off by default",
    "  --bucket             length-bucketed batches: sort by length within seeded windows, then shuffle the",
    "                       batches (less padding, faster; seeded and resumable). Off by default: plain shuffle",
    "  --bucket-window N    micro-batches per sorting window with --bucket (default 50)",
    TRAIN_HELP,
  ].join("\n"),
  async run(values) {
    setup(values);
    const s = await sft(sftConfig(values, asFlags), cliContext());
    if (!values.json)
      console.error(
        `stepwise: padding: ${(100 * (s.padding_fraction as number)).toFixed(1)}% of batch positions (first epoch's batches)`,
      );
    return report(values, s);
  },
};

export const dpoCommand: Command = {
  name: "dpo",
  cooperative: true,
  resumeFlag: "--resume",
  summary: "DPO-family training on preference pairs (outcome, SCDPO or Step-DPO)",
  usage:
    "stepwise dpo --model DIR --pairs FILE --out DIR [--loss sigmoid[,sft]] [--loss-weights 1,0.2] [--beta 0.1] [options]",
  help: [
    "  --model DIR          the policy to train (usually the SFT model); also the reference unless --ref",
    "  --pairs FILE         JSONL or .parquet pairs: TRL {prompt, chosen, rejected} as strings or lists of",
    "                       {role, content} messages (the model's chat template), or {chosen, rejected} alone",
    "                       (implicit prompt: their common start), or Step-DPO format",
    "  --loss L[,L...]      sigmoid (default), robust, hinge, ipo, sigmoid_norm, apo_zero, dpop, sft",
    "  --loss-weights W,... one weight per loss (default 1 each); sigmoid,sft with 1,0.2 is Iterative RPO",
    "  --beta X             inverse temperature of the implicit reward (default 0.1)",
    "  --label-smoothing X  noise rate for sigmoid (cDPO) and robust (default 0)",
    "  --dpop-lambda X      dpop: weight of the penalty on a chosen log-prob below the reference's (default 50)",
    "  --ref DIR            a reference model other than --model",
    "  --reference MODE     precomputed (default: one batched pass, cached in --out) or live",
    "  --eval-pairs FILE    held-out pairs (same formats): eval_loss, eval_rewards/... in metrics.jsonl",
    "  --replay FILE        SFT examples (sft --data formats) replayed in the batches, one per pair, SFT loss added",
    "  --replay-weight W    weight of the replayed examples' mean token loss (default 1; replay_loss in metrics)",
    TRAIN_HELP,
  ].join("\n"),
  async run(values) {
    setup(values);
    return report(values, await dpo(dpoConfig(values, asFlags), cliContext()));
  },
};
