// Credit assignment on tiny random models: rewards are beta*(log pi - log pi_ref) per completion token and match
// `stepwise score`; step sums add up to the total; tokens map to the step they end; model == ref gives zeros;
// the HTML holds every token's text escaped, a tooltip per token, step sums and a legend; the terminal picture
// colours tokens, the table does not.

import assert from "node:assert/strict";
import { after, test } from "node:test";
import { referenceBackend } from "../backend/index.js";
import { Llama, type LlamaConfig } from "../model/llama.js";
import { builtinTokenizer } from "../model/tokenizer.js";
import { scoreTokens } from "../model/score.js";
import { encodeForCredit, scoreCredit, scoreCredits, scoreSequence, stepRewards, tokenRewards } from "./credit.js";
import { creditAnsi, creditHtml, creditTable, escapeHtml, rewardColor, visibleText } from "./render.js";

const CFG: LlamaConfig = {
  vocab_size: 100,
  hidden_size: 16,
  intermediate_size: 24,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  rms_norm_eps: 1e-5,
  rope_theta: 1e4,
  max_position_embeddings: 256,
  tie_word_embeddings: true,
  attention_bias: false,
  initializer_range: 0.2,
  bos_token_id: 1,
  eos_token_id: 2,
};
const be = referenceBackend();
const policy = new Llama(CFG, { seed: 1, backend: be });
const ref = new Llama(CFG, { seed: 2, backend: be });
const tok = builtinTokenizer();
after(() => {
  policy.dispose();
  ref.dispose();
});

const PROMPT = "Ann has 3 pens & buys 4. How many?\n";
const SOLUTION = '3 + 4 = <<3+4=7>>7 pens.\n7 * 2 = <<7*2=14>>14 "pens" <b>\n#### 14';

test("per-token rewards: beta*(logprob - ref) of each token after BOS, as stepwise score's; steps sum to the total", () => {
  const c = scoreCredit(policy, ref, tok, SOLUTION, { beta: 0.5 });
  const ids = tok.encode(SOLUTION);
  const [lp] = scoreTokens(policy, [ids]);
  const [rl] = scoreTokens(ref, [ids]);
  assert.equal(c.tokens.length, ids.length - 1); // BOS has no log-prob
  let total = 0;
  c.tokens.forEach((t, i) => {
    assert.equal(t.id, ids[i + 1]);
    assert.equal(t.logprob, lp[i]);
    assert.equal(t.ref_logprob, rl[i]);
    assert.ok(Math.abs(t.reward - 0.5 * (lp[i] - rl[i])) < 1e-12, `token ${i}`);
    total += t.reward;
  });
  assert.ok(Math.abs(c.total_reward - total) < 1e-9);
  const stepSum = c.steps.reduce((a, st) => a + st.reward, 0);
  assert.ok(Math.abs(stepSum - c.total_reward) < 1e-9, `${stepSum} vs ${c.total_reward}`);
  assert.equal(
    c.steps.reduce((a, st) => a + st.tokens, 0),
    c.tokens.length,
  );
  assert.equal(c.max_abs_reward, Math.max(...c.tokens.map((t) => Math.abs(t.reward))));
});

test("tokens: spans rebuild the completion; a step's newline belongs to it; a prompt is context only", () => {
  const c = scoreCredit(policy, ref, tok, SOLUTION, { prompt: PROMPT });
  assert.equal(c.completion, SOLUTION);
  assert.equal(c.tokens.map((t) => SOLUTION.slice(t.start, t.end)).join(""), SOLUTION);
  assert.deepEqual(
    c.steps.map((s) => s.text),
    SOLUTION.split("\n"),
  );
  const newlines = c.tokens.filter((t) => t.text === "\n");
  assert.deepEqual(
    newlines.map((t) => t.step),
    [0, 1],
  );
  c.tokens.forEach((t) => assert.equal(t.step, SOLUTION.slice(0, t.start).split("\n").length - 1));
  // The same completion after the prompt scores differently (the context changes) but has the same tokens.
  const bare = scoreCredit(policy, ref, tok, SOLUTION);
  assert.deepEqual(
    bare.tokens.map((t) => t.id),
    c.tokens.map((t) => t.id),
  );
  assert.notEqual(bare.total_reward, c.total_reward);
  const ids = encodeForCredit(tok, PROMPT, SOLUTION);
  assert.deepEqual(ids.prompt, tok.encode(PROMPT));
  assert.equal(ids.completion.length, SOLUTION.length); // one character a token
  const eos = encodeForCredit(tok, PROMPT, SOLUTION, { addEos: true });
  assert.equal(eos.completion.at(-1), tok.eosId);
  // A batch scores each text as alone.
  const [b0, b1] = scoreCredits(policy, ref, tok, [
    { prompt: PROMPT, completion: SOLUTION },
    { prompt: "", completion: "1 + 1 = 2" },
  ]);
  assert.ok(Math.abs(b0.total_reward - c.total_reward) < 1e-9);
  assert.equal(b1.steps.length, 1);
});

