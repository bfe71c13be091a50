// `stepwise export gguf`: a Hugging Face model folder (config.json, safetensors, tokenizer.json) as one GGUF file
// for llama.cpp and Ollama. argv -> ExportConfig -> exportGgufFile (src/model/gguf-stage.ts).

import { asFlags } from "../core/config.js";
import { InputError } from "../core/errors.js";
import { exportConfig, exportGgufFile } from "../model/gguf-stage.js";
import type { Command } from "./command.js";
import { cliContext } from "./context.js";

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
    const result = await exportGgufFile(exportConfig(values, asFlags), cliContext());
    const { out, arch, dtype, bytes } = result;
    if (values.json) console.log(JSON.stringify(result));
    else console.log(`wrote ${out}: arch ${arch}, ${dtype}, ${(bytes / 1e6).toFixed(1)} MB`);
    return 0;
  },
};
