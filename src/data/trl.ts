// TRL's dataset formats, recognised record by record (pure: no tokenizer here; src/train/data.ts tokenizes).
//
// Preference (DPO):
//   standard, explicit prompt     {"prompt": str, "chosen": str, "rejected": str}
//   standard, implicit prompt     {"chosen": str, "rejected": str}: the prompt is their common prefix
//   conversational, explicit      {"prompt": [msg], "chosen": [msg], "rejected": [msg]}
//   conversational, implicit      {"chosen": [msg], "rejected": [msg]}: the prompt is their common leading messages
// SFT:
//   prompt-completion             {"prompt": str, "completion": str} or both lists of messages
//   language modeling             {"text": str} or {"messages": [msg]}
// where msg is {"role": str, "content": str} (other keys are kept for the chat template). As TRL's
// maybe_extract_prompt does, a string "prompt" beside conversational chosen/rejected (HuggingFaceH4's
// ultrafeedback_binarized has one) is taken as the implicit case: the conversations hold the prompt already.
// An implicit prompt follows TRL's extract_prompt: the shared prefix (code points, or whole messages), a space just
// before the split going to the completions, and where one side is a prefix of the other, the shorter side's last
// element stays a completion. A bad record is a Bad naming the key at fault; the caller adds file and line.

export interface Message {
  role: string;
  content: string;
  [key: string]: unknown;
}

export interface Bad {
  bad: string;
}

export type Preference =
  | { conversational: false; prompt: string; chosen: string; rejected: string; implicit: boolean }
  | { conversational: true; prompt: Message[]; chosen: Message[]; rejected: Message[]; implicit: boolean };

export type SftRecord =
  | { kind: "prompt-completion"; conversational: false; prompt: string; completion: string }
  | { kind: "prompt-completion"; conversational: true; prompt: Message[]; completion: Message[] }
  | { kind: "text"; text: string }
  | { kind: "messages"; messages: Message[] };

export function isBad(x: unknown): x is Bad {
  return typeof x === "object" && x !== null && typeof (x as Bad).bad === "string";
}

const absent = (v: unknown) => v === undefined || v === null;

/** A list of {role, content} messages under `key`, or what is wrong with it. */
export function messagesOf(v: unknown, key: string): Message[] | Bad {
  if (!Array.isArray(v)) return { bad: `"${key}" must be a string or a list of {role, content} messages` };
  if (v.length === 0) return { bad: `"${key}" is an empty list of messages` };
  for (let i = 0; i < v.length; i++) {
    const m = v[i] as Record<string, unknown> | null;
    if (typeof m !== "object" || m === null || Array.isArray(m))
      return { bad: `"${key}" message ${i} is not an object` };
    if (typeof m.role !== "string") return { bad: `"${key}" message ${i} has no string "role"` };
    if (typeof m.content !== "string") return { bad: `"${key}" message ${i} has no string "content"` };
  }
  return v as Message[];
}

/** A preference record in any of TRL's four formats, its prompt made explicit. */
export function parsePreference(value: Record<string, unknown>): Preference | Bad {
  const { prompt, chosen, rejected } = value;
  const missing = (["chosen", "rejected"] as const).filter((k) => absent(value[k]));
  if (missing.length)
    return { bad: `missing or non-string field${missing.length > 1 ? "s" : ""} ${missing.join(", ")}` };
  if (Array.isArray(chosen) !== Array.isArray(rejected)) {
    return { bad: `"chosen" and "rejected" must both be strings or both lists of messages` };
  }
  if (!Array.isArray(chosen)) {
    const wrong = (["prompt", "chosen", "rejected"] as const).filter(
      (k) => !absent(value[k]) && typeof value[k] !== "string",
    );
    if (wrong.length) return { bad: `missing or non-string field${wrong.length > 1 ? "s" : ""} ${wrong.join(", ")}` };
    if (typeof prompt === "string")
      return { conversational: false, prompt, chosen: chosen as string, rejected: rejected as string, implicit: false };
    const split = extractPrompt([...(chosen as string)], [...(rejected as string)], (a, b) => a === b);
    if (isBad(split)) return split;
    return {
      conversational: false,
      prompt: split.prompt.join(""),
      chosen: split.chosen.join(""),
      rejected: split.rejected.join(""),
      implicit: true,
    };
  }
  const c = messagesOf(chosen, "chosen");
  const r = messagesOf(rejected, "rejected");
  if (isBad(c)) return c;
  if (isBad(r)) return r;
  if (Array.isArray(prompt)) {
    const p = messagesOf(prompt, "prompt");
    return isBad(p) ? p : { conversational: true, prompt: p, chosen: c, rejected: r, implicit: false };
  }
  const split = extractPrompt(c, r, sameJson);
  if (isBad(split)) return split;
  if (split.prompt.length === 0)
    return { bad: `"chosen" and "rejected" share no leading message to take as the prompt` };
  return { conversational: true, ...split, implicit: true };
}