test("model == ref: every reward is exactly 0", () => {
  const c = scoreCredit(policy, policy, tok, SOLUTION, { prompt: PROMPT });
  assert.ok(c.tokens.every((t) => t.reward === 0));
  assert.ok(c.steps.every((s) => s.reward === 0));
  assert.equal(c.total_reward, 0);
  assert.match(creditHtml(c), /background:rgb\(255,255,255\)/); // a zero scale draws white, not NaN
});

test("tokenRewards is the one formula: a Credit's tokens and scoreSequence's (stepwise score, the dashboard) agree exactly", () => {
  assert.deepEqual([...tokenRewards([-1, -2.5], [-1.5, -2], 0.5)], [0.25, -0.25]);
  assert.throws(() => tokenRewards([-1], [-1, -2], 0.1), /log-probs of 1 tokens/);
  const c = scoreCredit(policy, ref, tok, SOLUTION, { beta: 0.3 });
  const s = scoreSequence(policy, ref, tok, tok.encode(SOLUTION), 0.3);
  const bos = tok.encode(SOLUTION)[0];
  assert.deepEqual(s.tokens[0], { id: bos, text: tok.tokenText(bos), logprob: null, reward: null });
  assert.deepEqual(
    c.tokens.map((t) => [t.id, t.logprob, t.reward]),
    s.tokens.slice(1).map((t) => [t.id, t.logprob, t.reward]),
  );
  const plain = scoreSequence(policy, null, tok, tok.encode(SOLUTION), 0.3);
  assert.ok(
    plain.tokens.every((t) => !("reward" in t)) && !("total_reward" in plain),
    "no reference: no reward fields",
  );
  assert.equal(plain.total_logprob, s.total_logprob);
});

test("stepRewards: sums per step by where each token starts", () => {
  const text = "a = 1\nb = 2\n#### 2";
  const tokens = [...text].map((_, i) => ({ start: i, reward: i, logprob: -1, ref_logprob: -2 }));
  const steps = stepRewards(tokens, text);
  assert.deepEqual(
    steps.map((s) => s.tokens),
    [6, 6, 6],
  );
  assert.deepEqual(
    steps.map((s) => s.reward),
    [0 + 1 + 2 + 3 + 4 + 5, 6 + 7 + 8 + 9 + 10 + 11, 12 + 13 + 14 + 15 + 16 + 17],
  );
  assert.deepEqual(
    steps.map((s) => s.logprob),
    [-6, -6, -6],
  );
  assert.equal(stepRewards([{ start: 0, reward: 1, logprob: 0, ref_logprob: 0 }], "  ").length, 1);
});

test("creditHtml: self-contained, every token's text escaped with a tooltip, step sums, legend", () => {
  const c = scoreCredit(policy, ref, tok, SOLUTION, { prompt: PROMPT });
  const html = creditHtml(c, { model: "pol<icy>", ref: "ref" });
  assert.match(html, /^<!DOCTYPE html>/);
  assert.doesNotMatch(html, /<script|<link|src=/); // nothing to fetch
  for (const t of c.tokens)
    assert.ok(html.includes(`>${escapeHtml(visibleText(t.text))}</span>`), JSON.stringify(t.text));
  assert.ok(!html.includes("<b>"));
  for (const e of ["&lt;", "&gt;", "&quot;"]) assert.ok(html.includes(`>${e}</span>`), e);
  assert.ok(html.includes("pens &amp; buys"));
  assert.ok(html.includes("pol&lt;icy&gt;"));
  assert.equal(
    (html.match(/<span style="background:rgb\(\d+,\d+,\d+\)" title="reward [+-]\d/g) ?? []).length,
    c.tokens.length,
  );
  c.steps.forEach((s) =>
    assert.ok(html.includes(`step ${s.index + 1}: ${s.reward >= 0 ? "+" : ""}${s.reward.toFixed(4)}`)),
  );
  assert.match(html, /class="legend"/);
  assert.ok(html.includes(escapeHtml(PROMPT.trim())));
});

test("colours: red below 0, green above, white at 0; terminal picture in 24-bit and 256 colours; table plain", () => {
  assert.deepEqual(rewardColor(0, 1), [255, 255, 255]);
  assert.deepEqual(rewardColor(-1, 1), [220, 38, 38]);
  assert.deepEqual(rewardColor(2, 1), [22, 163, 74]);
  const [r, g] = rewardColor(-0.5, 1);
  assert.ok(r > g);
  const c = scoreCredit(policy, ref, tok, SOLUTION, { prompt: PROMPT });
  const ansi = creditAnsi(c, "truecolor");
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matches the ANSI escape the renderer writes
  assert.match(ansi, /\x1b\[30;48;2;\d+;\d+;\d+m/);
  assert.equal(ansi.split("\n").filter((l) => l.includes("[step ")).length, c.steps.length);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matches the ANSI escape the renderer writes
  assert.match(creditAnsi(c, "256"), /\x1b\[30;48;5;\d+m/);
  const table = creditTable(c);
  assert.ok(!table.includes("\x1b"), "the plain table has no ANSI escapes");
  assert.match(table, /total reward [+-]\d+\.\d{4}/);
});
