// Tokenizers: Hugging Face `tokenizer.json` + `tokenizer_config.json` through @huggingface/tokenizers, chat
// templates through @huggingface/jinja, and the built-in character tokenizer of the built-in task.
//
// Special tokens are handled one way for every tokenizer: the ids its post-processor puts before and after a text
// (BOS for Llama, nothing for Qwen2) are found once by encoding a probe, and `encode` adds them itself unless the
// text already starts (ends) with them, so a chat template that writes its own BOS never gets a second one.

import { writeJsonAtomic } from "../core/atomic.js";
import fs from "node:fs";
import path from "node:path";
import { Template } from "@huggingface/jinja";
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { InputError } from "../core/errors.js";

type Json = Record<string, unknown>;

export interface ChatMessage {
  role: string; // "system" | "user" | "assistant" | ...
  content: string;
}

export interface EncodeOptions {
  addSpecialTokens?: boolean; // the post-processor's BOS/EOS, default true
}

/** The tokens of a prompt and of prompt + completion, for SFT and DPO masks. */
export interface PromptCompletion {
  ids: number[]; // prompt + completion (+ EOS)
  promptLength: number; // ids[0, promptLength) come from the prompt alone: the loss covers what follows
  prefixOk: boolean; // false when the prompt's own tokens are not a prefix of ids (a merge across the boundary)
}

/** A token string from tokenizer_config.json, where it may be a string or an AddedToken object {content}. */
function tokenString(v: unknown): string | null {
  if (typeof v === "string") return v;
  if (v && typeof v === "object" && typeof (v as Json).content === "string") return (v as Json).content as string;
  return null;
}

function readJson(file: string): Json {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    throw new InputError(`cannot read JSON (${(e as Error).message})`, file);
  }
}

export class TextTokenizer {
  readonly hf: HfTokenizer;
  readonly bosToken: string | null;
  readonly eosToken: string | null;
  readonly padToken: string | null;
  readonly bosId: number | null;
  readonly eosId: number | null;
  readonly padId: number | null;
  /** Ids the post-processor adds before / after a text (e.g. [BOS] / []). */
  readonly prefixIds: number[];
  readonly suffixIds: number[];
  readonly vocabSize: number; // largest id + 1, added tokens included

  constructor(
    readonly json: Json,
    readonly config: Json = {},
    readonly where = "tokenizer.json",
  ) {
    try {
      this.hf = new HfTokenizer(json, config);
    } catch (e) {
      throw new InputError(`cannot build the tokenizer (${(e as Error).message})`, where);
    }
    const id = (tok: string | null) => (tok === null ? null : (this.hf.token_to_id(tok) ?? null));
    this.bosToken = tokenString(config.bos_token);
    this.eosToken = tokenString(config.eos_token);
    this.padToken = tokenString(config.pad_token);
    this.bosId = id(this.bosToken);
    this.eosId = id(this.eosToken);
    this.padId = id(this.padToken);
    const vocab = this.hf.get_vocab(true);
    let maxId = -1; // a loop: spreading 150k ids into Math.max overflows the call stack
    for (const v of vocab.values()) if (v > maxId) maxId = v;
    this.vocabSize = maxId + 1;
    // Probe: the text's ids sit inside the post-processed ids; what is around them is added by the post-processor.
    const bare: number[] = this.hf.encode("a", { add_special_tokens: false }).ids;
    const full: number[] = this.hf.encode("a", { add_special_tokens: true }).ids;
    const at = full.findIndex((_, i) => bare.every((b, k) => full[i + k] === b));
    this.prefixIds = at < 0 ? [] : full.slice(0, at);
    this.suffixIds = at < 0 ? [] : full.slice(at + bare.length);
  }

  /**
   * Loads tokenizer.json (+ tokenizer_config.json when present) from a model folder. The chat template is read
   * from tokenizer_config.json, or from chat_template.jinja / chat_template.json where newer transformers put it.
   */
  static load(dir: string): TextTokenizer {
    const file = path.join(dir, "tokenizer.json");
    if (!fs.existsSync(file)) throw new InputError("no tokenizer.json in the model folder", dir);
    const cfgFile = path.join(dir, "tokenizer_config.json");
    const config = fs.existsSync(cfgFile) ? readJson(cfgFile) : {};
    const jinja = path.join(dir, "chat_template.jinja");
    const tplJson = path.join(dir, "chat_template.json");
    if (config.chat_template === undefined && fs.existsSync(jinja))
      config.chat_template = fs.readFileSync(jinja, "utf8");
    else if (config.chat_template === undefined && fs.existsSync(tplJson))
      config.chat_template = readJson(tplJson).chat_template;
    return new TextTokenizer(readJson(file), config, file);
  }

