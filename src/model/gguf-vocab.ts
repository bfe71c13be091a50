// Tokenizers <-> GGUF tokenizer metadata (tokenizer.ggml.*), both ways:
//
// - export: a TextTokenizer (tokenizer.json) -> the keys llama.cpp reads. Byte-level BPE tokenizers (GPT-2,
//   Llama 3, Qwen2, SmolLM2) are written as tokenizer.ggml.model "gpt2" with their tokens, merges and the name
//   llama.cpp gives their pre-tokenizer. Character-level BPE tokenizers without merges (our built-in one) are
//   written the same way: each character becomes its GPT-2 byte-level spelling ("Ġ" for a space, "Ċ" for a
//   newline), and a character of several UTF-8 bytes gets merges that join its bytes, so llama.cpp produces the
//   same ids. Characters outside the vocabulary differ: <unk> here, dropped by llama.cpp.
// - import: a GGUF vocabulary (a model file or llama.cpp's vocab-only GGUFs) -> tokenizer.json and
//   tokenizer_config.json objects that @huggingface/tokenizers loads with the same ids as llama.cpp.
//
// Pre-tokenizers are matched by their split regex, written as tokenizer.json spells it.

import { InputError } from "../core/errors.js";
import type { GgufMetadata, GgufValue } from "./gguf.js";
import type { TextTokenizer } from "./tokenizer.js";

type Json = Record<string, unknown>;

/** llama.cpp's token types (tokenizer.ggml.token_type). */
export const TOKEN_TYPE = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;

// Split regexes of the byte-level pre-tokenizers, as in the models' tokenizer.json files.
const QWEN2_SPLIT =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const LLAMA3_SPLIT =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** A byte-level pre-tokenizer llama.cpp knows by name, as tokenizer.json writes it. */
interface PreTokenizer {
  names: string[]; // llama.cpp's names; the first is written on export
  json: Json; // tokenizer.json "pre_tokenizer"
  ignoreMerges: boolean; // a word that is itself a token is not split (Llama 3)
  addBos: boolean; // llama.cpp's default when the GGUF has no add_bos_token
  alike?: Json[]; // other tokenizer.json spellings exported under this name
}

const byteLevel = (useRegex: boolean): Json => ({
  type: "ByteLevel",
  add_prefix_space: false,
  trim_offsets: true,
  use_regex: useRegex,
});
const isolate = (regex: string): Json => ({
  type: "Split",
  pattern: { Regex: regex },
  behavior: "Isolated",
  invert: false,
});
const splitThenBytes = (regex: string): Json => ({
  type: "Sequence",
  pretokenizers: [isolate(regex), byteLevel(false)],
});

// llama.cpp's "default" pre-tokenizer: four regexes applied in turn, each splitting the pieces of the one before.
const DEFAULT_SPLITS = [
  "[\\p{P}\\$\\+<=>\\^~\\|]+",
  "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
  "\\p{N}+",
  "[0-9][0-9][0-9]",
];

const PRE_TOKENIZERS: PreTokenizer[] = [
  { names: ["qwen2", "deepseek-r1-qwen"], json: splitThenBytes(QWEN2_SPLIT), ignoreMerges: false, addBos: false },
  { names: ["llama-bpe", "llama3", "llama-v3"], json: splitThenBytes(LLAMA3_SPLIT), ignoreMerges: true, addBos: true },
  { names: ["gpt-2"], json: byteLevel(true), ignoreMerges: false, addBos: false },
  {
    // SmolLM2's tokenizer.json isolates digits with Digits, which @huggingface/tokenizers (JS) applies to 0-9
    // only; llama.cpp (and Python) isolate every \p{N} character (e.g. "½"), as this Split does.
    names: ["smollm", "starcoder"],
    ignoreMerges: false,
    addBos: false,
    json: { type: "Sequence", pretokenizers: [isolate("\\p{N}"), byteLevel(true)] },
    alike: [{ type: "Sequence", pretokenizers: [{ type: "Digits", individual_digits: true }, byteLevel(true)] }],
  },
  {
    names: ["default"],
    ignoreMerges: false,
    addBos: false,
    json: {
      type: "Sequence",
      pretokenizers: [...DEFAULT_SPLITS.map(isolate), byteLevel(false)],
    },
  },
];

/** The tokenizer.json pre_tokenizer that llama.cpp's pre-tokenizer `name` stands for. */
export function preTokenizerJson(name: string): Json {
  const p = PRE_TOKENIZERS.find((x) => x.names.includes(name));
  if (!p)
    throw new InputError(
      `unknown pre-tokenizer "${name}"`,
      undefined,
      `known: ${PRE_TOKENIZERS.flatMap((x) => x.names).join(", ")}`,
    );
  return structuredClone(p.json);
}

