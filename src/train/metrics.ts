// Metric names, as TRL writes them; declared once for the trainers, the metrics.jsonl logger and the dashboard.
// The dashboard's browser code (src/dashboard/web/app.ts) loads this compiled module as it is, so it imports nothing.
//
// What each means, as TRL's SFTTrainer.compute_loss and DPOTrainer.compute_loss define it (trl/trainer/sft_trainer.py,
// trl/trainer/dpo_trainer.py): a value per micro-batch, averaged over the optimizer step's micro-batches (TRL's log()
// averages what compute_loss appended), except num_tokens, a running total.
//   num_tokens           tokens fed to the model so far, prompt and completion (TRL: attention_mask.sum()); a DPO
//                        pair counts its prompt twice, once in the chosen row and once in the rejected row
//   entropy              mean entropy of the next-token distribution: SFT over every non-padding position, DPO over
//                        the completion tokens of chosen and rejected rows
//   mean_token_accuracy  share of completion tokens that are the argmax of their logits (DPO: chosen rows only)
//   logits/chosen        mean raw logit over the vocabulary and over the chosen completion tokens (DPO)
//   logits/rejected      the same over the rejected completion tokens
//   rewards/*, logps/*   means over the pairs: beta (pi - ref), sequence log-probs summed over completion tokens

export const METRICS = {
  loss: "loss",
  rewardsChosen: "rewards/chosen",
  rewardsRejected: "rewards/rejected",
  rewardsAccuracies: "rewards/accuracies",
  rewardsMargins: "rewards/margins",
  logpsChosen: "logps/chosen",
  logpsRejected: "logps/rejected",
  logitsChosen: "logits/chosen",
  logitsRejected: "logits/rejected",
  entropy: "entropy",
  meanTokenAccuracy: "mean_token_accuracy",
  replayLoss: "replay_loss", // DPO with SFT replay: the replayed examples' mean token loss
  gradNorm: "grad_norm",
  learningRate: "learning_rate",
  numTokens: "num_tokens",
  epoch: "epoch",
  step: "step",
  tokensPerSecond: "tokens_per_s",
} as const;

export type MetricName = (typeof METRICS)[keyof typeof METRICS];

/** What TRL (the HF Trainer's metric_key_prefix) puts before an evaluation metric's name: eval_loss, eval_rewards/chosen. */
export const EVAL_PREFIX = "eval_";

/** The prefix runs before TRL naming wrote ("eval/loss"); still read, never written. */
export const LEGACY_EVAL_PREFIX = "eval/";

/** An evaluation metric's name, as TRL writes it. */
export function evalMetric(name: string): string {
  return `${EVAL_PREFIX}${name}`;
}

/** The metric an evaluation key measures ("eval_loss" and an old run's "eval/loss" -> "loss"), or null for others. */
export function evalBase(key: string): string | null {
  if (key.startsWith(EVAL_PREFIX)) return key.slice(EVAL_PREFIX.length);
  if (key.startsWith(LEGACY_EVAL_PREFIX)) return key.slice(LEGACY_EVAL_PREFIX.length);
  return null;
}
