// The library entry point.
export * from "./core/errors.js";
export { Rng } from "./core/rng.js";
export type { Backend, Buf, DType, HostArray } from "./backend/backend.js";
export { getBackend, setBackend, withBackend, referenceBackend, nativeBackend } from "./backend/index.js";
export { Tensor, tidy, keep, noGrad, tensor, zeros, ones, full, scalar, empty } from "./engine/tensor.js";
export { backward } from "./engine/autograd.js";
export * from "./engine/ops.js";
export * from "./engine/nn.js";
export { AdamW, clipGradNorm, gradNorm, zeroGrad } from "./engine/optim.js";
export { gradCheck } from "./engine/gradcheck.js";
export { Llama, type LlamaConfig, trainFlops } from "./model/llama.js";
export { loadModel, saveModel, readConfig } from "./model/hub.js";
export { resolveModel, hubCacheDir, type ResolveOptions } from "./model/hubcache.js";
export { initConfig, initModel, PRESETS } from "./model/presets.js";
export { TextTokenizer, builtinTokenizer } from "./model/tokenizer.js";
export { Checkpoint, writeSafetensors } from "./model/safetensors.js";
export { generate } from "./model/generate.js";
export { exportGguf } from "./model/gguf.js";
export * as verify from "./verify/index.js";
export { generateProblems } from "./data/task.js";
export { LOSSES, LOSS_NAMES, parseLosses, type PairLogps, type LossName } from "./train/losses.js";
export { train } from "./train/trainer.js";
export { sftObjective } from "./train/sft.js";
export { dpoObjective, precomputeRefLogps, type TokenPair } from "./train/dpo.js";
export { attachLora, loadAdapter, saveAdapter, mergeAndUnload, loraParams, type LoraOptions } from "./model/lora.js";
export { trainBpeTokenizer, learnMerges } from "./model/bpe.js";
export { evaluate, wilson, type EvalOptions, type EvalResult } from "./eval/eval.js";
export { LocalCompleter } from "./sample/local.js";
export { createHttpCompleter } from "./sample/http.js";
export { DEFAULT_CONFIG, loadConfig, resolveConfig, type RunConfig } from "./run/config.js";

// The recipe's stages: each a typed config (validated once by its *Config function) and a function of it.
export type { StageContext, ProgressSink, ProgressFactory } from "./core/stage.js";
export { taskConfig, writeTask, type TaskFileConfig } from "./data/task-stage.js";
export { sft, sftConfig, dpo, dpoConfig, type SftConfig, type DpoConfig, type TrainSummary } from "./train/stage.js";
export {
  missingSamplesText,
  sample,
  sampleConfig,
  sampleSummaryText,
  type SampleConfig,
  type SampleSummary,
} from "./sample/stage.js";
export { verifyFile, verifyConfig, type VerifyConfig, type VerifySummary } from "./verify/stage.js";
export { writePairs, pairsConfig, pairsSummaryText, type PairsConfig, type PairsSummary } from "./pairs/stage.js";
export { evalConfig, evaluateFile, formatTable, type EvalConfig } from "./eval/stage.js";
export { Pipeline, type PipelineOptions, type PipelineResult } from "./run/pipeline.js";
export { Progress } from "./core/progress.js";
export { runPipeline } from "./run/write-report.js";
export { streamTask, taskSummary } from "./data/task-stage.js";
export { completerConfig, openCompleterConfig, type CompleterConfig } from "./sample/open.js";
export { loadPolicyAndRef, type PolicyAndRef, type PolicyRefSource } from "./model/policy-ref.js";
export {
  scoreConfig,
  scoreText,
  creditConfig,
  creditText,
  corruptEvalConfig,
  corruptEvalFile,
  corruptEvalText,
  searchConfig,
  searchFile,
  type ScoreConfig,
  type CreditConfig,
  type CreditResult,
  type CorruptEvalConfig,
  type CorruptEvalSummary,
  type SearchConfig,
  type SearchSummary,
} from "./inspect/stage.js";
export { scoreTable, creditTable, creditAnsi, creditHtml } from "./inspect/render.js";
export { benchConfig, runBench, benchText, type BenchConfig, type BenchResult } from "./bench/suites.js";
export { serveConfig, openCompletionServer, type ServeConfig } from "./serve/stage.js";
export {
  exportConfig,
  exportGgufFile,
  importConfig,
  importGgufFile,
  type ExportConfig,
  type ExportResult,
  type ImportConfig,
} from "./model/gguf-stage.js";
