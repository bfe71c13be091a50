// `stepwise task`: generate built-in arithmetic word problems in GSM8K's format.

import { InputError } from "../core/errors.js";
import { writeJsonlAtomic } from "../data/jsonl.js";
import { ALL_OPS, PRESETS, presetNames, streamMixture, validateTaskConfig, type Op, type Split, type TaskConfig, type TaskPart, type TaskProblem } from "../data/task.js";
import { NO_NOISE, noisyAnswer, validateNoise, type NoiseConfig } from "../data/noise.js";
import { Progress } from "./progress.js";
import type { Command } from "./main.js";
import { checkOutputFile } from "../core/outputs.js";
import { flagNumber, intOption } from "./options.js";

/** "2-5" or "3" -> [2, 5] / [3, 3]. */
function rangeOption(values: Record<string, unknown>, name: string, dflt: [number, number]): [number, number] {
  const v = values[name];
  if (v === undefined) return dflt;
  const m = /^\s*(\d+)\s*(?:-\s*(\d+))?\s*$/.exec(String(v));
  if (!m) throw new InputError(`--${name} must be a number or a range like 2-5, got "${v}"`);
  const lo = Number(m[1]);
  return [lo, m[2] === undefined ? lo : Number(m[2])];
}

/** The parts of `--preset`: one preset, or several joined by "+" (equal shares, interleaved); the knobs override each. */
function partsFrom(values: Record<string, unknown>): TaskPart[] {
  const names = presetNames(String(values.preset ?? "medium"));
  if (!names) throw new InputError(`--preset must be easy, medium or hard, or several different ones joined by "+" (easy+medium), got "${values.preset}"`);
  return names.map((level) => ({ level, config: configFrom(PRESETS[level], values) }));
}

function configFrom(base: TaskConfig, values: Record<string, unknown>): TaskConfig {
  const ops = values.ops === undefined ? base.ops : String(values.ops).split(",").map((s) => s.trim()) as Op[];
  const bad = ops.find((o) => !ALL_OPS.includes(o));
  if (bad !== undefined) throw new InputError(`--ops: unknown operation "${bad}"`, undefined, `use a comma list of: ${ALL_OPS.join(" ")}`);
  const compound = values.compound === undefined ? base.compound : flagNumber(values.compound);
  if (!Number.isFinite(compound)) throw new InputError(`--compound must be a number in [0, 1], got "${values.compound}"`);
  return validateTaskConfig({
    steps: rangeOption(values, "steps", base.steps),
    ops,
    start: rangeOption(values, "start", base.start),
    addend: rangeOption(values, "addend", base.addend),
    factor: rangeOption(values, "factor", base.factor),
    maxValue: intOption(values, "max-value", base.maxValue),
    compound,
  });
}

/** "--noise borrow:0.7" or "slip:0.2:keep". */
function noiseOption(v: unknown): NoiseConfig {
  if (v === undefined) return NO_NOISE;
  const m = /^(borrow|slip):([0-9.]+)(?::(keep|recompute))?$/.exec(String(v));
  if (!m) throw new InputError(`--noise must be borrow:RATE or slip:RATE, optionally :keep, got "${v}"`);
  try {
    return validateNoise({ kind: m[1] as NoiseConfig["kind"], rate: Number(m[2]), answer: (m[3] ?? "recompute") as NoiseConfig["answer"] }, "--noise");
  } catch (e) {
    throw new InputError((e as Error).message);
  }
}

export const taskCommand: Command = {
  name: "task",
  summary: "generate built-in multi-step arithmetic word problems (GSM8K format)",
  usage: "stepwise task [--preset easy|medium|hard|easy+medium] [--steps 2-5] [--n 1000] [--seed 1] [--split train|test] [--out FILE]",
  options: {
    preset: { type: "string" },
    steps: { type: "string" },
    n: { type: "string" },
    seed: { type: "string" },
    split: { type: "string" },
    out: { type: "string" },
    ops: { type: "string" },
    start: { type: "string" },
    addend: { type: "string" },
    factor: { type: "string" },
    "max-value": { type: "string" },
    compound: { type: "string" },
    noise: { type: "string" },
    json: { type: "boolean" },
  },
  help: [
    "Each record: {\"id\", \"question\", \"answer\", \"final\", \"steps\", \"split\", \"scenario\", \"ops\", \"level\"?}; the answer has one",
    "line a step with a <<expr=value>> annotation and ends with \"#### n\". Train and test never share a problem.",
    "options:",
    "  --preset P      easy (2-3 steps, + -, values <= 100), medium (default: 2-4 steps, + - * /, <= 1000),",
    "                  hard (3-6 steps, + - * / mod, <= 10000); several joined by \"+\" (easy+medium) mix them in",
    "                  equal shares, interleaved, each problem labelled with its \"level\"; the options below",
    "                  override every part",
    "  --steps A-B     answer lines per problem",
    "  --n N           number of problems (default 1000)",
    "  --seed S        random seed (default 1); the same seed and options give the same file",
    "  --split S       train (default) or test",
    "  --out FILE      output JSONL (written atomically); default: stdout",
    "  --ops LIST      operations, comma-separated: + - * / mod",
    "  --start A-B     starting quantity range",
    "  --addend A-B    range of numbers added or subtracted",
    "  --factor A-B    range of multipliers, divisors and moduli (>= 2)",
    "  --max-value N   largest intermediate value",
    "  --compound P    probability that an add/subtract step first multiplies two numbers (\"3 packs of 12\")",
    "  --noise K:R[:keep]  flawed solutions for SFT data (questions and the \"final\" field stay true): K",
    "                  borrow (a subtraction needing a borrow forgets it, rate R per such line) or slip (one line",
    "                  off by 1-9, rate R per solution); later lines are recomputed from the wrong value, or with",
    "                  :keep use the right one (the final answer stays right). A changed record keeps its",
    "                  original as \"clean_answer\". Sample and evaluate on files made without --noise",
    "  --json          print a JSON summary {\"n\", \"split\", \"seed\", \"out\", \"config\"} on stdout",
  ].join("\n"),
  async run(values) {
    const parts = partsFrom(values);
    const n = intOption(values, "n", 1000, 0);
    const seed = intOption(values, "seed", 1, 0);
    const split = String(values.split ?? "train");
    if (split !== "train" && split !== "test") throw new InputError(`--split must be train or test, got "${split}"`);
    const out = values.out === undefined ? undefined : String(values.out);
    if (values.json && !out) throw new InputError("--json needs --out (stdout carries the problems otherwise)");
    if (out) checkOutputFile(out);
    const noise = noiseOption(values.noise);
    const progress = new Progress(`task ${split}`, { total: n, unit: "problems" });
    function* limited(): Generator<TaskProblem & { clean_answer?: string }> {
      let i = 0;
      if (n === 0) return;
      for (const p of streamMixture(parts, { seed, split: split as Split })) {
        const answer = noisyAnswer(p.answer, p.id, noise, seed);
        yield answer === p.answer ? p : { ...p, answer, clean_answer: p.answer };
        progress.tick();
        if (++i >= n) return;
      }
    }
    if (out) {
      await writeJsonlAtomic(out, limited());
    } else {
      for (const p of limited()) process.stdout.write(JSON.stringify(p) + "\n");
    }
    progress.finish();
    if (values.json) console.log(JSON.stringify({ n, split, seed, out: out ?? null, config: parts.length === 1 ? parts[0].config : Object.fromEntries(parts.map((p) => [p.level, p.config])) }));
    return 0;
  },
};
