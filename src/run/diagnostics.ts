// Diagnostics of a run's preference data, per seed (round 1): what a user needs to tell why a variant did or did not
// gain. Read from the files the stages wrote, never recomputed by a model:
// - headroom: on the problems the SFT model sampled, the share of samples that are correct, the share of problems
//   with at least one correct sample (pass@n), and the greedy solution's accuracy (with sample.greedy); pass@n
//   well above greedy means the model can already solve what it gets wrong, which preference training can use;
// - a pair audit per pair set: pairs, problems with pairs, the share of chosen sides whose every step checks (a
//   chosen side that reaches the answer through a wrong step teaches that step), the share of rejected sides cut
//   short (no EOS), the mean rejected length in steps, and pairs per level of a mixed task;
// - with task.noise borrow: how often each model's held-out solutions still forget the borrow (the misconception
//   the SFT data taught), and how often they get such a subtraction wrong some other way.

import fs from "node:fs";
import path from "node:path";
import { countBorrows } from "../data/noise.js";
import { checkStep } from "../verify/calculator.js";
import { splitSteps } from "../verify/steps.js";

export interface Headroom {
  problems: number;
  samples: number;
  sample_accuracy: number; // correct samples / samples (undecided count as wrong)
  pass_at_n: number; // problems with a correct sample / problems
  greedy_accuracy: number | null; // the greedy solutions (sample.greedy), null without them
}

export interface PairAudit {
  name: string; // the pair set (its file name in pairs/)
  pairs: number;
  problems: number; // problems with at least one pair
  chosen_sound: number; // share of chosen sides in which the calculator finds no wrong step
  rejected_cut: number; // share of rejected sides without EOS
  rejected_steps: number; // mean steps of a rejected side
  by_level?: Record<string, number>; // pairs per level of a mixed task
}

/** With task.noise borrow: how often a model's held-out solutions still forget the borrow. */
export interface Misconception {
  name: string; // the evaluated model (sft or a variant)
  borrow_steps: number; // subtractions that need a borrow in its greedy solutions
  forgot: number; // share of them written as a - b + 10 (the SFT data's misconception)
  other_wrong: number; // share written wrong some other way
}

export interface SeedDiagnostics {
  seed: number;
  headroom: Headroom | null;
  pairs: PairAudit[];
  misconception?: Misconception[];
}

type Rec = Record<string, unknown>;

function readLines(file: string): Rec[] {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as Rec);
}

export function headroom(verified: Rec[]): Headroom | null {
  if (verified.length === 0) return null;
  const sampled = verified.filter((r) => r.greedy !== true);
  const greedy = verified.filter((r) => r.greedy === true);
  const solved = new Set(sampled.filter((r) => r.correct === true).map((r) => String(r.id)));
  const problems = new Set(sampled.map((r) => String(r.id))).size;
  return {
    problems,
    samples: sampled.length,
    sample_accuracy: sampled.filter((r) => r.correct === true).length / Math.max(1, sampled.length),
    pass_at_n: solved.size / Math.max(1, problems),
    greedy_accuracy: greedy.length === 0 ? null : greedy.filter((r) => r.correct === true).length / greedy.length,
  };
}

/** The calculator finds no wrong step in the text (the final "####" line holds nothing it checks). */
function stepSound(text: string): boolean {
  return splitSteps(text).every((s) => checkStep(s.text).ok !== false);
}

export function auditPairs(name: string, pairs: Rec[], levels: Map<string, string>): PairAudit {
  const n = Math.max(1, pairs.length);
  const byLevel: Record<string, number> = {};
  for (const p of pairs) {
    const level = levels.get(String(p.id));
    if (level !== undefined) byLevel[level] = (byLevel[level] ?? 0) + 1;
  }
  return {
    name,
    pairs: pairs.length,
    problems: new Set(pairs.map((p) => String(p.id))).size,
    chosen_sound: pairs.filter((p) => stepSound(String(p.chosen))).length / n,
    rejected_cut: pairs.filter((p) => p.kind === "stepdpo" || p.rejected_eos === false).length / n,
    rejected_steps: pairs.reduce((a, p) => a + splitSteps(String(p.rejected)).length, 0) / n,
    ...(Object.keys(byLevel).length > 0 ? { by_level: byLevel } : {}),
  };
}

export function misconception(name: string, evalRecords: Rec[]): Misconception {
  const c = { steps: 0, forgot: 0, other: 0 };
  for (const r of evalRecords) if (typeof r.completion === "string") countBorrows(r.completion, c);
  const n = Math.max(1, c.steps);
  return { name, borrow_steps: c.steps, forgot: c.forgot / n, other_wrong: c.other / n };
}

