// The built-in task: multi-step arithmetic word problems in GSM8K's exact format. A problem is a running quantity
// (stickers, money, muffins, ...) changed by a chain of moves; each move is one sentence of the question and one
// answer line with a `<<expr=value>>` annotation; the answer ends with "#### n". Every value is a whole number.
//
// Difficulty knobs (TaskConfig; presets easy / medium / hard):
//   steps     answer lines per problem, inclusive range (every line is one more chance of a slip)
//   ops       the moves allowed: "+", "-", "*", "/", "mod" (mod = keep what does not fill whole groups)
//   start     range of the starting quantity
//   addend    range of numbers added or subtracted (and of group sizes in compound moves)
//   factor    range of multipliers, divisors, moduli and group counts
//   maxValue  no intermediate value exceeds it (bigger numbers = more digits to get right)
//   compound  probability that a +/- move brings in a product first ("3 packs of 12"): two lines, one move
// Parts: several configs mixed in equal shares (streamMixture; `--preset easy+medium`), each problem labelled with
// its part's `level`.
// Calibration (measured: tiny preset, learned BPE, batch 32, lr 3e-3, one epoch, 400 held-out problems, seeds
// 1/2/3): a tiny model learns a single preset's arithmetic abruptly, at a step that depends on the seed, so
// accuracy at a fixed budget scatters (easy 2-4 steps: 24k problems 39/12/18%, 32k 75/77/85%; 48k with 3-5 steps
// 98/96%). The mix easy (2-4 steps) + medium at 48k problems lands mid-band on every seed: 64/57/48% in
// `stepwise run --seeds 3`, the easy half learned (71-95%), the medium half partly (26-33%). It is that run's default.
//
// Splits are disjoint by construction: a problem's split is a hash of its arithmetic skeleton (start value and
// moves, not names or wording), so the train split can never produce a test problem, whatever the seeds or sizes.

import { InputError } from "../core/errors.js";
import { Rng } from "../core/rng.js";
import { FRIENDS, NAMES, SCENARIOS, type Scenario } from "./scenarios.js";

export type Op = "+" | "-" | "*" | "/" | "mod";
export const ALL_OPS: readonly Op[] = ["+", "-", "*", "/", "mod"];
export type Split = "train" | "test";

export interface TaskConfig {
  steps: [number, number];
  ops: Op[];
  start: [number, number];
  addend: [number, number];
  factor: [number, number];
  maxValue: number;
  compound: number;
}

export const PRESETS: Record<"easy" | "medium" | "hard", TaskConfig> = {
  easy: { steps: [2, 3], ops: ["+", "-"], start: [2, 20], addend: [1, 20], factor: [2, 5], maxValue: 100, compound: 0 },
  medium: {
    steps: [2, 4],
    ops: ["+", "-", "*", "/"],
    start: [5, 50],
    addend: [2, 50],
    factor: [2, 9],
    maxValue: 1000,
    compound: 0.2,
  },
  hard: {
    steps: [3, 6],
    ops: ["+", "-", "*", "/", "mod"],
    start: [10, 200],
    addend: [5, 200],
    factor: [2, 12],
    maxValue: 10000,
    compound: 0.3,
  },
};

/** The presets a spec names: "medium", or several joined by "+" ("easy+medium"); null if one is unknown or repeated. */
export function presetNames(spec: string): (keyof typeof PRESETS)[] | null {
  const names = spec.split("+").map((s) => s.trim());
  if (names.some((n) => !(n in PRESETS)) || new Set(names).size !== names.length) return null;
  return names as (keyof typeof PRESETS)[];
}

/** Share of all skeletons that belong to the test split. A constant: changing it would break disjointness. */
export const TEST_FRACTION = 0.2;

export interface TaskProblem {
  id: string;
  question: string;
  answer: string;
  final: string;
  /** Answer lines before "####". */
  steps: number;
  split: Split;
  scenario: string;
  ops: Op[];
  /** The part of a mixed task (`streamMixture`) this problem came from, e.g. "easy"; absent for a single config. */
  level?: string;
}

