// Generation: the KV cache gives the logits of a full forward (prefill, decode, chunked appends, left padding),
// greedy generation equals a naive greedy loop over full forwards, batching and batch composition change nothing,
// seeds reproduce, stop strings / EOS / step hooks behave as documented, samplers keep what they promise, and no
// buffer leaks. Reference backend in f64 and f32; the native backend too where it is built.

import assert from "node:assert/strict";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import type { Backend, DType } from "../backend/backend.js";
import { nativeBackend, referenceBackend } from "../backend/index.js";
import { Rng } from "../core/rng.js";
import { logSoftmax } from "../engine/ops.js";
import { noGrad, tensor, tidy } from "../engine/tensor.js";
import {
  BatchDecoder,
  Detokenizer,
  Sampler,
  generate,
  selectMass,
  selectTop,
  sequenceSeed,
  type Generation,
} from "./generate.js";
import { KVCache, Llama, type LlamaConfig } from "./llama.js";
import { TextTokenizer, builtinTokenizer } from "./tokenizer.js";

// Vocabulary of the built-in tokenizer; a larger init std than usual makes the next-token distributions peaked.
const CFG: LlamaConfig = {
  vocab_size: 100,
  hidden_size: 32,
  intermediate_size: 48,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-5,
  rope_theta: 1e4,
  max_position_embeddings: 256,
  tie_word_embeddings: false,
  attention_bias: true,
  initializer_range: 0.3,
  eos_token_id: 2,
};

const tok = builtinTokenizer();
const native = nativeBackend();

interface Setup {
  name: string;
  be: Backend;
  dtype: DType;
  tol: number;
}
const SETUPS: Setup[] = [
  { name: "reference f64", be: referenceBackend(), dtype: "f64", tol: 1e-10 },
  { name: "reference f32", be: referenceBackend(), dtype: "f32", tol: 1e-5 },
  ...(native ? [{ name: "native f32", be: native, dtype: "f32" as DType, tol: 1e-4 }] : []),
];

function model(s: Setup, seed = 1): Llama {
  return new Llama(CFG, { seed, backend: s.be, dtype: s.dtype });
}

