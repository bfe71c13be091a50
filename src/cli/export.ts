// `stepwise export gguf`: a Hugging Face model folder (config.json, safetensors, tokenizer.json) as one GGUF file
// for llama.cpp and Ollama.

import fs from "node:fs";
import { InputError } from "../core/errors.js";
import { exportGguf } from "../model/gguf.js";
import { loadModel, loadModelTokenizer } from "../model/hub.js";
import { mergeAndUnload } from "../model/lora.js";
import type { Command } from "./command.js";
import { checkOutputFile } from "../core/outputs.js";
import { Progress } from "../core/progress.js";

export const exportCommand: Command = {
  name: "export",
  summary: "export a model folder to another format (gguf: for llama.cpp / Ollama)",
  usage: "stepwise export gguf --model DIR --out FILE [--dtype f32|f16] [--name NAME] [--json]",
  help: [
    "formats:",
    '  gguf         one GGUF file with the weights, hyperparameters, tokenizer and chat template; arch "llama"',
    '               (Llama, SmolLM2, Mistral) or "qwen2"; byte-level BPE tokenizers and the built-in one',
    "options:",
    "  --model DIR  a model folder (config.json, *.safetensors, tokenizer.json), a .gguf file or a Hugging Face name",
    "  --out FILE   the GGUF file to write (atomically)",
    "  --dtype D    f32 (default: llama.cpp gives our log-probs to ~1e-5) or f16 (half the size; norms and",
    "               biases stay f32)",
    "  --name NAME  general.name in the file (default: the folder's name)",
    '  --json       print {"out", "arch", "dtype", "tensors", "bytes"} when done',
  ].join("\n"),
  async run(values, positionals) {
    const format = positionals[0];
    if (format !== "gguf")
      throw new InputError(`unknown export format "${format ?? ""}"`, undefined, "use: stepwise export gguf");
    if (positionals.length > 1) throw new InputError(`unexpected argument "${positionals[1]}"`);
    const dir = values.model;
    const out = values.out;
    if (typeof dir !== "string") throw new InputError("--model DIR is required");
    if (typeof out !== "string") throw new InputError("--out FILE is required");
    checkOutputFile(out);
    const dtype = String(values.dtype ?? "f32");
    if (dtype !== "f32" && dtype !== "f16") throw new InputError(`--dtype must be f32 or f16, got "${dtype}"`);
    const tokenizer = loadModelTokenizer(dir); // first: a folder without tokenizer.json fails before the weights load
    const model = loadModel(dir);
    if (model.lora) mergeAndUnload(model); // an adapter folder exports as base + adapters, merged
    try {
      const name =
        typeof values.name === "string"
          ? values.name
          : dir
              .replace(/[/\\]+$/, "")
              .split(/[/\\]/)
              .pop() || "stepwise";
      let bar: Progress | null = null;
      const { arch, tensors } = exportGguf(model, tokenizer, out, {
        dtype,
        name,
        progress: (bytes, total) => {
          bar ??= new Progress("export gguf", { total: Math.ceil(total / 1e6), unit: "MB" });
          bar.set(Math.ceil(bytes / 1e6));
        },
      });
      (bar as Progress | null)?.finish();
      const bytes = fs.statSync(out).size;
      const result = { out, arch, dtype, tensors, bytes };
      if (values.json) console.log(JSON.stringify(result));
      else console.log(`wrote ${out}: arch ${result.arch}, ${dtype}, ${(bytes / 1e6).toFixed(1)} MB`);
      return 0;
    } finally {
      model.dispose();
    }
  },
};
