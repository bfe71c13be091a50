// TRL's dataset formats (issue #17, item 1): each preference and SFT format is recognised, an implicit prompt is
// split as TRL's extract_prompt splits it (the cases below were worked by hand from trl 1.16's data_utils; the one
// place where stepwise differs is marked), and a bad record names the key at fault.

import assert from "node:assert/strict";
import { test } from "node:test";
import { extractPrompt, isBad, parsePreference, parseSft, templateExtra, type Bad } from "./trl.js";

const user = (content: string) => ({ role: "user", content });
const bot = (content: string) => ({ role: "assistant", content });

function badOf(x: unknown): string {
  assert.ok(isBad(x), `expected a bad record, got ${JSON.stringify(x)}`);
  return (x as Bad).bad;
}

test("standard preference, explicit prompt: the strings as they are", () => {
  assert.deepEqual(parsePreference({ prompt: "2+3=", chosen: "5", rejected: "6", id: "x" }), {
    conversational: false,
    prompt: "2+3=",
    chosen: "5",
    rejected: "6",
    implicit: false,
  });
});

test("standard preference, implicit prompt: the common prefix, the space before the split going to the completions", () => {
  assert.deepEqual(parsePreference({ chosen: "The sky is blue.", rejected: "The sky is green." }), {
    conversational: false,
    prompt: "The sky is",
    chosen: " blue.",
    rejected: " green.",
    implicit: true,
  });
  // no space at the split: the prefix is the prompt
  assert.deepEqual(parsePreference({ chosen: "2+3=5", rejected: "2+3=6" }), {
    conversational: false,
    prompt: "2+3=",
    chosen: "5",
    rejected: "6",
    implicit: true,
  });
  // null counts as absent, as a missing parquet column value does
  assert.equal((parsePreference({ prompt: null, chosen: "ab", rejected: "ac" }) as { prompt: string }).prompt, "a");
});

test("extract_prompt edge cases: one side a prefix of the other, equal sides, nothing shared, code points", () => {
  const chars = (a: string, b: string) => {
    const r = extractPrompt([...a], [...b], (x, y) => x === y);
    return isBad(r) ? r : [r.prompt.join(""), r.chosen.join(""), r.rejected.join("")];
  };
  assert.deepEqual(chars("abc", "abcd"), ["ab", "c", "cd"], "the shorter side keeps its last character");
  assert.deepEqual(chars("abcd", "abc"), ["ab", "cd", "c"]);
  assert.deepEqual(chars("ab", "ab"), ["a", "b", "b"]);
  assert.deepEqual(chars("x", "y"), ["", "x", "y"], "nothing shared: an empty prompt");
  // TRL's loop would look at chosen[-1] here (Python's last character) and move the split to -1; there is no
  // space before a split at 0, so the prompt stays empty
  assert.deepEqual(chars("yes ", "no "), ["", "yes ", "no "]);
  // 😀 and 😁 share their first UTF-16 unit; the split is between code points, never inside one
  assert.deepEqual(chars("x😀", "x😁"), ["x", "😀", "😁"]);
  assert.match(badOf(chars("", "a")), /empty chosen completion/);
  assert.match(badOf(parsePreference({ chosen: "a", rejected: "" })), /empty rejected completion/);
});

test("conversational preference, explicit prompt", () => {
  const r = { prompt: [user("2+3?")], chosen: [bot("5")], rejected: [bot("6")] };
  assert.deepEqual(parsePreference(r), { conversational: true, ...r, implicit: false });
});

test("conversational preference, implicit prompt: the leading messages both sides share", () => {
  const sys = { role: "system", content: "Be brief." };
  const got = parsePreference({
    chosen: [sys, user("2+3?"), bot("5")],
    // the same message with its keys in another order is the same message (Python's == on dicts)
    rejected: [{ content: "Be brief.", role: "system" }, user("2+3?"), bot("6")],
  });
  assert.deepEqual(got, {
    conversational: true,
    prompt: [sys, user("2+3?")],
    chosen: [bot("5")],
    rejected: [bot("6")],
    implicit: true,
  });
  // one side continues the other: the shorter one's last message stays its completion
  const longer = parsePreference({
    chosen: [user("a"), bot("b")],
    rejected: [user("a"), bot("b"), user("c"), bot("d")],
  });
  assert.deepEqual(longer, {
    conversational: true,
    prompt: [user("a")],
    chosen: [bot("b")],
    rejected: [bot("b"), user("c"), bot("d")],
    implicit: true,
  });
});

