// `stepwise import gguf`: a GGUF model file (llama.cpp / Ollama; F32, F16, BF16, legacy and K-quants) as a Hugging
// Face model folder that transformers loads unchanged. argv -> ImportConfig -> importGgufFile
// (src/model/gguf-stage.ts).

import { asFlags } from "../core/config.js";
import { InputError } from "../core/errors.js";
import { importConfig, importGgufFile } from "../model/gguf-stage.js";
import { DEQUANTIZABLE } from "../model/gguf-quants.js";
import type { Command } from "./command.js";
import { cliContext } from "./context.js";

export const importCommand: Command = {
  name: "import",
  summary: "import a model from another format (gguf: a llama.cpp model file) as a Hugging Face folder",
  usage: "stepwise import gguf FILE --out DIR [--dtype f32|bf16] [--json]",
  help: [
    "formats:",
    '  gguf         a GGUF model file of arch "llama" (Llama, SmolLM2, Mistral) or "qwen2"; tensors dequantized',
    `               from ${DEQUANTIZABLE.join(", ")}`,
    "options:",
    "  FILE         the .gguf file",
    "  --out DIR    the folder to write: config.json, model.safetensors, tokenizer.json, tokenizer_config.json,",
    "               generation_config.json (each atomically; config.json last)",
    "  --dtype D    f32 (default) or bf16 safetensors",
    '  --json       print {"out", "arch", "dtype", "tensors", "params", "types"} when done',
    "",
    "sample and eval also take a .gguf file as --model directly (imported in memory, no folder).",
  ].join("\n"),
  async run(values, positionals) {
    const [format, file, ...rest] = positionals;
    const usage = "stepwise import gguf FILE --out DIR";
    if (format !== "gguf") throw new InputError(`unknown import format "${format ?? ""}"`, undefined, `use: ${usage}`);
    if (typeof file !== "string") throw new InputError("the GGUF FILE is required", undefined, usage);
    if (rest.length > 0) throw new InputError(`unexpected argument "${rest[0]}"`);
    const c = importConfig({ ...values, file }, asFlags);
    const result = await importGgufFile(c, cliContext());
    if (values.json) console.log(JSON.stringify(result));
    else {
      const types = Object.entries(result.types)
        .map(([t, n]) => `${n} ${t}`)
        .join(", ");
      const params = `${(result.params / 1e6).toFixed(1)}M parameters`;
      console.log(`wrote ${c.out}: arch ${result.arch}, ${params} as ${c.dtype} (from ${types})`);
    }
    return 0;
  },
};