/** TRL's extract_prompt over code points or messages (see the top of the file). */
export function extractPrompt<T>(
  chosen: T[],
  rejected: T[],
  same: (a: T, b: T) => boolean,
): { prompt: T[]; chosen: T[]; rejected: T[] } | Bad {
  const m = Math.min(chosen.length, rejected.length);
  if (m === 0) return { bad: `empty ${chosen.length === 0 ? "chosen" : "rejected"} completion` };
  let at = 0;
  while (at < m && same(chosen[at], rejected[at])) at++;
  if (at === m)
    at = m - 1; // one side is a prefix of the other: its last element stays a completion
  else if (at > 0 && chosen[at - 1] === " ") at--; // the space before the split goes with the completions
  return { prompt: chosen.slice(0, at), chosen: chosen.slice(at), rejected: rejected.slice(at) };
}

/** Deep equality of JSON values (object keys in any order): Python's == on the dicts of a dataset row. */
function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return (
    ka.length === kb.length &&
    ka.every((k) => k in b && sameJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
  );
}

/** An SFT record in TRL's prompt-completion or language-modeling formats (question/answer is the caller's). */
export function parseSft(value: Record<string, unknown>): SftRecord | Bad {
  const { prompt, completion, messages, text } = value;
  if (!absent(prompt) || !absent(completion)) {
    if (typeof prompt === "string" && typeof completion === "string") {
      return { kind: "prompt-completion", conversational: false, prompt, completion };
    }
    if (Array.isArray(prompt) && Array.isArray(completion)) {
      const p = messagesOf(prompt, "prompt");
      const c = messagesOf(completion, "completion");
      if (isBad(p)) return p;
      return isBad(c) ? c : { kind: "prompt-completion", conversational: true, prompt: p, completion: c };
    }
    return { bad: `"prompt" and "completion" must both be strings or both lists of messages` };
  }
  if (!absent(messages)) {
    const m = messagesOf(messages, "messages");
    return isBad(m) ? m : { kind: "messages", messages: m };
  }
  if (typeof text === "string") return { kind: "text", text };
  return { bad: `needs "question" and "answer", "prompt" and "completion", "messages", or "text"` };
}

/**
 * What a record gives the chat template besides the messages, as TRL passes it: "tools" (a list, or JSON text of
 * one) and the keys of "chat_template_kwargs".
 */
export function templateExtra(value: Record<string, unknown>): Record<string, unknown> | Bad {
  const extra: Record<string, unknown> = {};
  let tools = value.tools;
  if (typeof tools === "string") {
    try {
      tools = JSON.parse(tools);
    } catch {
      return { bad: `"tools" is a string but not JSON` };
    }
  }
  if (Array.isArray(tools) && tools.length > 0) extra.tools = tools;
  const kw = value.chat_template_kwargs;
  if (!absent(kw)) {
    if (typeof kw !== "object" || Array.isArray(kw)) return { bad: `"chat_template_kwargs" must be an object` };
    Object.assign(extra, kw);
  }
  return extra;
}