/** One move of the chain. `k` is set for a compound move: the operand is k * n. */
interface Move {
  op: Op;
  n: number;
  k?: number;
}

// ---------------------------------------------------------------------------------------------------------------
// Skeletons: numbers and moves

function pick(rng: Rng, [lo, hi]: [number, number]): number {
  return lo + rng.int(hi - lo + 1);
}

/** A feasible move from value `a`, or null. Results stay whole, >= 1, and <= maxValue. */
function move(rng: Rng, cfg: TaskConfig, a: number, op: Op, compound: boolean): Move | null {
  switch (op) {
    case "+":
    case "-": {
      const k = compound ? pick(rng, cfg.factor) : undefined;
      const n = pick(rng, cfg.addend);
      const d = (k ?? 1) * n;
      const r = op === "+" ? a + d : a - d;
      return r >= 1 && r <= cfg.maxValue ? { op, n, k } : null;
    }
    case "*": {
      const n = pick(rng, cfg.factor);
      return a * n <= cfg.maxValue ? { op, n } : null;
    }
    case "/": {
      const divisors: number[] = [];
      for (let d = Math.max(2, cfg.factor[0]); d <= cfg.factor[1]; d++) if (a % d === 0 && a / d >= 1) divisors.push(d);
      return divisors.length > 0 ? { op, n: divisors[rng.int(divisors.length)] } : null;
    }
    case "mod": {
      const n = pick(rng, cfg.factor);
      return n < a && a % n >= 1 ? { op, n } : null;
    }
    default:
      return op satisfies never;
  }
}

function apply(a: number, m: Move): number {
  const d = (m.k ?? 1) * m.n;
  switch (m.op) {
    case "+":
      return a + d;
    case "-":
      return a - d;
    case "*":
      return a * m.n;
    case "/":
      return a / m.n;
    case "mod":
      return a % m.n;
    default:
      return m.op satisfies never;
  }
}

function linesOf(m: Move): number {
  return m.k === undefined ? 1 : 2;
}

/** A chain of moves with exactly `lines` answer lines, or null when this attempt ran into a dead end. */
function skeleton(rng: Rng, cfg: TaskConfig, lines: number): { start: number; moves: Move[] } | null {
  const start = pick(rng, cfg.start);
  const moves: Move[] = [];
  let a = start;
  let used = 0;
  while (used < lines) {
    const compound = lines - used >= 2 && rng.next() < cfg.compound;
    let m: Move | null = null;
    for (let tries = 0; tries < 8 && !m; tries++) {
      const op = cfg.ops[rng.int(cfg.ops.length)];
      m = move(rng, cfg, a, op, compound && (op === "+" || op === "-"));
    }
    if (!m) return null;
    moves.push(m);
    a = apply(a, m);
    used += linesOf(m);
  }
  return { start, moves };
}

/** The canonical content that decides the split: numbers and operations only. */
export function skeletonKey(start: number, moves: readonly Move[]): string {
  return [String(start), ...moves.map((m) => (m.k === undefined ? `${m.op}${m.n}` : `${m.op}${m.k}x${m.n}`))].join(";");
}

/** FNV-1a, 32 bits. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h >>> 0;
}

/** The split a skeleton belongs to. Depends on nothing but the key. */
export function splitOfKey(key: string): Split {
  return fnv1a(key) / 2 ** 32 < TEST_FRACTION ? "test" : "train";
}

// ---------------------------------------------------------------------------------------------------------------
// Wording

const ANN_OP: Record<Op, string> = { "+": "+", "-": "-", "*": "*", "/": "/", mod: "%" };

/** "a op b = <<a op b=r>>r" (money: "= $<<...>>r"). */
function calc(a: number, op: Op, b: number, r: number, money: boolean): string {
  return `${a} ${op} ${b} = ${money ? "$" : ""}<<${a}${ANN_OP[op]}${b}=${r}>>${r}`;
}

