// A policy and its reference model loaded together on one backend, as the stages that compare them need them
// (score, credit, search: the implicit reward beta * log(pi / pi_ref) is a difference of their log-probs token by
// token, so the two must share one vocabulary).

import { backendFor } from "../backend/index.js";
import { InputError } from "../core/errors.js";
import { loadModel, loadModelTokenizer } from "./hub.js";
import type { Llama } from "./llama.js";
import type { TextTokenizer } from "./tokenizer.js";

/** Where the two models are and what runs them. */
export interface PolicyRefSource {
  model: string; // the policy: a model folder or a .gguf file
  ref: string | null; // its reference (the model it was trained from); null: the policy alone
  backend: string | null; // native or reference (null: the current backend)
  threads: number | null; // worker threads of the native backend (null: as they are)
}

export interface PolicyAndRef {
  model: Llama;
  ref: Llama | null;
  tokenizer: TextTokenizer; // the policy's
  dispose(): void; // frees both
}

/**
 * The policy (and the reference, when s.ref is set) on the backend s names. A reference with another vocabulary
 * is an InputError naming its path; `hint` says what to pass instead.
 */
export function loadPolicyAndRef(s: PolicyRefSource, hint = "use the model the policy was trained from"): PolicyAndRef {
  const be = backendFor(s.backend, s.threads);
  const tokenizer = loadModelTokenizer(s.model);
  const model = loadModel(s.model, { backend: be });
  const pair = (ref: Llama | null): PolicyAndRef => ({
    model,
    ref,
    tokenizer,
    dispose: () => {
      model.dispose();
      ref?.dispose();
    },
  });
  if (s.ref === null) return pair(null);
  try {
    const ref = loadModel(s.ref, { backend: be });
    if (ref.config.vocab_size !== model.config.vocab_size) {
      ref.dispose();
      throw new InputError(
        `the reference's vocabulary (${ref.config.vocab_size}) differs from the model's ` +
          `(${model.config.vocab_size})`,
        s.ref,
        hint,
      );
    }
    return pair(ref);
  } catch (e) {
    model.dispose();
    throw e;
  }
}
