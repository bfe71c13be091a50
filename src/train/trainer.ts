// Runs a training loop inside an output folder: metrics.jsonl (TRL names, one line per optimizer step), HF's
// trainer_state.json (log_history) at every checkpoint and at the end, TensorBoard event files under runs/ when asked,
// checkpoints every N steps and at the end, and --resume from the newest checkpoint.

import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { NonFiniteError } from "../core/errors.js";
import { AdamW } from "../engine/optim.js";
import { tidy, type Tensor } from "../engine/tensor.js";
import {
  CHECKPOINT_FORMAT,
  intactCheckpoint,
  latestCheckpoint,
  loadCheckpoint,
  saveCheckpoint,
  type TrainerState,
} from "./checkpoint.js";
import {
  evaluateAll,
  runLoopAsync,
  totalSteps,
  type LoopConfig,
  type LoopState,
  type Objective,
  type StepRecord,
} from "./loop.js";
import { readRecords, writeHfState } from "./hf-state.js";
import { METRICS } from "./metrics.js";
import { EventWriter } from "./tensorboard.js";

/** Where metrics go besides metrics.jsonl and trainer_state.json (TRL's report_to). */
export type ReportTo = "tensorboard";
export const REPORT_TO: readonly ReportTo[] = ["tensorboard"];

export interface TrainRun<T> {
  outDir: string;
  kind: "sft" | "dpo";
  items: T[];
  params: Map<string, Tensor>; // trainable parameters by name
  objective: Objective<T>;
  loop: LoopConfig;
  saveEvery: number; // optimizer steps between checkpoints (0: only at the end)
  keepLast: number; // checkpoints kept
  resume: boolean;
  config: unknown; // the resolved configuration; its hash guards resumes
  /** Held-out data scored without gradients every `every` steps and at the end ("eval_..." metrics). */
  evaluation?: { items: T[]; objective: Objective<T>; every: number; batchSize: number };
  /** Once, before the first step: the state it starts from (after a resume, the checkpoint's) and the total. */
  onStart?(state: LoopState, total: number): void;
  onStep?(record: StepRecord, state: LoopState, total: number): void;
  warn?(message: string): void;
  /** Random state beyond the data order (LoRA dropout): saved in checkpoints and restored on resume. */
  rng?: { get(): Uint32Array; set(state: Uint32Array): void };
  shouldStop?(): boolean;
  /** Also log every step there (tensorboard: <outDir>/runs/events.out.tfevents.*). Not part of the config hash. */
  reportTo?: readonly ReportTo[];
}

export interface TrainResult {
  state: LoopState;
  total: number;
  resumedFrom: number | null;
  last: StepRecord | null;
  /** shouldStop ended the run before `total` steps (a checkpoint of the last finished step was saved). */
  stopped: boolean;
  /** The newest checkpoint written, or null when none was. */
  checkpoint: string | null;
}

const stderrWarn = (m: string) => process.stderr.write(`stepwise: ${m}\n`);

export function hashConfig(config: unknown): string {
  return crypto.createHash("sha256").update(JSON.stringify(config)).digest("hex").slice(0, 16);
}

/** Keeps the lines of metrics.jsonl up to `step` (a resumed run rewrites what came after its checkpoint). */
function truncateMetrics(file: string, step: number): void {
  const kept = readRecords(file).filter((r) => r[METRICS.step] <= step); // a line cut by a kill is dropped
  fs.writeFileSync(file, kept.map((r) => JSON.stringify(r) + "\n").join(""));
}

/** The TensorBoard writer of a run (null unless asked); a fresh start removes the event files of an earlier one. */
function openEvents(run: { outDir: string; reportTo?: readonly ReportTo[] }, resumedFrom: number | null) {
  const dir = path.join(run.outDir, "runs");
  if (resumedFrom === null && fs.existsSync(dir))
    for (const f of fs.readdirSync(dir)) if (f.startsWith("events.out.tfevents.")) fs.rmSync(path.join(dir, f));
  if (!run.reportTo?.includes("tensorboard")) return null;
  const w = new EventWriter(dir);
  if (resumedFrom !== null) w.sessionStart(resumedFrom + 1);
  return w;
}

/** What a failed run leaves, said plainly: the newest checkpoint (every saved one is finite) or that none exists. */
function whatExists(outDir: string): string {
  const latest = latestCheckpoint(outDir);
  if (!latest) return `no checkpoint exists in ${outDir}: nothing of this run was saved`;
  const step = (JSON.parse(fs.readFileSync(path.join(latest, "trainer_state.json"), "utf8")) as TrainerState).step;
  return (
    `the newest checkpoint, ${latest} (step ${step}), holds finite weights from before the failure; ` +
    "resuming it with the same options would fail the same way, so start over with changed options"
  );
}

