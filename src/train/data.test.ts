// How training files become tokens (issue #17, item 1): TRL's formats from JSONL and parquet, conversations
// rendered with the chat template and split by TRL's rule, language modeling on every token after the first, and
// bad records named by file and line (JSONL) or row (parquet) with the key at fault.

import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { InputError } from "../core/errors.js";
import { builtinTokenizerFiles, TextTokenizer } from "../model/tokenizer.js";
import { readPairsFile, readSftFile, readSftTexts, type ReadOptions } from "./data.js";

const FIX = fileURLToPath(new URL("../../src/data/fixtures/", import.meta.url));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stepwise-data-"));
process.on("exit", () => fs.rmSync(dir, { recursive: true, force: true }));

function lines(name: string, records: unknown[]): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, records.map((r) => JSON.stringify(r)).join("\n") + "\n");
  return file;
}

/** The built-in character tokenizer with another chat template (null: none). */
function charTokenizer(template: string | null): TextTokenizer {
  const { json, config } = builtinTokenizerFiles();
  if (template === null) delete config.chat_template;
  else config.chat_template = template;
  return new TextTokenizer(json, config, "test tokenizer");
}

// The built-in template: BOS, then each message, an assistant's followed by EOS; no generation prompt.
const builtin = charTokenizer(builtinTokenizerFiles().config.chat_template as string);
// A template whose generation prompt ("A: ", trailing space) is not how a reply starts ("A:" then the content),
// with tools and a chat_template_kwargs switch: the prompt alone is not a prefix of prompt + reply.
const SPACED =
  "{{ bos_token }}{% if tools %}T{{ tools|length }}\n{% endif %}{% if brief %}B\n{% endif %}" +
  "{% if messages[0].role == 'assistant' %}{{ raise_exception('start with the user') }}{% endif %}" +
  "{% for m in messages %}{% if m.role == 'assistant' %}A:{{ m.content }}{{ eos_token }}{% else %}{{ m.content }}\n" +
  "{% endif %}{% endfor %}{% if add_generation_prompt %}A: {% endif %}";
const spaced = charTokenizer(SPACED);

const opts = (tokenizer: TextTokenizer, more: Partial<ReadOptions> = {}): ReadOptions => ({
  tokenizer,
  template: "plain",
  maxLength: 1024,
  skipBad: false,
  ...more,
});
const user = (content: string) => ({ role: "user", content });
const bot = (content: string) => ({ role: "assistant", content });
const firstLine = (e: Error) => e.message.split("\n")[0];
const text = (tok: TextTokenizer, ids: number[]) => ids.map((i) => tok.tokenText(i)).join("");

test("conversational pairs: TRL's rule, the prompt the longest prefix it shares with both prompt + chosen and prompt + rejected", async () => {
  const file = lines("chat.jsonl", [
    { prompt: [user("2+3?")], chosen: [bot(" 5")], rejected: [bot("6")] },
    {
      prompt: [user("7*6?")],
      chosen: [bot("42")],
      rejected: [bot(" 48")],
      tools: JSON.stringify([{ name: "mul" }]),
      chat_template_kwargs: { brief: true },
    },
  ]);
  const warnings: string[] = [];
  const { pairs, stepLevel } = await readPairsFile(file, opts(spaced, { warn: (m) => warnings.push(m) }));
  assert.equal(stepLevel, 0);
  // "<s>2+3?\nA: " alone; "<s>2+3?\nA: 5</s>" shares all of it, "<s>2+3?\nA:6</s>" all but the space
  assert.equal(text(spaced, pairs[0].prompt), "<s>2+3?\nA:");
  assert.equal(text(spaced, pairs[0].chosen), " 5</s>");
  assert.equal(text(spaced, pairs[0].rejected), "6</s>");
  // each side's sequence is exactly its own tokenization, the template's EOS the only one
  const render = (ms: object[], gen: boolean, extra = {}) =>
    spaced.encode(spaced.applyChatTemplate(ms as never, { addGenerationPrompt: gen, extra }), {
      addSpecialTokens: false,
    });
  assert.deepEqual([...pairs[0].prompt, ...pairs[0].chosen], render([user("2+3?"), bot(" 5")], false));
  assert.deepEqual([...pairs[0].prompt, ...pairs[0].rejected], render([user("2+3?"), bot("6")], false));
  // tools and chat_template_kwargs reach the template
  assert.equal(text(spaced, pairs[1].prompt), "<s>T1\nB\n7*6?\nA:");
  assert.equal(text(spaced, pairs[1].rejected), " 48</s>");
  assert.equal(warnings.length, 1, "said once per file");
  assert.match(warnings[0], /chat\.jsonl:1: the chat template renders the prompt alone differently .* at token 8 of 9/);
});