  /** Writes tokenizer.json and tokenizer_config.json into a model folder, each atomically. */
  save(dir: string): void {
    fs.mkdirSync(dir, { recursive: true });
    writeJsonAtomic(path.join(dir, "tokenizer.json"), this.json);
    writeJsonAtomic(path.join(dir, "tokenizer_config.json"), this.config);
  }

  /** Token ids of a text; special tokens the text already carries at either end are not added twice. */
  encode(text: string, opts: EncodeOptions = {}): number[] {
    const ids: number[] = this.hf.encode(text, { add_special_tokens: false }).ids;
    if (opts.addSpecialTokens === false) return ids;
    const startsWith = (p: number[]) => p.length > 0 && p.every((x, i) => ids[i] === x);
    const endsWith = (s: number[]) => s.length > 0 && s.every((x, i) => ids[ids.length - s.length + i] === x);
    return [
      ...(startsWith(this.prefixIds) ? [] : this.prefixIds),
      ...ids,
      ...(endsWith(this.suffixIds) ? [] : this.suffixIds),
    ];
  }

  /** Text of ids; clean_up_tokenization_spaces follows tokenizer_config.json (absent = false, as transformers 5). */
  decode(ids: number[], opts: { skipSpecialTokens?: boolean } = {}): string {
    if (ids.length === 0) return "";
    return this.hf.decode(ids, {
      skip_special_tokens: opts.skipSpecialTokens ?? true,
      clean_up_tokenization_spaces: this.config.clean_up_tokenization_spaces === true,
    });
  }

  /** The text of one token id (special tokens included), or "" for an unknown id. */
  tokenText(id: number): string {
    return this.hf.decode([id], { skip_special_tokens: false, clean_up_tokenization_spaces: false });
  }

  /** The chat template of tokenizer_config.json (a string, or the one named "default" in a list), or null. */
  get chatTemplate(): string | null {
    const t = this.config.chat_template;
    if (typeof t === "string") return t;
    if (Array.isArray(t)) {
      const named = t.find((x) => x?.name === "default") ?? t[0];
      return typeof named?.template === "string" ? named.template : null;
    }
    return null;
  }

  /** Renders messages with the chat template, as transformers' apply_chat_template(tokenize=False) does. */
  applyChatTemplate(messages: ChatMessage[], opts: { addGenerationPrompt?: boolean; extra?: Json } = {}): string {
    const source = this.chatTemplate;
    if (source === null) {
      throw new InputError(
        "has no chat_template",
        this.where.replace("tokenizer.json", "tokenizer_config.json"),
        "use a plain prompt, or add a chat_template to tokenizer_config.json",
      );
    }
    const specials: Json = {};
    for (const [k, v] of Object.entries(this.config))
      if (k.endsWith("_token") && tokenString(v) !== null) specials[k] = tokenString(v);
    try {
      return new Template(source).render({
        ...specials,
        messages,
        add_generation_prompt: opts.addGenerationPrompt ?? true,
        ...(opts.extra ?? {}),
      });
    } catch (e) {
      throw new InputError(`chat template failed: ${(e as Error).message}`, this.where);
    }
  }

  /** Ids of a rendered chat; like transformers, the template's own special tokens only (no post-processor). */
  encodeChat(messages: ChatMessage[], opts: { addGenerationPrompt?: boolean } = {}): number[] {
    return this.encode(this.applyChatTemplate(messages, opts), { addSpecialTokens: false });
  }

