// The TensorBoard writer against the tensorboard package: reference/make_tensorboard_fixtures.py wrote event files
// with this writer and read them back (record CRCs checked, a resumed run's SessionLog START applied) into read.json.
// Here the writer must still write those bytes, and what TensorBoard read must be what was written.
// Also: a training run with reportTo tensorboard writes runs/ and HF's trainer_state.json with log_history.

import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { backward } from "../engine/autograd.js";
import { mul, scale, sumAll } from "../engine/ops.js";
import { tensor } from "../engine/tensor.js";
import { logHistory } from "./hf-state.js";
import type { Objective } from "./loop.js";
import { crc32c, EventWriter, maskedCrc32c, tensorboardTag } from "./tensorboard.js";
import { train } from "./trainer.js";

const FIXTURE = path.join(path.dirname(fileURLToPath(import.meta.url)), "../../src/train/fixtures/tensorboard");

/** The same events as reference/tensorboard_events.mjs. */
function writeFixtureEvents(dir: string): void {
  let t = 1700000000.25;
  const clock = () => (t += 0.5);
  const first = new EventWriter(dir, clock, "events.out.tfevents.1700000000.fixture.1");
  for (let step = 1; step <= 4; step++)
    first.scalars({
      step,
      loss: 1 / step,
      "rewards/chosen": -0.1 * step,
      learning_rate: 1e-5 * step,
      eval_loss: 2 / step,
    });
  first.close();
  const resumed = new EventWriter(dir, clock, "events.out.tfevents.1700000100.fixture.2");
  resumed.sessionStart(3);
  for (let step = 3; step <= 4; step++)
    resumed.scalars({ step, loss: 10 + step, "rewards/chosen": 0.5 * step, learning_rate: 3e-5, eval_loss: 20 + step });
  resumed.close();
}

interface Read {
  files: Record<
    string,
    { wall_time: number; step: number; file_version?: string; session_log?: number; values?: [string, number][] }[]
  >;
  corrupted_copy: string;
  accumulator: Record<string, [number, number][]>;
}

test("CRC-32C and its mask: the standard check value", () => {
  assert.equal(crc32c(Buffer.from("123456789")), 0xe3069283);
  assert.equal(maskedCrc32c(Buffer.alloc(0)), 0xa282ead8); // crc 0 rotated is 0, plus the constant
});

test("event files: the bytes the tensorboard package read, with the values, tags, steps and times written", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stepwise-tb-"));
  try {
    writeFixtureEvents(dir);
    const read = JSON.parse(fs.readFileSync(path.join(FIXTURE, "read.json"), "utf8")) as Read;
    const names = fs.readdirSync(dir).sort();
    assert.deepEqual(names, Object.keys(read.files).sort());
    for (const n of names) {
      const ours = fs.readFileSync(path.join(dir, n));
      assert.ok(ours.equals(fs.readFileSync(path.join(FIXTURE, n))), `${n}: bytes differ from the fixture`);
    }
    const [a, b] = names.map((n) => read.files[n]);
    assert.deepEqual(a[0], { wall_time: 1700000000.75, step: 0, file_version: "brain.Event:2" });
    assert.deepEqual(b[1], { wall_time: 1700000003.75, step: 3, session_log: 1 }); // SessionLog START
    const step2 = a.find((e) => e.step === 2)!;
    assert.deepEqual(step2.values, [
      ["train/loss", Math.fround(0.5)],
      ["train/rewards/chosen", Math.fround(-0.2)],
      ["train/learning_rate", Math.fround(2e-5)],
      ["eval/loss", Math.fround(1)],
    ]);
    assert.match(read.corrupted_copy, /DataLossError.*crc32/); // TensorBoard checks the CRCs we write
    // The resumed run replaces steps 3 and 4 in what TensorBoard shows.
    assert.deepEqual(read.accumulator["train/loss"], [
      [1, 1],
      [2, 0.5],
      [3, 13],
      [4, 14],
    ]);
    assert.equal(tensorboardTag("eval_rewards/margins"), "eval/rewards/margins");
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("a run with reportTo tensorboard writes runs/ events; trainer_state.json holds HF's log_history", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stepwise-tb-run-"));
  try {
    {
      const w = tensor([1, 2], [2]).keep();
      w.requiresGrad = true;
      const objective: Objective<number> = {
        run(xs, _i, weight) {
          const loss = scale(sumAll(mul(w, tensor([xs[0], xs[1] ?? 0], [2]))), weight);
          backward(loss);
          return { loss: loss.item(), tokens: 3 * xs.length, sums: {} };
        },
        evaluate: (xs, _i, weight) => ({ loss: xs.length * weight, tokens: 0, sums: {} }),
      };
      const loop = { epochs: 1, maxSteps: null, batchSize: 2, gradAccum: 1, lr: 0.01, schedule: "constant" as const };
      await train({
        outDir: dir,
        kind: "sft",
        items: [1, 2, 3, 4, 5, 6],
        params: new Map([["w", w]]),
        objective,
        loop: { ...loop, warmupRatio: 0, weightDecay: 0, maxGradNorm: 1, seed: 0 },
        saveEvery: 0,
        keepLast: 1,
        resume: false,
        config: {},
        evaluation: { items: [1, 2], objective, every: 2, batchSize: 2 },
        reportTo: ["tensorboard"],
      });
      w.dispose();
    }
    const events = fs.readdirSync(path.join(dir, "runs"));
    assert.equal(events.length, 1);
    assert.match(events[0], /^events\.out\.tfevents\.\d{10}\./);
    const state = JSON.parse(fs.readFileSync(path.join(dir, "trainer_state.json"), "utf8"));
    assert.equal(state.global_step, 3);
    assert.equal(state.max_steps, 3);
    assert.equal(state.num_input_tokens_seen, 18);
    // steps 1, 2 (+ its eval entry), 3 (+ the final eval entry)
    assert.deepEqual(
      state.log_history.map((e: Record<string, number>) => [e.step, "eval_loss" in e, "loss" in e]),
      [
        [1, false, true],
        [2, false, true],
        [2, true, false],
        [3, false, true],
        [3, true, false],
      ],
    );
    assert.equal(state.log_history[1].num_tokens, 12);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("logHistory splits a record into HF's train entry and eval entry (each with epoch and step)", () => {
  assert.deepEqual(logHistory([{ step: 2, epoch: 0.5, loss: 1, eval_loss: 3, "eval_rewards/chosen": 0.1 }]), [
    { step: 2, epoch: 0.5, loss: 1 },
    { eval_loss: 3, "eval_rewards/chosen": 0.1, epoch: 0.5, step: 2 },
  ]);
});