/** The pre-tokenizer of a tokenizer.json, compared on what changes the split (not offsets options). */
function matchPreTokenizer(pt: unknown): PreTokenizer | null {
  const key = (p: unknown): string => {
    const j = (p ?? {}) as Json;
    switch (j.type) {
      case "ByteLevel":
        return `ByteLevel(${j.add_prefix_space === true},${j.use_regex !== false})`;
      case "Split":
        return `Split(${JSON.stringify(j.pattern)},${j.behavior},${j.invert === true})`;
      case "Digits":
        return `Digits(${j.individual_digits === true})`;
      case "Sequence":
        return `Sequence(${((j.pretokenizers ?? []) as unknown[]).map(key).join(",")})`;
      default:
        return JSON.stringify(j);
    }
  };
  const k = key(pt);
  return PRE_TOKENIZERS.find((p) => [p.json, ...(p.alike ?? [])].some((j) => key(j) === k)) ?? null;
}

// --- GPT-2 byte-level alphabet ---

/** Byte -> the character GPT-2's byte-level BPE writes for it: printable Latin-1 stays, the rest moves to U+0100+. */
function byteAlphabet(): string[] {
  const chars: string[] = new Array(256);
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    chars[b] = String.fromCodePoint(printable ? b : next++);
  }
  return chars;
}
const BYTE_CHARS = byteAlphabet();

/** The byte-level character of each byte 0..255. */
export function byteLevelAlphabet(): readonly string[] {
  return BYTE_CHARS;
}

/** The byte-level spelling of a text: one character per UTF-8 byte. */
export function byteLevelSpelling(text: string): string {
  return [...Buffer.from(text, "utf8")].map((b) => BYTE_CHARS[b]).join("");
}

// --- export ---

interface GgufVocab {
  tokens: string[];
  types: number[];
  merges: string[];
  pre: string;
}

/** Added tokens by id, with their type. */
function addedTokens(json: Json): Map<number, { content: string; type: number }> {
  const out = new Map<number, { content: string; type: number }>();
  for (const a of (json.added_tokens ?? []) as Json[]) {
    out.set(a.id as number, {
      content: a.content as string,
      type: a.special ? TOKEN_TYPE.control : TOKEN_TYPE.userDefined,
    });
  }
  return out;
}

function mergeStrings(merges: unknown[]): string[] {
  return merges.map((m) => (Array.isArray(m) ? `${m[0]} ${m[1]}` : String(m)));
}

/** Tokens, types, merges and pre-tokenizer name of a tokenizer.json, or an error saying why it cannot be written. */
function vocabForGguf(tok: TextTokenizer, vocabSize: number): GgufVocab {
  const json = tok.json;
  const model = (json.model ?? {}) as Json;
  const where = tok.where;
  if (model.type !== "BPE") {
    throw new InputError(
      `tokenizer model "${String(model.type)}" cannot be exported to GGUF`,
      where,
      "only BPE tokenizers are supported",
    );
  }
  const normalizer = json.normalizer as Json | null;
  // Qwen2 normalizes to NFC; llama.cpp does not (as its own converter): ids differ only on non-NFC text.
  if (normalizer && normalizer.type !== "NFC") {
    throw new InputError(`normalizer "${String(normalizer.type)}" is not supported for GGUF export`, where);
  }
  if (model.byte_fallback === true) {
    throw new InputError("byte-fallback (SentencePiece-style) BPE cannot be exported to GGUF yet", where);
  }
  if (tok.vocabSize > vocabSize) {
    throw new InputError(`the tokenizer has ${tok.vocabSize} tokens, the model's vocab_size is ${vocabSize}`, where);
  }
  const vocab = tok.hf.get_vocab(true);
  const added = addedTokens(json);
  const byteLevelModel = json.pre_tokenizer != null || (json.decoder as Json | null)?.type === "ByteLevel";
  const merges = mergeStrings((model.merges ?? []) as unknown[]);
  let pre: string;
  const spell = byteLevelModel ? (t: string) => t : byteLevelSpelling;
  if (byteLevelModel) {
    const p = matchPreTokenizer(json.pre_tokenizer);
    if (!p) {
      throw new InputError(
        `pre-tokenizer ${JSON.stringify(json.pre_tokenizer)} has no llama.cpp equivalent`,
        where,
        `supported: ${PRE_TOKENIZERS.map((x) => x.names[0]).join(", ")} (byte-level BPE)`,
      );
    }
    pre = p.names[0];
  } else {
    // Character-level: with no merges every character is a token, which llama.cpp reproduces with merges that
    // join the bytes of each multi-byte character.
    if (merges.length > 0) {
      throw new InputError(
        "a BPE tokenizer with merges but no byte-level pre-tokenizer cannot be exported to GGUF",
        where,
      );
    }
    pre = "default";
  }
  const tokens: string[] = [];
  const types: number[] = [];
  const charMerges = new Set<string>();
  const byId = new Map<number, string>();
  for (const [t, id] of vocab) byId.set(id, t);
  for (let id = 0; id < vocabSize; id++) {
    const t = byId.get(id);
    const a = added.get(id);
    if (a) {
      tokens.push(a.content);
      types.push(a.type);
    } else if (t === undefined) {
      tokens.push(`[PAD${id}]`); // ids the model has and the tokenizer does not
      types.push(TOKEN_TYPE.unused);
    } else {
      if (!byteLevelModel && [...t].length !== 1) {
        throw new InputError(`character-level token ${JSON.stringify(t)} (id ${id}) is not one character`, where);
      }
      const s = spell(t);
      tokens.push(s);
      types.push(TOKEN_TYPE.normal);
      if (!byteLevelModel) for (let k = 2; k <= s.length; k++) charMerges.add(`${s.slice(0, k - 1)} ${s[k - 1]}`);
    }
  }
  return { tokens, types, merges: byteLevelModel ? merges : [...charMerges], pre };
}

