// trainer_state.json as the Hugging Face Trainer writes it in its output folder (transformers.TrainerState), so
// tooling that reads an HF run (its log_history above all) reads ours. Only TrainerState's fields: its
// load_from_json passes them all to the dataclass, and an unknown one is an error there. Checkpoints keep their own
// state file (checkpoint.ts); this one is rebuilt from metrics.jsonl, so a resumed run's history is the file's.

import fs from "node:fs";
import path from "node:path";
import { writeJsonAtomic } from "../core/atomic.js";
import { evalBase, METRICS } from "./metrics.js";

export interface HfStateInfo {
  globalStep: number; // optimizer steps done
  maxSteps: number; // steps of the whole run
  epochs: number; // num_train_epochs
  batchSize: number; // train_batch_size (per micro-batch)
  saveSteps: number; // 0: at the end only
  evalSteps: number | null; // null: no evaluation
  tokens: number; // num_input_tokens_seen (TRL's num_tokens)
}

/**
 * HF's log_history from metrics.jsonl records: one entry per step with the training metrics, and after it, for a
 * step that evaluated, one with the eval_ metrics, each with epoch and step (as Trainer.log writes them).
 */
export function logHistory(records: Record<string, number>[]): Record<string, number>[] {
  const out: Record<string, number>[] = [];
  for (const r of records) {
    const train: Record<string, number> = {};
    const ev: Record<string, number> = {};
    for (const [k, v] of Object.entries(r)) (evalBase(k) === null ? train : ev)[k] = v;
    out.push(train);
    if (Object.keys(ev).length > 0)
      out.push({ ...ev, [METRICS.epoch]: r[METRICS.epoch], [METRICS.step]: r[METRICS.step] });
  }
  return out;
}

/** The records of a metrics.jsonl; a line cut by a kill is left out. */
export function readRecords(file: string): Record<string, number>[] {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, "utf8")
    .split("\n")
    .flatMap((line) => {
      try {
        return line.trim() ? [JSON.parse(line) as Record<string, number>] : [];
      } catch {
        return [];
      }
    });
}

/** Writes <outDir>/trainer_state.json (atomically) from <outDir>/metrics.jsonl. */
export function writeHfState(outDir: string, info: HfStateInfo): void {
  const history = logHistory(readRecords(path.join(outDir, "metrics.jsonl")));
  const last = history.at(-1);
  writeJsonAtomic(path.join(outDir, "trainer_state.json"), {
    best_metric: null,
    best_model_checkpoint: null,
    epoch: last?.[METRICS.epoch] ?? 0,
    eval_steps: info.evalSteps,
    global_step: info.globalStep,
    is_hyper_param_search: false,
    is_local_process_zero: true,
    is_world_process_zero: true,
    log_history: history,
    logging_steps: 1,
    max_steps: info.maxSteps,
    num_input_tokens_seen: info.tokens,
    num_train_epochs: info.epochs,
    save_steps: info.saveSteps,
    total_flos: 0,
    train_batch_size: info.batchSize,
    trial_name: null,
    trial_params: null,
  });
}