test("implicit conversational pairs from parquet (ultrafeedback's layout); string pairs from parquet, a null named by row", async () => {
  const { pairs } = await readPairsFile(path.join(FIX, "pairs-implicit.zstd.parquet"), opts(builtin));
  assert.deepEqual(
    pairs.map((p) => [text(builtin, p.prompt), text(builtin, p.chosen), text(builtin, p.rejected)]),
    [
      ["<s>2+3?\n", "5</s>", "6</s>"],
      ["<s>7*6?\n", "42</s>", "48</s>"],
    ],
  );
  const standard = path.join(FIX, "pairs-standard.gzip.parquet");
  await assert.rejects(
    readPairsFile(standard, opts(builtin)),
    (e: unknown) =>
      e instanceof InputError && firstLine(e) === `${standard} row 2: missing or non-string field rejected`,
  );
  const skipped = await readPairsFile(standard, opts(builtin, { skipBad: true }));
  assert.equal(skipped.pairs.length, 2);
  assert.deepEqual(skipped.skipped, { count: 1, reasons: { "missing or non-string field rejected": 1 } });
  // strings: EOS appended, as for JSONL
  assert.equal(text(builtin, skipped.pairs[1].prompt), "<s>7*6=");
  assert.equal(text(builtin, skipped.pairs[1].chosen), "42</s>");
});

test("implicit string pairs: the common prefix is the prompt; Step-DPO and explicit pairs read as before", async () => {
  const file = lines("implicit.jsonl", [
    { chosen: "The sky is blue.", rejected: "The sky is green." },
    { prompt: "2+3=", chosen: "5", rejected: "6", kind: "stepdpo" },
    { prompt: "Q", initial_reason_steps: "A.\n", chosen: "B.\n", rejected: "C.\n" },
  ]);
  const { pairs, stepLevel } = await readPairsFile(file, opts(builtin));
  assert.deepEqual(
    pairs.map((p) => [text(builtin, p.prompt), text(builtin, p.chosen), text(builtin, p.rejected)]),
    [
      ["<s>The sky is", " blue.</s>", " green.</s>"],
      ["<s>2+3=", "5", "6"],
      ["<s>Q\nA.\n", "B.\n", "C.\n"],
    ],
  );
  assert.equal(stepLevel, 2);
  const noPrompt = lines("steps-no-prompt.jsonl", [{ initial_reason_steps: "A.\n", chosen: "B.\n", rejected: "C.\n" }]);
  await assert.rejects(
    readPairsFile(noPrompt, opts(builtin)),
    /steps-no-prompt\.jsonl:1: missing or non-string field prompt/,
  );
});

test("bad pair records: file:line and the key; no chat template is an error for the file, not a skip", async () => {
  const file = lines("bad-chat.jsonl", [
    { prompt: [user("2+3?")], chosen: [bot("5")], rejected: [bot("6")] },
    { prompt: [user("2+3?")], chosen: [bot("5")], rejected: [{ role: "assistant", content: ["6"] }] },
    { chosen: [bot("5")], rejected: [bot("6")], prompt: [bot("hi")] },
  ]);
  await assert.rejects(
    readPairsFile(file, opts(spaced)),
    (e: unknown) =>
      e instanceof InputError && firstLine(e) === `${file}:2: "rejected" message 0 has no string "content"`,
  );
  const got = await readPairsFile(file, opts(spaced, { skipBad: true }));
  assert.equal(got.pairs.length, 1);
  assert.deepEqual(Object.keys(got.skipped.reasons), [
    '"rejected" message 0 has no string "content"',
    "the chat template failed on this record (start with the user)",
  ]);
  await assert.rejects(
    readPairsFile(file, opts(charTokenizer(null), { skipBad: true })),
    (e: unknown) =>
      e instanceof InputError &&
      e.message.startsWith(`${file}:1: a conversational record needs the model's chat template`),
  );
});