/** Every seed's diagnostics from a run directory (round 1); `borrow` adds the misconception table. */
export function diagnose(runDir: string, seeds: number, borrow = false): SeedDiagnostics[] {
  const levels = new Map(
    readLines(path.join(runDir, "data", "sample.jsonl"))
      .filter((p) => typeof p.level === "string")
      .map((p) => [String(p.id), String(p.level)]),
  );
  const out: SeedDiagnostics[] = [];
  for (let seed = 1; seed <= seeds; seed++) {
    const dir = path.join(runDir, `seed-${seed}`);
    if (!fs.existsSync(dir)) continue;
    const pairDir = path.join(dir, "pairs");
    const files = fs.existsSync(pairDir)
      ? fs
          .readdirSync(pairDir)
          .filter((f) => f.endsWith(".jsonl") && !f.startsWith("variant-"))
          .sort()
      : [];
    const evalDir = path.join(dir, "eval");
    const evals =
      borrow && fs.existsSync(evalDir)
        ? fs
            .readdirSync(evalDir)
            .filter((f) => f.endsWith(".jsonl"))
            .sort()
        : [];
    out.push({
      seed,
      headroom: headroom(readLines(path.join(dir, "verified.jsonl"))),
      pairs: files.map((f) => auditPairs(f.slice(0, -".jsonl".length), readLines(path.join(pairDir, f)), levels)),
      ...(borrow
        ? {
            misconception: evals.map((f) =>
              misconception(f.slice(0, -".jsonl".length), readLines(path.join(evalDir, f))),
            ),
          }
        : {}),
    });
  }
  return out;
}

const pct = (x: number | null) => (x === null ? "-" : (100 * x).toFixed(1));

/** The diagnostics as HTML tables (every value is a number or a file name made by the run). */
export function diagnosticsHtml(ds: SeedDiagnostics[]): string {
  if (ds.length === 0) return "";
  const head = `<table id="headroom"><thead><tr><th>seed</th><th>problems</th><th>samples</th><th>sample accuracy %</th><th>pass@n %</th><th>greedy %</th></tr></thead><tbody>
${ds
  .filter((d) => d.headroom)
  .map((d) => {
    const h = d.headroom!;
    return `<tr><td>${d.seed}</td><td>${h.problems}</td><td>${h.samples}</td><td>${pct(h.sample_accuracy)}</td><td>${pct(h.pass_at_n)}</td><td>${pct(h.greedy_accuracy)}</td></tr>`;
  })
  .join("\n")}
</tbody></table>`;
  const audit = `<table id="pair-audit"><thead><tr><th>seed</th><th>pair set</th><th>pairs</th><th>problems</th><th>chosen step-sound %</th><th>rejected cut %</th><th>rejected steps</th><th>by level</th></tr></thead><tbody>
${ds
  .flatMap((d) =>
    d.pairs.map(
      (p) =>
        `<tr><td>${d.seed}</td><td>${p.name.replace(/[<>&"]/g, "")}</td><td>${p.pairs}</td><td>${p.problems}</td><td>${pct(p.chosen_sound)}</td><td>${pct(p.rejected_cut)}</td><td>${p.rejected_steps.toFixed(2)}</td><td>${Object.entries(
          p.by_level ?? {},
        )
          .map(([k, v]) => `${k.replace(/[<>&"]/g, "")} ${v}`)
          .join(", ")}</td></tr>`,
    ),
  )
  .join("\n")}
</tbody></table>`;
  const mis = ds.some((d) => d.misconception)
    ? `<h2>The SFT data's misconception on held-out problems</h2>
<p>Subtractions that need a borrow in each model's greedy solutions: the share written as a - b + 10 (what the noisy SFT data taught) and the share wrong in another way.</p>
<table id="misconception"><thead><tr><th>seed</th><th>model</th><th>borrow steps</th><th>forgot the borrow %</th><th>other wrong %</th></tr></thead><tbody>
${ds.flatMap((d) => (d.misconception ?? []).map((m) => `<tr><td>${d.seed}</td><td>${m.name.replace(/[<>&"]/g, "")}</td><td>${m.borrow_steps}</td><td>${pct(m.forgot)}</td><td>${pct(m.other_wrong)}</td></tr>`)).join("\n")}
</tbody></table>`
    : "";
  return `${mis}
<h2>Headroom of the sampling policy</h2>
<p>On the problems it sampled: the share of correct samples, of problems with at least one correct sample, and of correct greedy solutions (with sample.greedy).</p>
${head}
<h2>Pair audit</h2>
${audit}`;
}
