// Credit-assignment examples for the run report: a held-out reference solution with one step's result corrupted,
// and the same solution intact, scored with the first trained variant that used Step-DPO pairs (else the first
// trained variant) against its SFT reference, as heatmaps (the SCDPO and Step-DPO papers' figures).

import fs from "node:fs";
import path from "node:path";
import { promptText } from "../data/format.js";
import { corruptSolution } from "../inspect/corrupt.js";
import { scoreCredits } from "../inspect/credit.js";
import { creditHtml, escapeHtml } from "../inspect/render.js";
import { loadModel, loadModelTokenizer } from "../model/hub.js";
import type { RunConfig } from "./config.js";

const EXAMPLES = 2;

export async function creditExamples(dir: string, config: RunConfig): Promise<{ title: string; html: string }[]> {
  const trained = config.variants.filter((v) => fs.existsSync(path.join(dir, "seed-1", v.name, "config.json")));
  const variant = trained.find((v) => v.pairs.includes("stepdpo")) ?? trained[0];
  const refDir = path.join(dir, "seed-1", "sft");
  const testFile = path.join(dir, "data", "test.jsonl");
  if (!variant || !fs.existsSync(path.join(refDir, "config.json")) || !fs.existsSync(testFile)) return [];
  const policyDir = path.join(dir, "seed-1", variant.name);
  const problems = fs
    .readFileSync(testFile, "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .slice(0, 50)
    .map((l) => JSON.parse(l) as { id: string; question: string; answer: string });
  const texts: { prompt: string; completion: string; title: string }[] = [];
  for (const p of problems) {
    const c = corruptSolution(p.answer, texts.length + 1, "recompute"); // later steps follow the wrong value: one error
    if (!c || c.steps < 3) continue;
    const prompt = promptText(p.question, "plain");
    texts.push({
      prompt,
      completion: c.text,
      title: `${p.id}: step ${c.step + 1} corrupted (${c.original} -> ${c.corrupted})`,
    });
    texts.push({ prompt, completion: p.answer, title: `${p.id}: the reference solution` });
    if (texts.length >= 2 * EXAMPLES) break;
  }
  if (texts.length === 0) return [];
  const policy = loadModel(policyDir);
  const ref = loadModel(refDir);
  try {
    const tokenizer = loadModelTokenizer(policyDir);
    const beta = variant.beta ?? config.dpo.beta;
    const credits = scoreCredits(policy, ref, tokenizer, texts, { beta });
    return credits.map((c, i) => ({
      title: `${variant.name} vs sft, ${texts[i].title}`,
      // each heatmap is its own page: embedded as an iframe so its styles stay its own
      html: `<iframe title="${escapeHtml(texts[i].title)}" style="width:100%;height:330px;border:1px solid #eee" srcdoc="${escapeHtml(creditHtml(c, { title: texts[i].title, model: variant.name, ref: "sft" }))}"></iframe>`,
    }));
  } finally {
    policy.dispose();
    ref.dispose();
  }
}