/**
 * The tokenizer.ggml.* metadata (and tokenizer.chat_template) of a tokenizer, padded to the model's vocab_size
 * with unused [PADn] tokens. Throws naming what llama.cpp could not reproduce.
 */
export function ggufTokenizerMetadata(tok: TextTokenizer, vocabSize: number): GgufMetadata {
  const v = vocabForGguf(tok, vocabSize);
  const m: GgufMetadata = new Map();
  const u32 = (value: number): GgufValue => ({ type: "u32", value });
  m.set("tokenizer.ggml.model", { type: "string", value: "gpt2" });
  m.set("tokenizer.ggml.pre", { type: "string", value: v.pre });
  m.set("tokenizer.ggml.tokens", { type: "array", itemType: "string", value: v.tokens });
  m.set("tokenizer.ggml.token_type", { type: "array", itemType: "i32", value: v.types });
  m.set("tokenizer.ggml.merges", { type: "array", itemType: "string", value: v.merges });
  const unk = (tok.json.model as Json).unk_token;
  const unkId = typeof unk === "string" ? tok.hf.token_to_id(unk) : undefined;
  if (tok.bosId !== null) m.set("tokenizer.ggml.bos_token_id", u32(tok.bosId));
  if (tok.eosId !== null) m.set("tokenizer.ggml.eos_token_id", u32(tok.eosId));
  if (unkId !== undefined) m.set("tokenizer.ggml.unknown_token_id", u32(unkId));
  if (tok.padId !== null) m.set("tokenizer.ggml.padding_token_id", u32(tok.padId));
  const only = (ids: number[], id: number | null, what: string) => {
    if (ids.length === 0) return false;
    if (ids.length === 1 && ids[0] === id) return true;
    throw new InputError(
      `the post-processor adds ids [${ids.join(", ")}] ${what} a text; llama.cpp can add only the ` +
        `${what === "before" ? "BOS" : "EOS"} token`,
      tok.where,
    );
  };
  m.set("tokenizer.ggml.add_bos_token", { type: "bool", value: only(tok.prefixIds, tok.bosId, "before") });
  m.set("tokenizer.ggml.add_eos_token", { type: "bool", value: only(tok.suffixIds, tok.eosId, "after") });
  const template = tok.chatTemplate;
  if (template !== null) m.set("tokenizer.chat_template", { type: "string", value: template });
  return m;
}

// --- import ---

function strings(m: GgufMetadata, key: string, where: string, required = true): string[] {
  const v = m.get(key);
  if (v === undefined && !required) return [];
  if (v?.type !== "array" || v.itemType !== "string")
    throw new InputError(`metadata "${key}" is missing or not a string array`, where);
  return v.value as string[];
}

function optNumber(m: GgufMetadata, key: string): number | null {
  const v = m.get(key);
  return v !== undefined && typeof v.value === "number" ? v.value : null;
}

