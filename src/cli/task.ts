// `stepwise task`: flags -> TaskFileConfig -> built-in arithmetic word problems in GSM8K's format
// (src/data/task-stage.ts).

import { asFlags } from "../core/config.js";
import { InputError } from "../core/errors.js";
import { streamTask, taskConfig, taskSummary, writeTask } from "../data/task-stage.js";
import { cliContext } from "./context.js";
import type { Command } from "./command.js";

export const taskCommand: Command = {
  name: "task",
  summary: "generate built-in multi-step arithmetic word problems (GSM8K format)",
  usage:
    "stepwise task [--preset easy|medium|hard|easy+medium] [--steps 2-5] [--n 1000] [--seed 1] [--split train|test] [--out FILE]",
  help: [
    'Each record: {"id", "question", "answer", "final", "steps", "split", "scenario", "ops", "level"?}; the answer has one',
    'line a step with a <<expr=value>> annotation and ends with "#### n". Train and test never share a problem.',
    "options:",
    "  --preset P      easy (2-3 steps, + -, values <= 100), medium (default: 2-4 steps, + - * /, <= 1000),",
    '                  hard (3-6 steps, + - * / mod, <= 10000); several joined by "+" (easy+medium) mix them in',
    '                  equal shares, interleaved, each problem labelled with its "level"; the options below',
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
    '  --compound P    probability that an add/subtract step first multiplies two numbers ("3 packs of 12")',
    '  --noise K:R[:keep]  flawed solutions for SFT data (questions and the "final" field stay true): K',
    "                  borrow (a subtraction needing a borrow forgets it, rate R per such line) or slip (one line",
    "                  off by 1-9, rate R per solution); later lines are recomputed from the wrong value, or with",
    "                  :keep use the right one (the final answer stays right). A changed record keeps its",
    '                  original as "clean_answer". Sample and evaluate on files made without --noise',
    '  --json          print a JSON summary {"n", "split", "seed", "out", "config"} on stdout',
  ].join("\n"),
  async run(values) {
    const c = taskConfig(values, asFlags);
    const out = values.out === undefined ? undefined : String(values.out);
    if (values.json && !out) throw new InputError("--json needs --out (stdout carries the problems otherwise)");
    if (out) await writeTask(c, out, cliContext());
    else streamTask(c, (line) => process.stdout.write(line), cliContext());
    if (values.json) console.log(JSON.stringify(taskSummary(c, out ?? null)));
    return 0;
  },
};
