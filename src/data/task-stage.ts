// The task stage as a library function: `writeTask(config, ctx)` writes built-in arithmetic word problems in
// GSM8K's format (src/data/task.ts) to a JSONL file, atomically; `streamTask` writes them line by line (to stdout).

import { writeJsonlAtomic } from "../core/atomic.js";
import { asKeys, KnobReader, type Naming } from "../core/config.js";
import { InputError } from "../core/errors.js";
import { checkOutputFile } from "../core/outputs.js";
import { progressOf, type StageContext } from "../core/stage.js";
import { NO_NOISE, noisyAnswer, validateNoise, type NoiseConfig } from "./noise.js";
import {
  ALL_OPS,
  PRESETS,
  presetNames,
  streamMixture,
  validateTaskConfig,
  type Op,
  type Split,
  type TaskConfig,
  type TaskPart,
  type TaskProblem,
} from "./task.js";

export interface TaskFileConfig {
  parts: TaskPart[]; // the preset(s) with every override applied: one, or several mixed in equal shares
  n: number; // problems (1000)
  seed: number; // the same seed and options give the same file (1)
  split: Split; // train or test: they never share a problem
  noise: NoiseConfig; // flawed solutions for SFT data (none)
}

/** "2-5" or "3" -> [2, 5] / [3, 3]. */
function range(r: KnobReader, key: string, dflt: [number, number]): [number, number] {
  if (!r.has(key)) return dflt;
  const m = /^\s*(\d+)\s*(?:-\s*(\d+))?\s*$/.exec(String(r.raw(key)));
  if (!m) r.fail(key, "a number or a range like 2-5");
  const lo = Number(m[1]);
  return [lo, m[2] === undefined ? lo : Number(m[2])];
}

function partConfig(base: TaskConfig, r: KnobReader): TaskConfig {
  const ops = (r.list("ops") as Op[] | null) ?? base.ops;
  const bad = ops.find((o) => !ALL_OPS.includes(o));
  if (bad !== undefined)
    throw new InputError(
      `${r.naming.name("ops")}: unknown operation "${bad}"`,
      undefined,
      `use a comma list of: ${ALL_OPS.join(" ")}`,
    );
  return validateTaskConfig({
    steps: range(r, "steps", base.steps),
    ops,
    start: range(r, "start", base.start),
    addend: range(r, "addend", base.addend),
    factor: range(r, "factor", base.factor),
    maxValue: r.int("max_value", base.maxValue),
    compound: r.num("compound", base.compound, Number.isFinite, "a number in [0, 1]"),
  });
}

/** "borrow:0.7" or "slip:0.2:keep", or a NoiseConfig. */
function noiseOf(r: KnobReader): NoiseConfig {
  if (!r.has("noise")) return NO_NOISE;
  const v = r.raw("noise");
  let noise: NoiseConfig;
  if (typeof v === "string") {
    const m = /^(borrow|slip):([0-9.]+)(?::(keep|recompute))?$/.exec(v);
    if (!m) r.fail("noise", "borrow:RATE or slip:RATE, optionally :keep");
    noise = {
      kind: m[1] as NoiseConfig["kind"],
      rate: Number(m[2]),
      answer: (m[3] ?? "recompute") as NoiseConfig["answer"],
    };
  } else {
    noise = v as NoiseConfig;
  }
  try {
    return validateNoise(noise, r.naming.name("noise"));
  } catch (e) {
    throw new InputError((e as Error).message);
  }
}

/**
 * A full TaskFileConfig from the knobs given (flag or key spellings), validated once: preset (easy, medium,
 * hard or a mix like easy+medium; medium), the overrides of every part (steps, ops, start, addend, factor,
 * max_value, compound), n, seed, split and noise.
 */
export function taskConfig(given: Record<string, unknown>, naming: Naming = asKeys()): TaskFileConfig {
  const r: KnobReader = new KnobReader(given, naming);
  const preset = r.str("preset", "medium");
  const names = presetNames(preset);
  if (!names) r.fail("preset", 'easy, medium or hard, or several different ones joined by "+" (easy+medium)');
  return {
    parts: names.map((level) => ({ level, config: partConfig(PRESETS[level], r) })),
    n: r.int("n", 1000, 0),
    seed: r.int("seed", 1, 0),
    split: r.choice("split", ["train", "test"] as const, "train"),
    noise: noiseOf(r),
  };
}

/** The problems a config names, one at a time (a noisy record keeps its original as "clean_answer"). */
export function* taskProblems(
  c: TaskFileConfig,
  onProblem: () => void = () => {},
): Generator<TaskProblem & { clean_answer?: string }> {
  let i = 0;
  if (c.n === 0) return;
  for (const p of streamMixture(c.parts, { seed: c.seed, split: c.split })) {
    const answer = noisyAnswer(p.answer, p.id, c.noise, c.seed);
    yield answer === p.answer ? p : { ...p, answer, clean_answer: p.answer };
    onProblem();
    if (++i >= c.n) return;
  }
}

/** Writes the config's problems to `out` (atomically). */
export async function writeTask(c: TaskFileConfig, out: string, ctx: StageContext = {}): Promise<void> {
  checkOutputFile(out);
  const progress = progressOf(ctx, `task ${c.split}`, { total: c.n, unit: "problems" });
  try {
    await writeJsonlAtomic(
      out,
      taskProblems(c, () => progress.tick()),
    );
  } finally {
    progress.finish();
  }
}

/** Writes the config's problems one JSON line at a time to `write` (stdout, say), as they are made. */
export function streamTask(c: TaskFileConfig, write: (line: string) => void, ctx: StageContext = {}): void {
  const progress = progressOf(ctx, `task ${c.split}`, { total: c.n, unit: "problems" });
  for (const p of taskProblems(c, () => progress.tick())) write(JSON.stringify(p) + "\n");
  progress.finish();
}

/** What `stepwise task --json` prints: the size, split and seed, where the problems went, each part's config. */
export function taskSummary(c: TaskFileConfig, out: string | null) {
  const { parts } = c;
  return {
    n: c.n,
    split: c.split,
    seed: c.seed,
    out,
    config: parts.length === 1 ? parts[0].config : Object.fromEntries(parts.map((p) => [p.level, p.config])),
  };
}