  /**
   * Tokens of prompt + completion (+ EOS unless addEos is false or the completion already ends with it), and how
   * many come from the prompt. When the prompt's own tokens are not a prefix of the joint tokens (a merge across
   * the boundary), warns and takes the longest common prefix as the prompt.
   */
  encodePromptCompletion(
    prompt: string,
    completion: string,
    opts: { addEos?: boolean; addSpecialTokens?: boolean; warn?: (msg: string) => void } = {},
  ): PromptCompletion {
    const special = { addSpecialTokens: opts.addSpecialTokens ?? true };
    const p = this.encode(prompt, special);
    const ids = this.encode(prompt + completion, special);
    // The post-processor's suffix (if any) belongs after the completion, not after the prompt.
    const promptIds =
      this.suffixIds.length > 0 && special.addSpecialTokens ? p.slice(0, p.length - this.suffixIds.length) : p;
    let common = 0;
    while (common < promptIds.length && common < ids.length && promptIds[common] === ids[common]) common++;
    const prefixOk = common === promptIds.length;
    if (!prefixOk) {
      const warn = opts.warn ?? ((m: string) => process.stderr.write(`${m}\n`));
      warn(
        `stepwise: the prompt's tokens are not a prefix of prompt+completion's (they differ at token ${common}: ` +
          `${JSON.stringify(this.tokenText(promptIds[common]))} vs ${JSON.stringify(this.tokenText(ids[common] ?? -1))}); ` +
          `the loss starts after the ${common} shared tokens`,
      );
    }
    if ((opts.addEos ?? true) && this.eosId !== null && ids.at(-1) !== this.eosId) ids.push(this.eosId);
    return { ids, promptLength: common, prefixOk };
  }
}

// --- the built-in tokenizer ---

/** The built-in tokenizer's special tokens, ids 0-3. */
export const BUILTIN_SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"] as const;

/**
 * Characters of the built-in tokenizer, after the specials: newline, then printable ASCII (space to ~). Every
 * character of the built-in task (digits, letters, + - * / = < > # $ . , ? and the like) is one token.
 */
export function builtinChars(): string[] {
  const chars = ["\n"];
  for (let c = 32; c < 127; c++) chars.push(String.fromCharCode(c));
  return chars;
}

const BUILTIN_CHAT_TEMPLATE =
  "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'assistant' %}" +
  "{{ message['content'] }}{{ eos_token }}{% else %}{{ message['content'] }}\n{% endif %}{% endfor %}";

/**
 * The built-in character tokenizer as standard tokenizer.json / tokenizer_config.json objects: a BPE model with
 * no merges (each character is a token, unknown characters map to <unk>), BOS added by a TemplateProcessing
 * post-processor, a Fuse decoder. Both @huggingface/tokenizers and Python `tokenizers` load it with the same ids.
 */
export function builtinTokenizerFiles(): { json: Json; config: Json } {
  const vocab: Record<string, number> = {};
  [...BUILTIN_SPECIALS, ...builtinChars()].forEach((t, i) => (vocab[t] = i));
  return builtinStyleFiles({ pre_tokenizer: null, decoder: { type: "Fuse" }, unk_token: "<unk>", vocab, merges: [] });
}

/**
 * tokenizer.json and tokenizer_config.json of a BPE tokenizer in the built-in style: the built-in specials at ids
 * 0-3 (<pad> <s> </s> <unk>), BOS added by a TemplateProcessing post-processor, the built-in chat template.
 * The character tokenizer and the BPE tokenizers `--init` learns (bpe.ts) differ only in the parts passed here.
 */
export function builtinStyleFiles(m: {
  pre_tokenizer: Json | null;
  decoder: Json;
  unk_token: string | null;
  vocab: Record<string, number>;
  merges: unknown[];
}): { json: Json; config: Json } {
  const added = BUILTIN_SPECIALS.map((content, id) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  const json: Json = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: m.pre_tokenizer,
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [
        { SpecialToken: { id: "<s>", type_id: 0 } },
        { Sequence: { id: "A", type_id: 0 } },
        { SpecialToken: { id: "<s>", type_id: 1 } },
        { Sequence: { id: "B", type_id: 1 } },
      ],
      special_tokens: { "<s>": { id: "<s>", ids: [1], tokens: ["<s>"] } },
    },
    decoder: m.decoder,
    model: {
      type: "BPE",
      dropout: null,
      unk_token: m.unk_token,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: m.vocab,
      merges: m.merges,
    },
  };
  const config: Json = {
    tokenizer_class: "PreTrainedTokenizerFast",
    bos_token: "<s>",
    eos_token: "</s>",
    pad_token: "<pad>",
    unk_token: "<unk>",
    add_bos_token: true,
    add_eos_token: false,
    clean_up_tokenization_spaces: false,
    model_max_length: 1024,
    chat_template: BUILTIN_CHAT_TEMPLATE,
  };
  return { json, config };
}

/** The built-in character tokenizer (vocabulary size 100: 4 specials, newline, 95 printable ASCII characters). */
export function builtinTokenizer(): TextTokenizer {
  const { json, config } = builtinTokenizerFiles();
  return new TextTokenizer(json, config, "built-in tokenizer");
}
