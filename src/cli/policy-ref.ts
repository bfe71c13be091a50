// The flags of the commands that score a policy against its reference (`stepwise credit`, `stepwise search`):
// --model/--ref/--backend/--threads, --beta, and an output file named by a flag. A module of its own so that neither
// command imports the other for them.

import { backendByName, getBackend } from "../backend/index.js";
import { InputError } from "../core/errors.js";
import { loadModel, loadModelTokenizer } from "../model/hub.js";
import type { Llama } from "../model/llama.js";
import type { TextTokenizer } from "../model/tokenizer.js";
import { flagNumber, intOption } from "./options.js";

type Values = Record<string, string | boolean | undefined>;

/** --beta: the DPO beta of the implicit reward, a number > 0 (default 0.1). */
export function betaOption(values: Values): number {
  const beta = values.beta === undefined ? 0.1 : flagNumber(values.beta);
  if (!Number.isFinite(beta) || beta <= 0) throw new InputError(`--beta must be a number > 0, got "${values.beta}"`);
  return beta;
}

/** The policy (--model) and reference (--ref, optional unless `needRef`) on the chosen backend; same vocabulary. */
export function loadPolicyAndRef(
  values: Values,
  needRef: boolean,
): { model: Llama; ref: Llama | null; tokenizer: TextTokenizer } {
  if (typeof values.model !== "string") throw new InputError("--model DIR is required");
  if (needRef && typeof values.ref !== "string")
    throw new InputError("--ref DIR is required (the model the policy was trained from)");
  const be = values.backend ? backendByName(String(values.backend)) : getBackend();
  if (values.threads !== undefined) be.setThreads(intOption(values, "threads", 1));
  const tokenizer = loadModelTokenizer(values.model);
  const model = loadModel(values.model, { backend: be });
  if (typeof values.ref !== "string") return { model, ref: null, tokenizer };
  try {
    const ref = loadModel(values.ref, { backend: be });
    if (ref.config.vocab_size !== model.config.vocab_size) {
      ref.dispose();
      throw new InputError(
        `the reference's vocabulary (${ref.config.vocab_size}) differs from the model's ` +
          `(${model.config.vocab_size})`,
        values.ref,
        "use the model the policy was trained from",
      );
    }
    return { model, ref, tokenizer };
  } catch (e) {
    model.dispose();
    throw e;
  }
}

/** Writes an output file atomically; a path that cannot be written is bad input, named. */
export async function writeOutput(file: string, write: (f: string) => Promise<unknown>): Promise<void> {
  try {
    await write(file);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (typeof err.code === "string") throw new InputError(`cannot write (${err.code}: ${err.message})`, file);
    throw e;
  }
}
