// SFT packing and length-bucketed batches (issue #5): packed rows keep every completion token's target exactly
// once and never target a prompt token; packed loss equals unpacked loss wherever attention cannot cross examples;
// bucketed order is a seeded permutation with less padding; resume with --pack and --bucket is bit-identical.

import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { referenceBackend, withBackend } from "../backend/index.js";
import { Rng } from "../core/rng.js";
import { zeroGrad } from "../engine/optim.js";
import { gather } from "../engine/ops.js";
import { tensor, tidy, type Tensor } from "../engine/tensor.js";
import { Llama, type LlamaConfig } from "../model/llama.js";
import {
  collate,
  collatePacked,
  disposeBatch,
  IGNORE,
  packExamples,
  paddingFraction,
  rowLength,
  type Example,
} from "./batch.js";
import { tokenLogps, type CausalLM } from "./logps.js";
import { bucketedOrder, dataOrder, epochOrder, runLoop, type LoopConfig, type Objective } from "./loop.js";
import { packedSftObjective, sftObjective, withReplay } from "./sft.js";
import { train } from "./trainer.js";

const be = referenceBackend();
const CFG: LlamaConfig = {
  vocab_size: 30,
  hidden_size: 8,
  intermediate_size: 12,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  max_position_embeddings: 64,
  tie_word_embeddings: false,
  attention_bias: true,
};
const LOOP: LoopConfig = {
  epochs: 1,
  maxSteps: null,
  batchSize: 4,
  gradAccum: 1,
  lr: 1e-2,
  schedule: "constant",
  warmupRatio: 0,
  weightDecay: 0,
  maxGradNorm: 0,
  seed: 3,
};

/** BOS 1, prompt tokens from 20..29, completion tokens from 3..19 ending with EOS 2: a target's id tells its kind. */
function examples(n: number, seed: number, maxPrompt = 6, maxCompletion = 9): Example[] {
  const rng = new Rng(seed);
  const run = (lo: number, hi: number, from: number, span: number) =>
    Array.from({ length: lo + rng.int(hi - lo + 1) }, () => from + rng.int(span));
  return Array.from({ length: n }, () => ({
    prompt: [1, ...run(0, maxPrompt - 1, 20, 10)],
    completion: [...run(0, maxCompletion - 1, 3, 17), 2],
  }));
}