/**
 * Trains `run.items` from scratch or from the newest checkpoint. Async only so that the event loop gets a turn
 * between optimizer steps (a Ctrl-C handler can then ask shouldStop to end the run); the steps are the same.
 */
export async function train<T>(run: TrainRun<T>): Promise<TrainResult> {
  fs.mkdirSync(run.outDir, { recursive: true });
  const metricsFile = path.join(run.outDir, "metrics.jsonl");
  const configHash = hashConfig({ kind: run.kind, config: run.config });
  const params = [...run.params.values()];
  const opt = new AdamW(params, { lr: run.loop.lr, weightDecay: run.loop.weightDecay, noDecay: (p) => p.rank === 1 });
  let state: LoopState = { step: 0, epoch: 0, cursor: 0, tokens: 0 };
  let resumedFrom: number | null = null;
  let checkpoint: string | null = null;
  let events: EventWriter | null = null;
  const hfState = (s: LoopState, total: number) =>
    writeHfState(run.outDir, {
      globalStep: s.step,
      maxSteps: total,
      epochs: run.loop.epochs,
      batchSize: run.loop.batchSize,
      saveSteps: run.saveEvery,
      evalSteps: run.evaluation && run.evaluation.items.length > 0 ? run.evaluation.every : null,
      tokens: s.tokens,
    });
  const save = (s: LoopState, total: number) => {
    const full: TrainerState = {
      ...s,
      format: CHECKPOINT_FORMAT,
      kind: run.kind,
      configHash,
      adamStep: opt.stepCount,
      ...(run.rng ? { rng: Array.from(run.rng.get()) } : {}),
    };
    checkpoint = saveCheckpoint(run.outDir, run.params, opt, full, run.keepLast);
    hfState(s, total);
  };
  try {
    const latest = run.resume ? intactCheckpoint(run.outDir, (m) => (run.warn ?? stderrWarn)(m)) : null;
    if (latest) {
      const s = loadCheckpoint(latest, run.params, opt, { kind: run.kind, configHash });
      state = { step: s.step, epoch: s.epoch, cursor: s.cursor, tokens: s.tokens };
      if (run.rng && s.rng) run.rng.set(Uint32Array.from(s.rng));
      resumedFrom = s.step;
      truncateMetrics(metricsFile, s.step);
    } else {
      fs.writeFileSync(metricsFile, "");
    }
    const total = totalSteps(run.items.length, run.loop);
    events = openEvents(run, resumedFrom);
    let last: StepRecord | null = null;
    let atLn2 = 0;
    run.onStart?.(state, total);
    state = await runLoopAsync(run.items, params, opt, run.loop, run.objective, tidy, state, {
      shouldStop: run.shouldStop,
      onStep(stepRecord, s) {
        const ev = run.evaluation;
        const due = ev && ev.items.length > 0 && ((ev.every > 0 && s.step % ev.every === 0) || s.step === total);
        const record = due ? { ...stepRecord, ...evaluateAll(ev.items, ev.objective, ev.batchSize, tidy) } : stepRecord;
        last = record;
        fs.appendFileSync(metricsFile, JSON.stringify(record) + "\n");
        events?.scalars(record);
        if (run.saveEvery > 0 && s.step % run.saveEvery === 0 && s.step < total) save(s, total);
        // The classic bug: reference log-probs taken from the policy itself keep the sigmoid loss at ln 2.
        atLn2 = run.kind === "dpo" && Math.abs(record[METRICS.loss] - Math.LN2) < 1e-6 ? atLn2 + 1 : 0;
        if (atLn2 === 20) {
          run.warn?.(
            "the DPO loss has sat at ln 2 for 20 steps: policy and reference log-probs are identical. " +
              "Is the reference computed from the policy being trained?",
          );
        }
        run.onStep?.(record, s, total);
      },
    });
    const stopped = state.step < total;
    if (state.step > 0 && state.step !== resumedFrom) save(state, total);
    else checkpoint = latestCheckpoint(run.outDir);
    return { state, total, resumedFrom, last, stopped, checkpoint };
  } catch (e) {
    if (e instanceof NonFiniteError)
      throw new NonFiniteError(e.step, e.what, `${e.hint ?? "lower the learning rate"}; ${whatExists(run.outDir)}`);
    throw e;
  } finally {
    events?.close();
    opt.dispose();
  }
}
