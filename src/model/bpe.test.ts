import assert from "node:assert/strict";
import { test } from "node:test";
import { generateProblems, PRESETS } from "../data/task.js";
import { learnMerges, preTokenize, trainBpeTokenizer } from "./bpe.js";
import { initModel } from "./presets.js";
import { builtinTokenizer } from "./tokenizer.js";

const texts = generateProblems(PRESETS.medium, { n: 400, seed: 3, split: "train" }).map(
  (p) => `${p.question}\n${p.answer}`,
);

test("pre-tokenization isolates every digit and keeps GPT-2's word split (byte-level spelling)", () => {
  assert.deepEqual(preTokenize("Ava has 49 apples.\n#### 7"), [
    "Ava",
    "Ġhas",
    "Ġ",
    "4",
    "9",
    "Ġapples",
    ".",
    "Ċ",
    "####",
    "Ġ",
    "7",
  ]);
  assert.deepEqual(preTokenize("<<3*12=36>>36"), ["<<", "3", "*", "1", "2", "=", "3", "6", ">>", "3", "6"]);
});

test("merges: deterministic, never touching a digit, most frequent first", () => {
  const a = learnMerges(texts, { vocabSize: 500 });
  const b = learnMerges([...texts], { vocabSize: 500 });
  assert.deepEqual(a, b);
  assert.ok(a.length > 100 && a.length <= 500 - 260);
  for (const [x, y] of a) assert.ok(!/[0-9]/.test(x + y), `${x} ${y}`);
  // the first merge is the most frequent pair of the corpus
  const counts = new Map<string, number>();
  for (const t of texts)
    for (const w of preTokenize(t))
      for (let i = 0; i + 1 < [...w].length; i++) {
        const cs = [...w];
        if (/[0-9]/.test(cs[i] + cs[i + 1])) continue;
        const k = `${cs[i]} ${cs[i + 1]}`;
        counts.set(k, (counts.get(k) ?? 0) + 1);
      }
  const top = Math.max(...counts.values());
  assert.equal(counts.get(a[0].join(" ")), top);
  assert.throws(() => learnMerges(texts, { vocabSize: 100 }), /below the 260 specials and bytes/);
});

test("the learned tokenizer: round-trips any text, digits one token each, far shorter than characters", () => {
  const tok = trainBpeTokenizer(texts, { vocabSize: 600 });
  const chars = builtinTokenizer();
  const probe = [
    "Mateo keeps 13 goats on his farm.\nThe pens hold 8 * 40 = <<8*40=320>>320 goats.\n#### 333",
    "Ünïcödé ☃ and tabs\tand\n\nnew lines",
    "",
    "12345678901234567890",
  ];
  for (const t of probe) {
    const ids = tok.encode(t);
    assert.equal(ids[0], tok.bosId);
    assert.equal(tok.decode(ids.slice(1)), t);
  }
  const digits = tok.encode("12345678901234567890", { addSpecialTokens: false });
  assert.equal(digits.length, 20);
  let ours = 0,
    theirs = 0;
  for (const t of texts.slice(0, 50)) {
    ours += tok.encode(t).length;
    theirs += chars.encode(t).length;
  }
  assert.ok(ours < 0.6 * theirs, `${ours} vs ${theirs} tokens`);
  assert.deepEqual([tok.padId, tok.bosId, tok.eosId], [0, 1, 2]);
});

test("initModel: with texts the preset learns a BPE tokenizer and sizes its vocabulary to it", () => {
  const { model, tokenizer } = initModel("tiny", { seed: 1, texts, vocabSize: 600 });
  try {
    assert.ok(tokenizer!.vocabSize > 300 && tokenizer!.vocabSize <= 600);
    assert.equal(model.config.vocab_size % 64, 0);
    assert.ok(model.config.vocab_size >= tokenizer!.vocabSize && model.config.vocab_size < tokenizer!.vocabSize + 64);
  } finally {
    model.dispose();
  }
  const plain = initModel("tiny", { seed: 1 });
  assert.equal(plain.tokenizer!.vocabSize, 100);
  plain.model.dispose();
});
