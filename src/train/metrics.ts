// Metric names, as TRL writes them; declared once for the trainers, the metrics.jsonl logger and the dashboard.
// The dashboard's browser code (src/dashboard/web/app.ts) loads this compiled module as it is, so it imports nothing.

export const METRICS = {
  loss: "loss",
  rewardsChosen: "rewards/chosen",
  rewardsRejected: "rewards/rejected",
  rewardsAccuracies: "rewards/accuracies",
  rewardsMargins: "rewards/margins",
  logpsChosen: "logps/chosen",
  logpsRejected: "logps/rejected",
  gradNorm: "grad_norm",
  learningRate: "learning_rate",
  numTokens: "num_tokens",
  epoch: "epoch",
  step: "step",
  tokensPerSecond: "tokens_per_s",
} as const;

export type MetricName = (typeof METRICS)[keyof typeof METRICS];

/** What TRL puts before an evaluation metric's name. */
export const EVAL_PREFIX = "eval/";

/** An evaluation metric's name: TRL prefixes them with "eval/". */
export function evalMetric(name: MetricName): string {
  return `${EVAL_PREFIX}${name}`;
}
