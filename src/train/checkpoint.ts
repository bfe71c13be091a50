// Training checkpoints: the trainable weights, AdamW's moments and the loop state, written atomically into
// DIR/checkpoints/step-NNNNNNN/ (a temp folder renamed into place), the last N kept. Resuming from one continues
// bit-identically: the data order is a function of (seed, epoch) and every saved tensor is exact f32/f64.

import { writeJsonAtomic } from "../core/atomic.js";
import fs from "node:fs";
import path from "node:path";
import { InputError, NonFiniteError } from "../core/errors.js";
import type { AdamW } from "../engine/optim.js";
import type { Tensor } from "../engine/tensor.js";
import { Checkpoint, readHeader, writeSafetensors, type StDType, type TensorToWrite } from "../model/safetensors.js";
import type { LoopState } from "./loop.js";

export const CHECKPOINT_FORMAT = 1;

export interface TrainerState extends LoopState {
  format: number;
  kind: string; // "sft" | "dpo"
  configHash: string; // a resume refuses a checkpoint written under another config
  adamStep: number;
  rng?: number[]; // extra random state to restore (LoRA dropout), when the run has one
}

const stepDir = (root: string, step: number) => path.join(root, "checkpoints", `step-${String(step).padStart(7, "0")}`);

function toWrite(name: string, t: Tensor): TensorToWrite {
  const dtype: StDType = t.dtype === "f64" ? "F64" : "F32";
  return { name, shape: t.shape, dtype, data: () => t.toArray() as Float32Array | Float64Array };
}

/** The first tensor of `tensors` holding NaN or Inf, with the count and the first index; null when all are finite. */
export function firstNonFinite(
  tensors: Iterable<[string, Tensor]>,
): { name: string; count: number; index: number } | null {
  for (const [name, t] of tensors) {
    const a = t.toArray();
    let count = 0;
    let index = -1;
    for (let i = 0; i < a.length; i++) {
      if (!Number.isFinite(a[i])) {
        if (count++ === 0) index = i;
      }
    }
    if (count > 0) return { name, count, index };
  }
  return null;
}

/**
 * Saves a checkpoint of `params` (by name) and the optimizer, then prunes all but the newest `keep`. Weights or
 * moments holding NaN/Inf are never written: a NonFiniteError naming the tensor, with the folder untouched.
 */