function choice<T>(rng: Rng, xs: readonly T[]): T {
  return xs[rng.int(xs.length)];
}

function fill(template: string, vars: Record<string, string>): string {
  const s = template.replace(/\{(\w+)\}/g, (_, k: string) => vars[k] ?? `{${k}}`);
  return s[0].toUpperCase() + s.slice(1);
}

function castOf(rng: Rng, sc: Scenario): Record<string, string> {
  const [name, pronoun] = choice(rng, NAMES);
  const she = pronoun === "she";
  const friend = choice(rng, FRIENDS);
  return {
    Name: name,
    P: she ? "She" : "He",
    p: she ? "she" : "he",
    o: she ? "her" : "him",
    poss: she ? "her" : "his",
    Poss: she ? "Her" : "His",
    self: she ? "herself" : "himself",
    friend,
    Friend: friend[0].toUpperCase() + friend.slice(1),
    items: choice(rng, sc.items),
  };
}

/** Question and answer text for a skeleton. */
function render(
  rng: Rng,
  sc: Scenario,
  start: number,
  moves: readonly Move[],
): { question: string; answer: string; final: number } {
  const cast = castOf(rng, sc);
  const money = (x: number) => (sc.money ? `$${x}` : String(x));
  const q = [fill(choice(rng, sc.start), { ...cast, n: money(start) })];
  const lines: string[] = [];
  let a = start;
  for (const m of moves) {
    const r = apply(a, m);
    if (m.k !== undefined) {
      const kind = m.op === "+" ? "c+" : "c-";
      const d = m.k * m.n;
      q.push(fill(choice(rng, sc.q[kind]), { ...cast, n: money(m.n), k: String(m.k) }));
      lines.push(fill(choice(rng, sc.a[kind]), { ...cast, calc: calc(m.k, "*", m.n, d, sc.money) }));
      lines.push(fill(choice(rng, sc.a[`${kind}sum`]), { ...cast, calc: calc(a, m.op, d, r, sc.money) }));
    } else {
      const n = m.op === "*" || m.op === "/" ? String(m.n) : money(m.n);
      q.push(fill(choice(rng, sc.q[m.op]), { ...cast, n }));
      lines.push(fill(choice(rng, sc.a[m.op]), { ...cast, calc: calc(a, m.op, m.n, r, sc.money) }));
    }
    a = r;
  }
  q.push(fill(choice(rng, sc.ask), cast));
  return { question: q.join(" "), answer: `${lines.join("\n")}\n#### ${a}`, final: a };
}

// ---------------------------------------------------------------------------------------------------------------
// Generation

function checkRange(name: string, r: unknown, min: number): [number, number] {
  if (!Array.isArray(r) || r.length !== 2 || !r.every((x) => Number.isInteger(x)) || r[0] < min || r[1] < r[0]) {
    throw new InputError(
      `task knob "${name}" must be a range [lo, hi] of whole numbers with ${min} <= lo <= hi, got ${JSON.stringify(r)}`,
    );
  }
  return r as [number, number];
}

/** Checks a config; an InputError names the knob. */
export function validateTaskConfig(cfg: TaskConfig): TaskConfig {
  checkRange("steps", cfg.steps, 1);
  if (cfg.steps[1] > 20) throw new InputError(`task knob "steps" allows at most 20 lines, got ${cfg.steps[1]}`);
  checkRange("start", cfg.start, 1);
  checkRange("addend", cfg.addend, 1);
  checkRange("factor", cfg.factor, 2);
  if (!Array.isArray(cfg.ops) || cfg.ops.length === 0 || cfg.ops.some((o) => !ALL_OPS.includes(o))) {
    throw new InputError(
      `task knob "ops" must be a non-empty list of ${ALL_OPS.join(" ")}, got ${JSON.stringify(cfg.ops)}`,
    );
  }
  if (!Number.isInteger(cfg.maxValue) || cfg.maxValue < cfg.start[1]) {
    throw new InputError(
      `task knob "maxValue" must be a whole number >= start's upper end (${cfg.start[1]}), got ${cfg.maxValue}`,
    );
  }
  if (!(cfg.compound >= 0 && cfg.compound <= 1))
    throw new InputError(`task knob "compound" must be in [0, 1], got ${cfg.compound}`);
  return cfg;
}

