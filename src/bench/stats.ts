// Timing helpers for benchmarks: medians after warm-up.

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Runs fn `warmup` times, then until both minReps runs and minMs have passed; returns the median ms. */
export function timeMedian(
  fn: () => void,
  opts: { warmup?: number; minReps?: number; minMs?: number; maxReps?: number } = {},
): number {
  const { warmup = 2, minReps = 5, minMs = 300, maxReps = 200 } = opts;
  for (let i = 0; i < warmup; i++) fn();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < maxReps && (times.length < minReps || performance.now() - start < minMs)) {
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
  }
  return median(times);
}