export function saveCheckpoint(
  root: string,
  params: Map<string, Tensor>,
  opt: AdamW,
  state: TrainerState,
  keep: number,
): string {
  const index0 = new Map(opt.params.map((p, i) => [p, i]));
  const moment = (n: string, t: Tensor): [string, Tensor][] => {
    const i = index0.get(t);
    return i === undefined
      ? []
      : [
          [`m.${n}`, opt.m[i]],
          [`v.${n}`, opt.v[i]],
        ];
  };
  const bad = firstNonFinite([...params].flatMap(([n, t]) => [[n, t] as [string, Tensor], ...moment(n, t)]));
  if (bad) {
    throw new NonFiniteError(
      state.step,
      `non-finite weights (${bad.count} NaN/Inf values in "${bad.name}", the first at index ${bad.index})`,
      "nothing was written for this step",
    );
  }
  const final = stepDir(root, state.step);
  const tmp = `${final}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  const names = [...params.keys()];
  writeSafetensors(
    path.join(tmp, "weights.safetensors"),
    names.map((n) => toWrite(n, params.get(n)!)),
  );
  const index = new Map(opt.params.map((p, i) => [p, i]));
  const moments: TensorToWrite[] = [];
  for (const n of names) {
    const i = index.get(params.get(n)!);
    if (i === undefined) continue;
    moments.push(toWrite(`m.${n}`, opt.m[i]), toWrite(`v.${n}`, opt.v[i]));
  }
  writeSafetensors(path.join(tmp, "optimizer.safetensors"), moments);
  writeJsonAtomic(path.join(tmp, "trainer_state.json"), state);
  fs.rmSync(final, { recursive: true, force: true });
  fs.renameSync(tmp, final);
  prune(root, keep);
  return final;
}

function listCheckpoints(root: string): { step: number; dir: string }[] {
  const dir = path.join(root, "checkpoints");
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .map((name) => /^step-(\d{7})$/.exec(name))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ step: Number(m[1]), dir: path.join(dir, m[0]) }))
    .filter((c) => fs.existsSync(path.join(c.dir, "trainer_state.json")))
    .sort((a, b) => a.step - b.step);
}

function prune(root: string, keep: number): void {
  const all = listCheckpoints(root);
  for (const c of all.slice(0, Math.max(0, all.length - keep))) fs.rmSync(c.dir, { recursive: true, force: true });
  const dir = path.join(root, "checkpoints");
  for (const name of fs.readdirSync(dir)) {
    if (name.includes(".tmp-")) fs.rmSync(path.join(dir, name), { recursive: true, force: true }); // a killed save
  }
}

/** Why a checkpoint folder cannot be resumed from (a file cut short, unreadable state), or null when it is whole. */
export function checkpointDamage(dir: string): string | null {
  try {
    const state = JSON.parse(fs.readFileSync(path.join(dir, "trainer_state.json"), "utf8")) as Partial<TrainerState>;
    if (typeof state.step !== "number") return "trainer_state.json has no step";
    readHeader(path.join(dir, "weights.safetensors")); // checks every tensor's bytes lie inside the file
    readHeader(path.join(dir, "optimizer.safetensors"));
    return null;
  } catch (e) {
    return (e as Error).message.split("\n")[0]; // without the hint
  }
}

/**
 * The newest checkpoint that is whole, or null. A damaged newer one (cut short by a full disk, a copy, an edit)
 * is renamed aside to step-N.damaged (kept, never read again) and `warn` says which one the run resumes from.
 */
export function intactCheckpoint(root: string, warn: (m: string) => void): string | null {
  const all = listCheckpoints(root).reverse();
  const damaged: string[] = [];
  for (const c of all) {
    const why = checkpointDamage(c.dir);
    if (why === null) {
      if (damaged.length > 0) warn(`resuming from the newest intact checkpoint instead: ${c.dir} (step ${c.step})`);
      return c.dir;
    }
    let aside = `${c.dir}.damaged`;
    for (let i = 2; fs.existsSync(aside); i++) aside = `${c.dir}.damaged-${i}`;
    fs.renameSync(c.dir, aside);
    damaged.push(aside);
    warn(`checkpoint ${c.dir} is damaged (${why}); moved aside to ${aside}`);
  }
  if (damaged.length > 0)
    warn(`no intact checkpoint is left in ${path.join(root, "checkpoints")}: training starts over from step 0`);
  return null;
}

/** The newest complete checkpoint's folder, or null. */
export function latestCheckpoint(root: string): string | null {
  return listCheckpoints(root).at(-1)?.dir ?? null;
}

/** Restores weights and optimizer moments in place and returns the saved state. */
export function loadCheckpoint(
  dir: string,
  params: Map<string, Tensor>,
  opt: AdamW,
  expect: { kind: string; configHash: string },
): TrainerState {
  const statePath = path.join(dir, "trainer_state.json");
  const state = JSON.parse(fs.readFileSync(statePath, "utf8")) as TrainerState;
  if (state.format !== CHECKPOINT_FORMAT) {
    throw new InputError(`checkpoint format ${state.format}, this stepwise reads ${CHECKPOINT_FORMAT}`, statePath);
  }
  if (state.kind !== expect.kind || state.configHash !== expect.configHash) {
    throw new InputError(
      `checkpoint was written by a ${state.kind} run with another configuration`,
      statePath,
      "resume with the same options, or start a fresh output folder",
    );
  }
  const weights = Checkpoint.open(path.join(dir, "weights.safetensors"));
  const moments = Checkpoint.open(path.join(dir, "optimizer.safetensors"));
  try {
    const index = new Map(opt.params.map((p, i) => [p, i]));
    for (const [name, t] of params) {
      restore(weights, name, t);
      const i = index.get(t);
      if (i !== undefined) {
        restore(moments, `m.${name}`, opt.m[i]);
        restore(moments, `v.${name}`, opt.v[i]);
      }
    }
  } finally {
    weights.close();
    moments.close();
  }
  opt.stepCount = state.adamStep;
  return state;
}

function restore(ck: Checkpoint, name: string, t: Tensor): void {
  const host = ck.read(name, t.dtype === "f64" ? "f64" : "f32", t.shape);
  t.backend.write(t.buf, host);
}