/**
 * tokenizer.json and tokenizer_config.json objects for a GGUF vocabulary (tokenizer.ggml.model "gpt2" with a
 * pre-tokenizer we know), such that @huggingface/tokenizers gives llama.cpp's ids. Control tokens become special
 * added tokens, user-defined ones plain added tokens (both are matched in text, as llama.cpp does when it parses
 * special tokens). There is no normalizer, as in llama.cpp.
 */
export function tokenizerFilesFromGguf(m: GgufMetadata, where = "GGUF"): { json: Json; config: Json } {
  const model = m.get("tokenizer.ggml.model")?.value;
  if (model !== "gpt2") {
    throw new InputError(
      `tokenizer.ggml.model "${String(model)}" is not supported`,
      where,
      'only byte-level BPE ("gpt2") vocabularies are',
    );
  }
  const preName = String(m.get("tokenizer.ggml.pre")?.value ?? "default");
  const pre = PRE_TOKENIZERS.find((p) => p.names.includes(preName));
  if (!pre) {
    throw new InputError(
      `pre-tokenizer "${preName}" has no tokenizer.json equivalent here`,
      where,
      `supported: ${PRE_TOKENIZERS.flatMap((p) => p.names).join(", ")}`,
    );
  }
  const tokens = strings(m, "tokenizer.ggml.tokens", where);
  const typesV = m.get("tokenizer.ggml.token_type");
  const types = (typesV?.type === "array" ? typesV.value : []) as number[];
  const vocab: Record<string, number> = Object.create(null); // a token may be spelled "__proto__"
  const added: Json[] = [];
  tokens.forEach((t, id) => {
    if (!Object.hasOwn(vocab, t)) vocab[t] = id;
    const type = types[id] ?? TOKEN_TYPE.normal;
    if (type === TOKEN_TYPE.control || type === TOKEN_TYPE.userDefined) {
      added.push({
        id,
        content: t,
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: type === TOKEN_TYPE.control,
      });
    }
  });
  const merges = strings(m, "tokenizer.ggml.merges", where, false).map((s) => {
    const at = s.indexOf(" ", 1); // as llama.cpp: the first space after the first character
    return at < 0 ? [s, ""] : [s.slice(0, at), s.slice(at + 1)];
  });
  const name = (id: number | null) => (id === null || id >= tokens.length ? null : tokens[id]);
  const bos = name(optNumber(m, "tokenizer.ggml.bos_token_id"));
  const eos = name(optNumber(m, "tokenizer.ggml.eos_token_id"));
  const addBosV = m.get("tokenizer.ggml.add_bos_token");
  const addEosV = m.get("tokenizer.ggml.add_eos_token");
  const addBos = bos !== null && (addBosV?.type === "bool" ? addBosV.value : pre.addBos);
  const addEos = eos !== null && addEosV?.type === "bool" && addEosV.value;
  const json: Json = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: pre.json,
    post_processor: postProcessor(addBos ? bos : null, addEos ? eos : null, tokens),
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: pre.ignoreMerges,
      vocab,
      merges,
    },
  };
  const template = m.get("tokenizer.chat_template");
  const config: Json = {
    tokenizer_class: "PreTrainedTokenizerFast",
    bos_token: bos,
    eos_token: eos,
    pad_token: name(optNumber(m, "tokenizer.ggml.padding_token_id")),
    unk_token: name(optNumber(m, "tokenizer.ggml.unknown_token_id")),
    add_bos_token: addBos,
    add_eos_token: addEos,
    clean_up_tokenization_spaces: false,
    ...(template?.type === "string" ? { chat_template: template.value } : {}),
  };
  return { json, config };
}

/** A TemplateProcessing post-processor that adds BOS before and/or EOS after a text, or null for neither. */
function postProcessor(bos: string | null, eos: string | null, tokens: string[]): Json | null {
  if (bos === null && eos === null) return null;
  const special = (t: string, typeId: number) => ({ SpecialToken: { id: t, type_id: typeId } });
  const seq = (s: string, typeId: number) => ({ Sequence: { id: s, type_id: typeId } });
  const around = (s: string, typeId: number) => [
    ...(bos !== null ? [special(bos, typeId)] : []),
    seq(s, typeId),
    ...(eos !== null ? [special(eos, typeId)] : []),
  ];
  const specials: Json = {};
  for (const t of [bos, eos]) if (t !== null) specials[t] = { id: t, ids: [tokens.indexOf(t)], tokens: [t] };
  return {
    type: "TemplateProcessing",
    single: around("A", 0),
    pair: [...around("A", 0), ...around("B", 1)],
    special_tokens: specials,
  };
}
