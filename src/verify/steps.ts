// Step splitting. A solution is either one step a line (GSM8K) or "Step k:" blocks (Step-DPO, MetaMath style);
// a final "#### n" line is always a step of its own. Spans carry offsets so that a prefix "up to step k" can be cut
// from the original text exactly.

export interface StepSpan {
  text: string;
  /** Offsets into the solution: text === solution.slice(start, end). */
  start: number;
  end: number;
}

/** "Step 3:", "Step 3.", "**Step 3:**", "## Step 3:" at the start of a line. */
const STEP_MARK = /^[ \t]*(?:#{1,6}[ \t]*|\*\*)?Step[ \t]+\d+\b/gim;

/** Whether the solution uses "Step k:" blocks. */
export function hasStepMarkers(solution: string): boolean {
  STEP_MARK.lastIndex = 0;
  return STEP_MARK.test(solution);
}

export function splitSteps(solution: string): StepSpan[] {
  return hasStepMarkers(solution) ? splitBlocks(solution) : splitLines(solution, 0, solution.length);
}

/** Every non-blank line, without its line break and surrounding blanks. */
function splitLines(s: string, from: number, to: number): StepSpan[] {
  const out: StepSpan[] = [];
  let i = from;
  while (i < to) {
    let j = s.indexOf("\n", i);
    if (j < 0 || j > to) j = to;
    const span = trimmed(s, i, j);
    if (span) out.push(span);
    i = j + 1;
  }
  return out;
}

function splitBlocks(s: string): StepSpan[] {
  const starts: number[] = [];
  STEP_MARK.lastIndex = 0;
  for (let m = STEP_MARK.exec(s); m; m = STEP_MARK.exec(s)) starts.push(m.index);
  const bounds = [0, ...starts, s.length];
  const out: StepSpan[] = [];
  for (let k = 0; k + 1 < bounds.length; k++) {
    if (bounds[k] === bounds[k + 1]) continue;
    out.push(...splitFinalLine(s, bounds[k], bounds[k + 1]));
  }
  return out;
}

/** A block, with any "#### n" line inside it split out as its own step. */
function splitFinalLine(s: string, from: number, to: number): StepSpan[] {
  const block = s.slice(from, to);
  const m = /^[ \t]*####/m.exec(block);
  if (!m) {
    const span = trimmed(s, from, to);
    return span ? [span] : [];
  }
  const at = from + m.index;
  const head = trimmed(s, from, at);
  return [...(head ? [head] : []), ...splitLines(s, at, to)];
}

function trimmed(s: string, from: number, to: number): StepSpan | null {
  while (from < to && /\s/.test(s[from])) from++;
  while (to > from && /\s/.test(s[to - 1])) to--;
  return from < to ? { text: s.slice(from, to), start: from, end: to } : null;
}
