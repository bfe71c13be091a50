// Tokenizers against Python: ids from @huggingface/tokenizers equal those of Python `tokenizers` / transformers
// (fixtures from reference/make_fixtures.py) for the built-in tokenizer and two byte-level BPEs built like Qwen2's
// and Llama 3's; chat templates render as transformers renders them; BOS/EOS are never doubled; the prompt-prefix
// check warns where a merge crosses the prompt/completion boundary.

import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { TextTokenizer, builtinTokenizer, builtinTokenizerFiles } from "./tokenizer.js";

const DIR = fileURLToPath(new URL("../../src/model/fixtures/tokenizers/", import.meta.url));

interface Expected {
  cases: { text: string; ids: number[]; ids_no_special: number[]; decoded: string }[];
  chat?: { messages: { role: string; content: string }[]; rendered: string; rendered_full: string; ids: number[] };
}

const expected = (name: string): Expected => JSON.parse(fs.readFileSync(path.join(DIR, name, "expected.json"), "utf8"));

test("the committed built-in tokenizer.json is the one the code builds", () => {
  const { json, config } = builtinTokenizerFiles();
  const file = path.join(DIR, "builtin", "tokenizer.json");
  if (process.env.STEPWISE_UPDATE_FIXTURES) builtinTokenizer().save(path.join(DIR, "builtin"));
  assert.deepEqual(
    JSON.parse(fs.readFileSync(file, "utf8")),
    json,
    "the built-in tokenizer changed: run with STEPWISE_UPDATE_FIXTURES=1, then python3 reference/make_fixtures.py tokenizer",
  );
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(DIR, "builtin", "tokenizer_config.json"), "utf8")), config);
});

for (const name of ["builtin", "chatml-bpe", "llama3-bpe"]) {
  test(`${name}: same ids as Python tokenizers on varied text (Unicode, digits, whitespace runs, code)`, (t) => {
    const tok = TextTokenizer.load(path.join(DIR, name));
    const exp = expected(name);
    for (const c of exp.cases) {
      // The library's own encode, with the post-processor, as Python's.
      assert.deepEqual(
        tok.hf.encode(c.text, { add_special_tokens: true }).ids,
        c.ids,
        `ids of ${JSON.stringify(c.text)}`,
      );
      assert.deepEqual(
        tok.encode(c.text, { addSpecialTokens: false }),
        c.ids_no_special,
        `bare ids of ${JSON.stringify(c.text)}`,
      );
      assert.deepEqual(tok.encode(c.text), c.ids, `our encode of ${JSON.stringify(c.text)}`);
      assert.equal(tok.decode(c.ids), c.decoded, `decode of ${JSON.stringify(c.text)}`);
    }
    t.diagnostic(`${exp.cases.length} texts, ${exp.cases.reduce((n, c) => n + c.ids.length, 0)} tokens identical`);
  });
}

test("built-in tokenizer: digits and task characters are single tokens, 100 ids, BOS added once", () => {
  const tok = builtinTokenizer();
  assert.equal(tok.vocabSize, 100);
  assert.deepEqual([tok.bosId, tok.eosId, tok.padId], [1, 2, 0]);
  const text = "3 * 14 = <<3*14=42>>42\n#### 42";
  const ids = tok.encode(text);
  assert.equal(ids.length, text.length + 1, "one token per character after BOS");
  assert.equal(ids[0], tok.bosId);
  assert.equal(tok.decode(ids), text);
  for (const d of "0123456789") assert.equal(tok.encode(d, { addSpecialTokens: false }).length, 1);
  assert.deepEqual(tok.encode("<s>12"), tok.encode("12"), "a text that starts with BOS gets no second one");
});

test("chat templates render and tokenize as transformers does; BOS is not doubled", () => {
  for (const name of ["chatml-bpe", "llama3-bpe"]) {
    const tok = TextTokenizer.load(path.join(DIR, name));
    const chat = expected(name).chat!;
    assert.equal(tok.applyChatTemplate(chat.messages.slice(0, 2)), chat.rendered, `${name} rendered prompt`);
    assert.equal(
      tok.applyChatTemplate(chat.messages, { addGenerationPrompt: false }),
      chat.rendered_full,
      `${name} full`,
    );
    assert.deepEqual(tok.encodeChat(chat.messages.slice(0, 2)), chat.ids, `${name} chat ids`);
    // Encoding the rendered text with special tokens on: the template's BOS is kept, the post-processor's dropped.
    const withSpecials = tok.encode(chat.rendered);
    assert.deepEqual(withSpecials, chat.ids, `${name}: no duplicate BOS`);
  }
  const plain = TextTokenizer.load(path.join(DIR, "builtin"));
  assert.equal(
    plain.applyChatTemplate(
      [
        { role: "user", content: "1+1?" },
        { role: "assistant", content: "2" },
      ],
      { addGenerationPrompt: false },
    ),
    "<s>1+1?\n2</s>",
  );
});

test("prompt/completion: the prompt's tokens prefix the whole; EOS once; a warning where a merge crosses", () => {
  const tok = TextTokenizer.load(path.join(DIR, "llama3-bpe"));
  const warnings: string[] = [];
  const warn = (m: string) => warnings.push(m);
  const ok = tok.encodePromptCompletion("Question: what is 2+2?\nAnswer:", " 4", { warn });
  assert.equal(ok.prefixOk, true);
  assert.deepEqual(ok.ids.slice(0, ok.promptLength), tok.encode("Question: what is 2+2?\nAnswer:"));
  assert.equal(ok.ids.at(-1), tok.eosId);
  assert.equal(ok.ids.filter((x) => x === tok.eosId).length, 1);
  assert.equal(ok.ids.filter((x) => x === tok.bosId).length, 1);
  const again = tok.encodePromptCompletion("Q", " 4<|eot_id|>", { warn });
  assert.equal(
    again.ids.filter((x) => x === tok.eosId).length,
    1,
    "a completion that ends with EOS gets no second one",
  );
  assert.deepEqual(warnings, []);
  // "the" + "re" tokenizes as "there": the prompt's last token is not in the joint tokens.
  const split = tok.encodePromptCompletion("Is it the", "re?", { warn });
  assert.equal(split.prefixOk, false);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /not a prefix/);
  assert.ok(split.promptLength < tok.encode("Is it the").length);
  assert.deepEqual(split.ids.slice(0, split.promptLength), tok.encode("Is it the").slice(0, split.promptLength));
});

test("a tokenizer saved by us loads back with the same ids", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stepwise-tok-"));
  const src = TextTokenizer.load(path.join(DIR, "chatml-bpe"));
  src.save(dir);
  const back = TextTokenizer.load(dir);
  for (const c of expected("chatml-bpe").cases) assert.deepEqual(back.encode(c.text), c.ids);
  assert.equal(back.chatTemplate, src.chatTemplate);
});