/** Rows of a full forward's logits (T, V) for one sequence, on the host. */
function fullLogits(m: Llama, ids: number[]): Float64Array[] {
  const V = CFG.vocab_size;
  const flat = tidy(() => noGrad(() => m.forward(tensor(ids, [1, ids.length], "i32", m.embed.backend)).toArray()));
  return ids.map((_, t) => Float64Array.from(flat.subarray(t * V, (t + 1) * V)));
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

for (const s of SETUPS) {
  test(`KV cache: prefill, decode and chunked appends give a full forward's logits (${s.name}, tol ${s.tol})`, () => {
    const live = s.be.liveBuffers();
    const m = model(s);
    const ids = [1, 40, 41, 17, 17, 55, 60, 3, 70, 12, 9, 33];
    const want = fullLogits(m, ids);
    const V = CFG.vocab_size;
    let worst = 0;
    // Prefill 5, a chunk of 3 (attends over a copy of the prefix), then one token at a time up to the capacity.
    const cache = m.newCache(1, ids.length);
    const chunks = [[0, 5], [5, 8], ...ids.slice(8).map((_, i) => [8 + i, 9 + i])];
    for (const [a, b] of chunks) {
      const got = tidy(() => m.forwardCached(tensor(ids.slice(a, b), [1, b - a], "i32", s.be), cache).toArray());
      for (let t = a; t < b; t++) worst = Math.max(worst, maxDiff(got.subarray((t - a) * V, (t - a + 1) * V), want[t]));
    }
    assert.equal(cache.length, ids.length);
    cache.dispose();
    console.log(`  ${s.name}: largest logit difference cached vs full forward ${worst.toExponential(2)}`);
    assert.ok(worst <= s.tol, `largest difference ${worst}`);
    m.dispose();
    assert.equal(s.be.liveBuffers(), live);
  });

  test(`KV cache: left-padded rows of different lengths match each row alone (${s.name})`, () => {
    const m = model(s);
    const rows = [
      [1, 5, 6, 7, 8, 9, 10],
      [1, 20],
      [1, 30, 31, 32, 33],
    ];
    const P = 7;
    const V = CFG.vocab_size;
    const cache = m.newCache(rows.length, P + 3);
    const ids: number[] = [];
    const valid: number[] = [];
    for (const r of rows) {
      ids.push(...new Array<number>(P - r.length).fill(0), ...r);
      valid.push(...new Array<number>(P - r.length).fill(0), ...r.map(() => 1));
    }
    const next = [44, 45, 46];
    let worst = 0;
    const prefill = tidy(() =>
      m.forwardCached(tensor(ids, [3, P], "i32", s.be), cache, { valid, lastOnly: true }).toArray(),
    );
    const step = tidy(() => m.forwardCached(tensor(next, [3, 1], "i32", s.be), cache).toArray());
    rows.forEach((r, b) => {
      const want = fullLogits(m, [...r, next[b]]);
      worst = Math.max(worst, maxDiff(prefill.subarray(b * V, (b + 1) * V), want[r.length - 1]));
      worst = Math.max(worst, maxDiff(step.subarray(b * V, (b + 1) * V), want[r.length]));
    });
    cache.dispose();
    m.dispose();
    assert.ok(worst <= s.tol, `largest difference ${worst}`);
  });

  test(`greedy generation equals a greedy loop of full forwards; log-probs are the model's (${s.name})`, () => {
    const m = model(s);
    const prompt = tok.encode("Tom has 3 apples.\n");
    const [g] = generate(m, tok, [prompt], { temperature: 0, maxTokens: 12, eosIds: [] });
    const seq = [...prompt];
    const want: number[] = [];
    const lps: number[] = [];
    for (let i = 0; i < 12; i++) {
      const last = fullLogits(m, seq).at(-1)!;
      const id = argmax(last);
      const lp = tidy(() => logSoftmax(tensor(last, [V_(m)], s.dtype, s.be)).toArray()[id]);
      want.push(id);
      lps.push(lp);
      seq.push(id);
    }
    assert.deepEqual(g.tokens, want);
    assert.ok(maxDiff(g.logprobs, lps) <= s.tol, `log-prob difference ${maxDiff(g.logprobs, lps)}`);
    assert.equal(g.finishReason, "length");
    assert.equal(g.text, tok.decode(want));
    m.dispose();
  });

  test(`batched equals unbatched for prompts of different lengths, and seeds reproduce (${s.name})`, () => {
    const m = model(s);
    const live = s.be.liveBuffers();
    const prompts = ["7", "Sam buys 12 pens and 3 more.", "What is 4 * 5?", "x"];
    const opts = { temperature: 1, topP: 0.95, maxTokens: 10, seed: 7, eosIds: [] };
    const together = generate(m, tok, prompts, { ...opts, batchSize: 4 });
    const alone = generate(m, tok, prompts, { ...opts, batchSize: 1 });
    const mixed = generate(
      m,
      tok,
      [prompts[2], prompts[0]].map((p, i) => ({ prompt: p, seed: together.length + i })),
      { ...opts, batchSize: 2 },
    );
    for (let i = 0; i < prompts.length; i++) {
      assert.deepEqual(together[i].tokens, alone[i].tokens, `prompt ${i}`);
      assert.ok(maxDiff(together[i].logprobs, alone[i].logprobs) <= s.tol);
    }
    // The same explicit seed gives the same text in another batch; the same run seed the same texts.
    const single = generate(m, tok, [{ prompt: prompts[2], seed: 4 }], opts);
    assert.deepEqual(mixed[0].tokens, single[0].tokens);
    assert.deepEqual(
      generate(m, tok, prompts, opts).map((g) => g.text),
      together.map((g) => g.text),
    );
    const other = generate(m, tok, prompts, { ...opts, seed: 8 });
    assert.notDeepEqual(
      other.map((g) => g.tokens),
      together.map((g) => g.tokens),
    );
    assert.equal(s.be.liveBuffers(), live, "generation leaked buffers");
    m.dispose();
  });

  test(`rows that end early leave the batch; the others go on as if alone (${s.name})`, () => {
    const live = s.be.liveBuffers();
    const m = model(s);
    const prompts = ["1", "22", "333", "4444", "55555", "666666"];
    const opts = { temperature: 1, maxTokens: 24, seed: 5, eosIds: [40, 41, 42, 43, 44, 45, 46, 47] };
    const select = KVCache.prototype.select;
    let compactions = 0;
    KVCache.prototype.select = function (rows) {
      compactions++;
      return select.call(this, rows);
    };
    let together: Generation[];
    try {
      together = generate(m, tok, prompts, { ...opts, batchSize: 6 });
    } finally {
      KVCache.prototype.select = select;
    }
    assert.ok(compactions >= 1, "no row left the batch");
    const alone = generate(m, tok, prompts, { ...opts, batchSize: 1 });
    together.forEach((g, i) => {
      assert.deepEqual(g.tokens, alone[i].tokens, `prompt ${i}`);
      assert.equal(g.finishReason, alone[i].finishReason);
    });
    const ends = together.map((g) => (g.finishReason === "eos" ? g.tokens.length : -1)).filter((n) => n > 0);
    assert.ok(new Set(ends).size >= 3, `the test needs rows ending at different steps (${ends})`);
    m.dispose();
    assert.equal(s.be.liveBuffers(), live, "generation leaked buffers");
  });
}

function V_(m: Llama): number {
  return m.config.vocab_size;
}

const ref = SETUPS[0];

test("stop strings: the text ends before the first one, finish_reason stop; EOS ends with eos", () => {
  const m = model(ref, 2);
  const prompts = ["Q: 5 + 7 = ", "Q: 9 * 2 = "];
  const opts = { temperature: 1.5, maxTokens: 40, eosIds: [] };
  const free = generate(m, tok, prompts, { ...opts, seed: 3 });
  for (const [i, g] of free.entries()) {
    assert.equal(g.finishReason, "length");
    assert.equal(g.text, tok.decode(g.tokens));
    const seed = sequenceSeed(3, i); // the seed generate() derived for sequence i
    const stop = g.text.slice(15, 17);
    const [cut] = generate(m, tok, [{ prompt: prompts[i], seed }], { ...opts, stop: ["\u0000never", stop] });
    const at = g.text.indexOf(stop);
    assert.equal(cut.finishReason, "stop");
    assert.equal(cut.text, g.text.slice(0, at));
    let n = 1; // tokens run to the one that completes the stop string
    while (!tok.decode(g.tokens.slice(0, n)).includes(stop)) n++;
    assert.deepEqual(cut.tokens, g.tokens.slice(0, n));
    // EOS: the first time the token at position 10 appears, generation ends there.
    const eos = g.tokens[10];
    const [e] = generate(m, tok, [{ prompt: prompts[i], seed }], { ...opts, eosIds: [eos] });
    const first = g.tokens.indexOf(eos);
    assert.equal(e.finishReason, "eos");
    assert.deepEqual(e.tokens, g.tokens.slice(0, first + 1));
    assert.equal(e.text, tok.decode(g.tokens.slice(0, first)));
  }
  m.dispose();
});

test("step temperature hook: called once per token with the index of the step it belongs to; maxSteps stops", () => {
  const m = model(ref, 3);
  const nl = tok.encode("\n", { addSpecialTokens: false })[0];
  const calls: [number, number][][] = [[], [], []];
  const prompts = ["A\n", "B: 3 + 4\n", "C"];
  const gens = generate(m, tok, prompts, {
    maxTokens: 60,
    seed: 11,
    eosIds: [],
    firstStep: 2,
    stepTemperature: (step, seq) => {
      calls[seq].push([step, seq]);
      return Math.min(2 + 0.5 * step, 6); // hot, so that newlines come up
    },
  });
  let stepsSeen = 0;
  gens.forEach((g, seq) => {
    assert.equal(calls[seq].length, g.tokens.length);
    let step = 2;
    g.tokens.forEach((id, k) => {
      assert.deepEqual(calls[seq][k], [step, seq], `sequence ${seq}, token ${k}`);
      if (id === nl) step++;
    });
    assert.equal(g.steps, step - 2);
    stepsSeen += g.steps;
  });
  assert.ok(stepsSeen >= 2, `the test needs newlines in the samples (got ${stepsSeen})`);
  // maxSteps 1: each text is its first step, newline included.
  const once = generate(m, tok, prompts, {
    maxTokens: 60,
    seed: 11,
    eosIds: [],
    firstStep: 2,
    maxSteps: 1,
    stepTemperature: (step) => Math.min(2 + 0.5 * step, 6),
  });
  once.forEach((g, i) => {
    const first = gens[i].text.indexOf("\n");
    if (first < 0) return assert.equal(g.finishReason, "length");
    assert.equal(g.finishReason, "stop");
    assert.equal(g.text, gens[i].text.slice(0, first + 1));
    assert.equal(g.steps, 1);
  });
  m.dispose();
});

test("BatchDecoder: results grow step by step; maxTokens 0 does nothing", () => {
  const m = model(ref, 4);
  const live = ref.be.liveBuffers();
  const dec = new BatchDecoder(
    m,
    tok,
    [
      { ids: tok.encode("ab"), index: 0 },
      { ids: tok.encode("abcd"), index: 1 },
    ],
    { maxTokens: 3, eosIds: [] },
  );
  const lengths: number[] = [];
  while (!dec.done) {
    dec.step();
    lengths.push(dec.results()[0].tokens.length);
  }
  assert.deepEqual(lengths, [1, 2, 3]);
  dec.dispose();
  const [none] = generate(m, tok, ["ab"], { maxTokens: 0 });
  assert.deepEqual([none.tokens, none.text, none.finishReason], [[], "", "length"]);
  assert.equal(ref.be.liveBuffers(), live);
  m.dispose();
});

test("samplers: top-k and top-p keep the right tokens; temperature 0 and top-k 1 are greedy", () => {
  const rng = new Rng(5);
  const V = 50;
  const logits = Float64Array.from({ length: V }, () => rng.normal() * 2);
  const byProb = [...logits.keys()].sort((a, b) => logits[b] - logits[a]);
  const sampler = new Sampler(V);
  assert.equal(sampler.sample(logits, rng, 0, 0, 1), byProb[0]);
  assert.equal(sampler.sample(logits, rng, 1, 1, 1), byProb[0]);
  const seen = new Set<number>();
  for (let i = 0; i < 2000; i++) seen.add(sampler.sample(logits, rng, 1, 3, 1));
  assert.deepEqual([...seen].sort(), byProb.slice(0, 3).sort());
  // top-p: the smallest prefix (by probability) whose mass reaches p.
  const p = Float64Array.from(logits, (l) => Math.exp(l));
  const total = p.reduce((a, b) => a + b, 0);
  let mass = 0;
  let nucleus = 0;
  while (mass < 0.8 * total) mass += p[byProb[nucleus++]];
  seen.clear();
  for (let i = 0; i < 4000; i++) seen.add(sampler.sample(logits, rng, 1, 0, 0.8));
  assert.deepEqual([...seen].sort(), byProb.slice(0, nucleus).sort());
  const lp = sampler.logprob(logits, 7);
  assert.ok(Math.abs(lp - (logits[7] - Math.log(total))) < 1e-12);
});

test("selectTop and selectMass agree with sorting, ties and zeros included", () => {
  const rng = new Rng(9);
  for (let trial = 0; trial < 200; trial++) {
    const n = 1 + rng.int(40);
    const w = Float64Array.from({ length: n }, () => (rng.next() < 0.3 ? rng.int(3) : rng.next()));
    const sorted = [...w].sort((a, b) => b - a);
    const k = 1 + rng.int(n);
    const idx = Int32Array.from({ length: n }, (_, i) => i);
    selectTop(idx, w, k);
    assert.deepEqual(
      [...idx.subarray(0, k)].map((i) => w[i]).sort((a, b) => b - a),
      sorted.slice(0, k),
    );
    const total = sorted.reduce((a, b) => a + b, 0);
    const target = rng.next() * total;
    idx.forEach((_, i) => (idx[i] = i));
    const m = selectMass(idx, w, n, target);
    let want = 0;
    let acc = 0;
    while (want < n && (want === 0 || acc < target)) acc += sorted[want++];
    assert.equal(m, want, `n ${n} target ${target}`);
    assert.deepEqual(
      [...idx.subarray(0, m)].map((i) => w[i]).sort((a, b) => b - a),
      sorted.slice(0, m),
    );
  }
});

test("Detokenizer: pieces of byte-level BPE tokens join to the full decode (multi-byte characters held back)", () => {
  for (const name of ["llama3-bpe", "chatml-bpe"]) {
    const bpe = TextTokenizer.load(
      fileURLToPath(new URL(`../../src/model/fixtures/tokenizers/${name}/`, import.meta.url)),
    );
    const prompt = bpe.encode("Question: ");
    const text = "héllo wörld 日本語 🙂🙂 x² = 12+3\n  indented\tTab ünïcödé";
    const ids = bpe.encode(text, { addSpecialTokens: false });
    const d = new Detokenizer(bpe, prompt);
    let got = "";
    let pieces = 0;
    for (const id of ids) {
      const piece = d.push(id);
      got += piece;
      if (piece) pieces++;
    }
    assert.ok(pieces >= ids.length / 2, `text comes out as tokens arrive (${pieces} pieces for ${ids.length} tokens)`);
    got += d.flush();
    assert.equal(got, bpe.decode([...prompt, ...ids]).slice(bpe.decode(prompt).length), name);
  }
});

test("generate rejects bad options and token ids with clear errors", () => {
  const m = model(ref, 5);
  assert.throws(() => generate(m, tok, ["a"], { topP: 0 }), /topP/);
  assert.throws(() => generate(m, tok, [[1, 500]]), /outside the vocabulary/);
  assert.throws(() => generate(m, null, ["a"]), /no tokenizer/);
  assert.throws(() => generate(m, tok, [[]]), /no tokens/);
  m.dispose();
});