export interface GenerateOptions {
  seed: number;
  split: Split;
}

/**
 * An endless stream of distinct problems of one split, deterministic in (config, seed, split). Throws an InputError
 * when the knobs leave too few distinct problems to go on.
 */
export function* streamProblems(cfg: TaskConfig, opts: GenerateOptions): Generator<TaskProblem> {
  validateTaskConfig(cfg);
  const rng = new Rng(opts.seed);
  const seen = new Set<string>();
  let misses = 0;
  while (misses < 20000) {
    const lines = pick(rng, cfg.steps);
    const sk = skeleton(rng, cfg, lines);
    const key = sk ? skeletonKey(sk.start, sk.moves) : null;
    if (!sk || !key || seen.has(key) || splitOfKey(key) !== opts.split) {
      misses++;
      continue;
    }
    misses = 0;
    seen.add(key);
    const sc = choice(rng, SCENARIOS);
    const { question, answer, final } = render(rng, sc, sk.start, sk.moves);
    yield {
      id: `arith-${fnv1a(key).toString(16).padStart(8, "0")}`,
      question,
      answer,
      final: String(final),
      steps: lines,
      split: opts.split,
      scenario: sc.id,
      ops: sk.moves.map((m) => m.op),
    };
  }
  throw new InputError(
    `these task knobs allow too few distinct ${opts.split} problems (${seen.size} found)`,
    undefined,
    "widen the number ranges or the steps range, or allow more operations",
  );
}

/** One part of a mixed task: a name for the `level` field and its config. */
export interface TaskPart {
  level: string;
  config: TaskConfig;
}

/**
 * Problems from several configs in equal shares, interleaved (problem i comes from part i mod k): a task with a
 * spread of difficulty, as GSM8K has. A small model then learns the easy part fully and the hard part partly, so its
 * accuracy depends less on where one seed's abrupt learning of arithmetic happens to fall. Each part streams from
 * its own seed (derived from `seed` and its index); a skeleton another part already gave is skipped, so ids stay
 * unique. Every problem carries its part's name as `level`. One part is streamProblems itself, without `level`.
 */
export function* streamMixture(parts: readonly TaskPart[], opts: GenerateOptions): Generator<TaskProblem> {
  if (parts.length === 0) throw new InputError("a mixed task needs at least one part");
  if (parts.length === 1) {
    yield* streamProblems(parts[0].config, opts);
    return;
  }
  const streams = parts.map((p, i) => streamProblems(p.config, { ...opts, seed: (opts.seed * 1000 + i + 1) >>> 0 }));
  const seen = new Set<string>();
  for (let i = 0; ; i = (i + 1) % parts.length) {
    let p = streams[i].next().value as TaskProblem;
    while (seen.has(p.id)) p = streams[i].next().value as TaskProblem;
    seen.add(p.id);
    yield { ...p, level: parts[i].level };
  }
}

/** The first `n` problems of streamProblems (a config) or streamMixture (parts). */
export function generateProblems(
  cfg: TaskConfig | readonly TaskPart[],
  opts: GenerateOptions & { n: number },
): TaskProblem[] {
  const out: TaskProblem[] = [];
  if (opts.n <= 0) return out;
  for (const p of Array.isArray(cfg) ? streamMixture(cfg, opts) : streamProblems(cfg as TaskConfig, opts)) {
    out.push(p);
    if (out.length >= opts.n) break;
  }
  return out;
}