test("a string prompt beside conversations (ultrafeedback_binarized) is implicit: the conversations hold it", () => {
  const got = parsePreference({ prompt: "2+3?", chosen: [user("2+3?"), bot("5")], rejected: [user("2+3?"), bot("6")] });
  assert.deepEqual(got, {
    conversational: true,
    prompt: [user("2+3?")],
    chosen: [bot("5")],
    rejected: [bot("6")],
    implicit: true,
  });
});

test("bad preference records name the key at fault", () => {
  assert.match(badOf(parsePreference({ prompt: "x", chosen: "y" })), /^missing or non-string field rejected$/);
  assert.match(badOf(parsePreference({ prompt: "x" })), /^missing or non-string fields chosen, rejected$/);
  assert.match(
    badOf(parsePreference({ prompt: 3, chosen: "y", rejected: "z" })),
    /^missing or non-string field prompt$/,
  );
  assert.match(badOf(parsePreference({ chosen: "y", rejected: [bot("z")] })), /"chosen" and "rejected" must both be/);
  assert.match(
    badOf(parsePreference({ chosen: [user("a"), bot("b")], rejected: [user("a"), { role: "assistant" }] })),
    /"rejected" message 1 has no string "content"/,
  );
  assert.match(badOf(parsePreference({ chosen: [user("a")], rejected: [7] })), /"rejected" message 0 is not an object/);
  assert.match(badOf(parsePreference({ chosen: [], rejected: [bot("b")] })), /"chosen" is an empty list of messages/);
  assert.match(
    badOf(parsePreference({ prompt: [{ content: "q" }], chosen: [bot("a")], rejected: [bot("b")] })),
    /"prompt" message 0 has no string "role"/,
  );
  assert.match(
    badOf(parsePreference({ chosen: [user("a"), bot("b")], rejected: [user("c"), bot("b")] })),
    /share no leading message/,
  );
});

test("SFT formats: prompt-completion (strings or messages), text, messages", () => {
  assert.deepEqual(parseSft({ prompt: "2+3=", completion: "5" }), {
    kind: "prompt-completion",
    conversational: false,
    prompt: "2+3=",
    completion: "5",
  });
  assert.deepEqual(parseSft({ prompt: [user("2+3?")], completion: [bot("5")] }), {
    kind: "prompt-completion",
    conversational: true,
    prompt: [user("2+3?")],
    completion: [bot("5")],
  });
  assert.deepEqual(parseSft({ text: "The sky is blue." }), { kind: "text", text: "The sky is blue." });
  const messages = [user("2+3?"), { role: "assistant", content: "5", tool_calls: null }];
  assert.deepEqual(parseSft({ messages }), { kind: "messages", messages }, "other keys stay for the template");
});

test("bad SFT records name the key at fault", () => {
  assert.match(badOf(parseSft({ prompt: "2+3=" })), /"prompt" and "completion" must both be strings or both lists/);
  assert.match(badOf(parseSft({ prompt: "q", completion: [bot("a")] })), /must both be strings or both lists/);
  assert.match(
    badOf(parseSft({ prompt: [user("q")], completion: [{ role: "assistant", content: 5 }] })),
    /"completion" message 0 has no string "content"/,
  );
  assert.match(badOf(parseSft({ messages: "hello" })), /"messages" must be a string or a list/);
  assert.match(
    badOf(parseSft({ text: 3 })),
    /needs "question" and "answer", "prompt" and "completion", "messages", or "text"/,
  );
});

test("templateExtra: tools (a list or JSON text of one) and chat_template_kwargs, as TRL passes them", () => {
  const tool = { type: "function", function: { name: "add" } };
  assert.deepEqual(templateExtra({ tools: [tool], chat_template_kwargs: { enable_thinking: false } }), {
    tools: [tool],
    enable_thinking: false,
  });
  assert.deepEqual(templateExtra({ tools: JSON.stringify([tool]) }), { tools: [tool] });
  assert.deepEqual(templateExtra({ tools: null, chat_template_kwargs: null }), {});
  assert.deepEqual(templateExtra({ tools: [] }), {});
  assert.match(badOf(templateExtra({ tools: "[oops" })), /"tools" is a string but not JSON/);
  assert.match(badOf(templateExtra({ chat_template_kwargs: [1] })), /"chat_template_kwargs" must be an object/);
});
