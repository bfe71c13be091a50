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
