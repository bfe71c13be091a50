// Evaluation statistics: the Wilson score interval of an accuracy, the unbiased pass@k estimator, and majority
// voting over sampled answers with the verifier's equivalence.

import { answersEqual } from "../verify/answer.js";

/** z of a two-sided 95% normal interval: Phi^-1(0.975). */
export const Z95 = 1.959963984540054;

/**
 * The Wilson score interval of a binomial proportion (Wilson 1927): with p = correct/n,
 *   (p + z^2/2n -+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n).
 * Unlike the normal interval it stays inside [0, 1] and is not empty at p = 0 or 1. n = 0 gives [0, 1].
 */
export function wilson(correct: number, n: number, z = Z95): [number, number] {
  if (!Number.isInteger(n) || n < 0 || !Number.isInteger(correct) || correct < 0 || correct > n) {
    throw new RangeError(`wilson: need integers 0 <= correct <= n, got correct=${correct}, n=${n}`);
  }
  if (n === 0) return [0, 1];
  const p = correct / n;
  const z2 = z * z;
  const denom = 1 + z2 / n;
  const center = (p + z2 / (2 * n)) / denom;
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / denom;
  // At p = 0 (or 1) the bound is exactly 0 (or 1); clamp the rounding of center - half.
  return [correct === 0 ? 0 : Math.max(0, center - half), correct === n ? 1 : Math.min(1, center + half)];
}

/**
 * The unbiased pass@k estimator (Chen et al. 2021, "Evaluating Large Language Models Trained on Code", eq. 1) of one
 * problem with n samples of which c are correct: 1 - C(n-c, k) / C(n, k), computed as the stable product
 * 1 - prod_{i=n-c+1}^{n} (1 - k/i).
 */
export function passAtK(n: number, c: number, k: number): number {
  if (!Number.isInteger(n) || !Number.isInteger(c) || !Number.isInteger(k) || c < 0 || c > n || k < 1 || k > n) {
    throw new RangeError(`passAtK: need integers 0 <= c <= n and 1 <= k <= n, got n=${n}, c=${c}, k=${k}`);
  }
  if (n - c < k) return 1; // every k-subset holds a correct sample
  let miss = 1; // C(n-c, k) / C(n, k)
  for (let i = n - c + 1; i <= n; i++) miss *= 1 - k / i;
  return 1 - miss;
}

export interface Vote {
  /** The winning answer as first written (the spelling of its earliest sample), or null when no sample had one. */
  answer: string | null;
  /** The index of the winning group's earliest sample, or -1. */
  index: number;
  /** How many samples voted for it. */
  votes: number;
}

/**
 * Majority vote over extracted answers (null = the sample gave none, and does not vote). Answers are grouped by the
 * verifier's equivalence: a sample joins the first group (in order of appearance) whose first answer it equals
 * (answersEqual true, so "1,000" and "1000" are one group; undecided comparisons do not join), else starts a group.
 * The group with the most votes wins; a tie goes to the group whose first sample came earliest, so the result depends
 * only on the order of the samples.
 */
export function majorityVote(
  answers: (string | null)[],
  equal: (a: string, b: string) => boolean | null = answersEqual,
): Vote {
  const groups: { answer: string; index: number; votes: number }[] = [];
  answers.forEach((a, i) => {
    if (a === null) return;
    const g = groups.find((x) => x.answer === a || equal(a, x.answer) === true);
    if (g) g.votes++;
    else groups.push({ answer: a, index: i, votes: 1 });
  });
  let best: Vote = { answer: null, index: -1, votes: 0 };
  for (const g of groups) if (g.votes > best.votes) best = g; // strict: an earlier group keeps a tie
  return { ...best };
}