test("SFT: every format from JSONL; text gets EOS and trains after its first token; a chat gets no extra EOS", async () => {
  const file = lines("sft.jsonl", [
    { question: "2+3?", answer: "5\n" },
    { prompt: "2+3=", completion: "5" },
    { text: "2+3=5" },
    { messages: [user("2+3?"), bot("5")] },
    { prompt: [user("2+3?")], completion: [bot(" 5")], chat_template_kwargs: { brief: true } },
  ]);
  const warnings: string[] = [];
  const { examples } = await readSftFile(file, opts(spaced, { warn: (m) => warnings.push(m) }));
  assert.deepEqual(
    examples.map((e) => [text(spaced, e.prompt), text(spaced, e.completion)]),
    [
      ["<s>2+3?\n", "5</s>"],
      ["<s>2+3=", "5</s>"],
      ["<s>", "2+3=5</s>"],
      ["<s>", "2+3?\nA:5</s>"],
      ["<s>B\n2+3?\nA: ", "5</s>"],
    ],
  );
  assert.deepEqual(warnings, [], "the reply starts with the generation prompt's space: the prompt is a prefix");
  // the old formats give the tokens they gave before this reader
  const pc = builtin.encodePromptCompletion("2+3=", "5");
  const old = (await readSftFile(file, opts(builtin))).examples[1];
  assert.deepEqual([...old.prompt, ...old.completion], pc.ids);
  assert.equal(old.prompt.length, pc.promptLength);
});

test("SFT from parquet; bad SFT records named by line and key; readSftTexts reads every format", async () => {
  const parquet = path.join(FIX, "sft-messages.snappy.parquet");
  const { examples } = await readSftFile(parquet, opts(builtin));
  assert.deepEqual(
    examples.map((e) => [text(builtin, e.prompt), text(builtin, e.completion)]),
    [
      ["<s>", "2+3?\n5</s>"],
      ["<s>", "Be brief.\n7*6?\n42</s>"],
      ["<s>", "9-4?\n5</s>"],
    ],
  );
  await assert.rejects(
    readSftFile(parquet, opts(builtin, { maxLength: 10 })),
    (e: unknown) =>
      e instanceof InputError && firstLine(e) === `${parquet} row 1: longer than --max-length 10 tokens (19)`,
  );
  const bad = lines("sft-bad.jsonl", [
    { text: "ok" },
    { messages: [{ role: "user" }] },
    { prompt: "q", completion: [bot("a")] },
    { text: "" },
  ]);
  await assert.rejects(
    readSftFile(bad, opts(builtin)),
    (e: unknown) =>
      e instanceof InputError && firstLine(e) === `${bad}:2: "messages" message 0 has no string "content"`,
  );
  const skipped = (await readSftFile(bad, opts(builtin, { skipBad: true }))).skipped;
  assert.deepEqual(
    skipped.reasons,
    {
      '"messages" message 0 has no string "content"': 1,
      '"prompt" and "completion" must both be strings or both lists of messages': 1,
    },
    "an empty text still has EOS to learn",
  );
  assert.deepEqual(await readSftTexts(parquet), ["2+3?\n5", "Be brief.\n7*6?\n42", "9-4?\n5"]);
  const mixed = lines("texts.jsonl", [
    { question: "q", answer: "a" },
    { text: "t" },
    { prompt: [user("p")], completion: [bot("c")] },
  ]);
  assert.deepEqual(await readSftTexts(mixed), ["q\na", "t", "p\nc"]);
});