test("packing: every example in exactly one row, rows within capacity, deterministic", () => {
  const xs = examples(57, 1);
  const rows = packExamples(xs, 24);
  assert.ok(rows.every((r) => rowLength(r) <= 24));
  const seen = rows.flat();
  assert.equal(seen.length, xs.length);
  assert.equal(new Set(seen).size, xs.length, "each example object once");
  assert.deepEqual(packExamples(xs, 24), rows);
  const lower = Math.ceil(xs.reduce((a, e) => a + e.prompt.length + e.completion.length, 0) / 24);
  assert.ok(rows.length <= lower + 2, `${rows.length} rows, at least ${lower} needed`); // first-fit decreasing packs tight
  assert.throws(() => packExamples([{ prompt: [1, 20], completion: [3, 2] }], 3), /more than a packed row's 3/);
});

test("packed targets: each completion token exactly once at its place, no prompt token, no cross-example target", () => {
  const xs = examples(40, 2);
  const rows = packExamples(xs, 30);
  withBackend(be, () => {
    const b = collatePacked(rows, 0);
    const [B, T] = b.ids.shape;
    const ids = b.ids.toArray();
    const targets = b.targets.toArray();
    rows.forEach((row, r) => {
      const expect = new Array<number>(T).fill(IGNORE);
      const input: number[] = [];
      let o = 0;
      for (const e of row) {
        e.completion.forEach((tok, j) => (expect[o + e.prompt.length - 1 + j] = tok));
        input.push(...e.prompt, ...e.completion);
        o += e.prompt.length + e.completion.length;
      }
      assert.deepEqual(Array.from(targets.slice(r * T, (r + 1) * T)), expect, `row ${r} targets`);
      assert.deepEqual(Array.from(ids.slice(r * T, r * T + input.length - 1)), input.slice(0, -1), `row ${r} inputs`);
    });
    const counted = Array.from(targets).filter((t) => t !== IGNORE);
    assert.equal(
      counted.length,
      xs.reduce((a, e) => a + e.completion.length, 0),
    );
    assert.ok(
      counted.every((t) => t < 20),
      "no prompt token (20..29) is a target",
    );
    assert.ok(!counted.includes(1), "no BOS is a target (the EOS before it predicts nothing)");
    assert.equal(b.tokens, counted.length);
    assert.equal(B, rows.length);
    disposeBatch(b);
  });
});

test("collate is unchanged: right-padded rows, prompt masked, the last token left out", () => {
  withBackend(be, () => {
    const b = collate(
      [
        { prompt: [1, 20, 21], completion: [5, 2] },
        { prompt: [1], completion: [7, 8, 2] },
      ],
      0,
    );
    assert.deepEqual(b.ids.shape, [2, 4]);
    assert.deepEqual(Array.from(b.ids.toArray()), [1, 20, 21, 5, 1, 7, 8, 0]);
    assert.deepEqual(Array.from(b.targets.toArray()), [IGNORE, IGNORE, 5, 2, 7, 8, 2, IGNORE]);
    assert.deepEqual(b.lengths, [2, 3]);
    disposeBatch(b);
  });
});

/** A model whose logits at t depend on ids[t] only (a bigram table): no attention, so packing is exact for it. */
function bigram(seed: number): CausalLM & { table: Tensor } {
  const rng = new Rng(seed);
  const table = tensor(
    Array.from({ length: 30 * 30 }, () => rng.normal()),
    [30, 30],
    "f64",
  ).keep();
  table.requiresGrad = true;
  return { table, forward: (ids: Tensor) => gather(table, ids) };
}

test("packed loss and gradients equal unpacked ones for a model that cannot look across examples", () => {
  withBackend(be, () => {
    const xs = examples(24, 3);
    const rows = packExamples(xs, 40);
    const units = xs.reduce((a, e) => a + e.completion.length, 0);
    const m = bigram(4);
    const lossGrad = (run: () => number) => {
      zeroGrad([m.table]);
      const loss = tidy(run);
      return { loss, grad: Array.from(m.table.grad!.toArray()) };
    };
    const plain = lossGrad(() => sftObjective(m, 0).run(xs, [], 1 / units).loss);
    const packed = lossGrad(() => packedSftObjective(m, 0).run(rows, [], 1 / units).loss);
    assert.ok(rows.length < xs.length / 2, `${rows.length} rows`);
    assert.ok(Math.abs(plain.loss - packed.loss) < 1e-12, `${plain.loss} vs ${packed.loss}`);
    const diff = Math.max(...plain.grad.map((g, i) => Math.abs(g - packed.grad[i])));
    assert.ok(diff < 1e-12, `max grad diff ${diff}`);
    assert.equal(
      packedSftObjective(m, 0).unitsOf!(rows[0]),
      rows[0].reduce((a, e) => a + e.completion.length, 0),
    );
    m.table.dispose();
  });
});

test("Llama: the first example of a packed row is exact; later ones see their row (documented, not masked)", () => {
  withBackend(be, () => {
    const m = new Llama(CFG, { seed: 5, dtype: "f64", backend: be });
    const xs = examples(12, 5);
    const rows = packExamples(xs, 40);
    const per = (batch: ReturnType<typeof collate>) => {
      const lp = tidy(() => tokenLogps(m, batch).keep());
      const out = Array.from(lp.toArray());
      lp.dispose();
      return out;
    };
    let firstDiff = 0;
    let laterDiff = 0;
    for (const row of rows) {
      const pb = collatePacked([row], 0);
      const packed = per(pb);
      let o = 0;
      row.forEach((e, k) => {
        const ub = collate([e], 0);
        const alone = per(ub);
        const d = Math.max(
          ...e.completion.map((_, j) => Math.abs(alone[e.prompt.length - 1 + j] - packed[o + e.prompt.length - 1 + j])),
        );
        if (k === 0) firstDiff = Math.max(firstDiff, d);
        else laterDiff = Math.max(laterDiff, d);
        o += e.prompt.length + e.completion.length;
        disposeBatch(ub);
      });
      disposeBatch(pb);
    }
    assert.ok(firstDiff < 1e-12, `first example of a row: max |logp packed - alone| = ${firstDiff}`);
    // Attention crosses examples in a row, so the others' log-probs move: this only pins that it is visible.
    assert.ok(rows.some((r) => r.length > 1) && laterDiff > 1e-9, `later examples: ${laterDiff}`);
    console.log(
      `# packed vs alone, later examples of a row: max |logp diff| = ${laterDiff.toExponential(2)} (random tiny model)`,
    );
    m.dispose();
  });
});

test("bucketed order: a seeded permutation of whole micro-batches with less padding than a plain shuffle", () => {
  const rng = new Rng(9);
  const lengths = Array.from({ length: 1003 }, () => 10 + rng.int(300));
  const order = bucketedOrder(lengths, 7, 0, 8, 50);
  assert.deepEqual(
    [...order].sort((a, b) => a - b),
    lengths.map((_, i) => i),
    "a permutation",
  );
  assert.deepEqual(bucketedOrder(lengths, 7, 0, 8, 50), order, "deterministic");
  assert.notDeepEqual(bucketedOrder(lengths, 8, 0, 8, 50), order, "the seed matters");
  assert.notDeepEqual(bucketedOrder(lengths, 7, 1, 8, 50), order, "so does the epoch");
  const bucketed = paddingFraction(lengths, order, 8);
  const plain = paddingFraction(lengths, epochOrder(lengths.length, 7, 0), 8);
  assert.ok(bucketed < plain / 5, `padding ${bucketed} bucketed vs ${plain} shuffled`);
  // Batches are shuffled, not left in length order: consecutive batches' longest items are not monotone.
  const longest = Array.from({ length: 125 }, (_, i) =>
    Math.max(...order.slice(i * 8, i * 8 + 8).map((j) => lengths[j])),
  );
  assert.ok(longest.some((x, i) => i > 0 && x > longest[i - 1]) && longest.some((x, i) => i > 0 && x < longest[i - 1]));
  // The 3 left over (1003 = 125 * 8 + 3) form the last, short batch.
  assert.equal(order.length - 125 * 8, 3);
});

test("runLoop with bucket reads micro-batches in bucketed order; without it, as before", () => {
  withBackend(be, () => {
    const xs = examples(37, 6);
    const seen: number[][] = [];
    const objective: Objective<Example> = {
      lengthOf: (e) => e.prompt.length + e.completion.length,
      run(_items, indices) {
        seen.push(indices);
        return { loss: 1, tokens: 1, sums: {} };
      },
    };
    const run = (c: LoopConfig) => {
      seen.length = 0;
      const opt = { step() {} } as never; // no parameters: only the data order matters here
      runLoop(xs, [], opt, c, objective, tidy, { step: 0, epoch: 0, cursor: 0, tokens: 0 });
      return seen.flat();
    };
    const c = { ...LOOP, bucket: 2, epochs: 2 };
    assert.deepEqual(run(c), [...dataOrder(xs, c, 0, objective.lengthOf), ...dataOrder(xs, c, 1, objective.lengthOf)]);
    assert.deepEqual(run({ ...LOOP, epochs: 2 }), [...epochOrder(37, LOOP.seed, 0), ...epochOrder(37, LOOP.seed, 1)]);
  });
});

test("resume with --pack and --bucket is bit-identical to an uninterrupted run", async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "stepwise-sft-resume-"));
  try {
    const rows = packExamples(examples(60, 7), 24);
    const loop: LoopConfig = { ...LOOP, epochs: 2, batchSize: 2, gradAccum: 2, bucket: 3, maxGradNorm: 1, seed: 11 };
    const go = async (out: string, resume: boolean, stopAfter: number | null) => {
      const m = new Llama(CFG, { seed: 5 });
      let steps = 0;
      const r = await train<Example[]>({
        outDir: out,
        kind: "sft",
        items: rows,
        params: m.params,
        objective: packedSftObjective(m, 0),
        loop,
        saveEvery: 2,
        keepLast: 2,
        resume,
        config: { loop, pack: true },
        onStep: () => steps++,
        shouldStop: () => stopAfter !== null && steps >= stopAfter,
      });
      const w = Buffer.concat(m.parameters().map((p) => Buffer.from((p.toArray() as Float32Array).buffer)));
      m.dispose();
      return { w, step: r.state.step, total: r.total };
    };
    const whole = await go(path.join(root, "whole"), false, null);
    const cut = path.join(root, "cut");
    const first = await go(cut, false, 3);
    assert.equal(first.step, 3);
    const second = await go(cut, true, 4); // resumes at 3, stops again within the second epoch
    assert.ok(second.step > 3 && second.step < whole.total);
    const end = await go(cut, true, null);
    assert.equal(end.step, whole.total);
    assert.ok(whole.total > Math.ceil(rows.length / 4), "the run crosses an epoch boundary");
    assert.ok(end.w.equals(whole.w), "final weights differ");
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test("SFT replay: one replayed example per item, a seeded permutation; loss adds weight x the mean token loss", () => {
  withBackend(be, () => {
    const xs = examples(10, 4);
    // The main objective's own loss (here none, no gradient) and what it was given, so the replay part stands alone.
    const main: Objective<number> = { run: () => ({ loss: 0, tokens: 0, sums: {} }) };
    const picked: Example[][] = [];
    const recorder: Objective<Example> = {
      run: (items) => {
        picked.push(items);
        return { loss: 0, tokens: 0, sums: {} };
      },
    };
    const withRec = withReplay(main, recorder, xs, { weight: 1, seed: 7 });
    withRec.run([0, 1, 2, 3, 4], [0, 1, 2, 3, 4], 1 / 10);
    withRec.run([5, 6, 7, 8, 9], [5, 6, 7, 8, 9], 1 / 10);
    withRec.run([10], [10], 1 / 10); // item 10 wraps around to the first item's example
    const seen = picked.flat();
    assert.equal(new Set(seen.slice(0, 10)).size, 10, "items 0..9 replay every example once");
    assert.equal(seen[10], seen[0]);
    assert.notDeepEqual(
      seen.slice(0, 10).map((e) => xs.indexOf(e)),
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
      "the order is shuffled",
    );
    picked.length = 0;
    withReplay(main, recorder, xs, { weight: 1, seed: 7 }).run([3], [3], 1);
    assert.equal(picked[0][0], seen[3], "the same seed replays the same example for an item");

    // Two micro-batches of one step (3 + 2 items of 5): the replayed loss is weight x the token-weighted mean of
    // each micro-batch's mean, by its share of the step; replay_loss logs it without the weight.
    const m = bigram(5);
    const sft = sftObjective(m, 0);
    const obj = withReplay(main, sft, xs, { weight: 0.5, seed: 7 });
    const r1 = tidy(() => obj.run([0, 1, 2], [0, 1, 2], 1 / 5));
    const r2 = tidy(() => obj.run([3, 4], [3, 4], 1 / 5));
    const meanOf = (ex: Example[]) => {
      const t = ex.reduce((a, e) => a + e.completion.length, 0);
      return tidy(() => sft.evaluate!(ex, [], 1 / t).loss);
    };
    const ex = seen.slice(0, 5);
    const want = 0.6 * meanOf(ex.slice(0, 3)) + 0.4 * meanOf(ex.slice(3, 5));
    assert.ok(Math.abs(r1.loss + r2.loss - 0.5 * want) < 1e-12, `${r1.loss + r2.loss} vs ${0.5 * want}`);
    const logged = r1.sums.replay_loss + r2.sums.replay_loss;
    assert.ok(Math.abs(logged - want) < 1e-12, `${logged} vs ${want}`);
    assert.ok(m.table.grad && Array.from(m.table.grad.toArray()).some((g) => g !== 0), "the replay has gradients");
    m.table.dispose();
  });
});
