// GGUF conversion as library stages: `exportGgufFile` writes a model folder as one GGUF file for llama.cpp and
// Ollama (gguf.ts), `importGgufFile` a GGUF model file as a Hugging Face folder (gguf-import.ts). Each takes a
// typed config, validated once by its *Config function (errors name the flag or the key), and a StageContext
// whose progress display follows the bytes or tensors written.

import fs from "node:fs";
import { asKeys, KnobReader, type Naming } from "../core/config.js";
import { checkOutputFile } from "../core/outputs.js";
import { progressOf, type ProgressSink, type StageContext } from "../core/stage.js";
import { exportGguf, type GgufArch } from "./gguf.js";
import { importGguf, type ImportResult } from "./gguf-import.js";
import { loadModel, loadModelTokenizer } from "./hub.js";
import { mergeAndUnload } from "./lora.js";

type Given = Record<string, unknown>;

export interface ExportConfig {
  model: string; // a model folder (an adapter folder exports as base + adapters, merged) or a .gguf file
  out: string; // the GGUF file to write (atomically)
  dtype: "f32" | "f16"; // f32 (default) or f16 (norms and biases stay f32)
  name: string | null; // general.name in the file (null: the folder's name)
}

export interface ExportResult {
  out: string;
  arch: GgufArch;
  dtype: "f32" | "f16";
  tensors: number;
  bytes: number; // of the file written
}

export function exportConfig(given: Partial<ExportConfig> | Given, naming: Naming = asKeys()): ExportConfig {
  const r = new KnobReader(given as Given, naming);
  const model = r.need("model", "DIR");
  const out = r.need("out", "FILE");
  const dtype = r.choice("dtype", ["f32", "f16"] as const, "f32", "f32 or f16");
  return { model, out, dtype, name: r.str("name", null) };
}

/** Writes c.model as the GGUF file c.out; the output path is checked before any weight loads. */
export async function exportGgufFile(c: ExportConfig, ctx: StageContext = {}): Promise<ExportResult> {
  checkOutputFile(c.out);
  const tokenizer = loadModelTokenizer(c.model); // first: a folder without tokenizer.json fails before the weights
  const model = loadModel(c.model);
  try {
    if (model.lora) mergeAndUnload(model);
    const name =
      c.name ??
      (c.model
        .replace(/[/\\]+$/, "")
        .split(/[/\\]/)
        .pop() ||
        "stepwise");
    let bar: ProgressSink | null = null;
    const { arch, tensors } = exportGguf(model, tokenizer, c.out, {
      dtype: c.dtype,
      name,
      progress: (bytes, total) => {
        bar ??= progressOf(ctx, "export gguf", { total: Math.ceil(total / 1e6), unit: "MB" });
        bar.set(Math.ceil(bytes / 1e6));
      },
    });
    (bar as ProgressSink | null)?.finish();
    return { out: c.out, arch, dtype: c.dtype, tensors, bytes: fs.statSync(c.out).size };
  } finally {
    model.dispose();
  }
}

export interface ImportConfig {
  file: string; // the .gguf file
  out: string; // the Hugging Face folder to write (each file atomically; config.json last)
  dtype: "f32" | "bf16"; // of the safetensors (f32)
}

export function importConfig(given: Partial<ImportConfig> | Given, naming: Naming = asKeys()): ImportConfig {
  const r = new KnobReader(given as Given, naming);
  const file = r.need("file", "FILE");
  const out = r.need("out", "DIR");
  const dtype = r.choice("dtype", ["f32", "bf16"] as const, "f32", "f32 or bf16");
  return { file, out, dtype };
}

/** Writes the GGUF model c.file as the Hugging Face folder c.out, its tensors dequantized. */
export async function importGgufFile(c: ImportConfig, ctx: StageContext = {}): Promise<ImportResult> {
  let bar: ProgressSink | null = null;
  const result = importGguf(c.file, c.out, {
    dtype: c.dtype,
    progress: (done, total) => {
      bar ??= progressOf(ctx, "import gguf", { total, unit: "tensors" });
      bar.set(done);
    },
  });
  (bar as ProgressSink | null)?.finish();
  return result;
}
