// Reverse-mode autograd. Every primitive op records a Node on its output when an input requires a gradient;
// backward() walks the nodes in reverse topological order and calls each primitive's vector-Jacobian product
// (the table in ops.ts, typed so that a primitive without a backward does not compile).

import type { AttentionParams, BinaryOp, UnaryOp } from "../backend/backend.js";
import { ShapeError } from "../core/errors.js";
import { type Tensor, empty, noGrad, ones, tidy } from "./tensor.js";
import { VJPS, accumulate } from "./ops.js";

/** Each primitive and the parameters its forward was called with. */
export interface PrimitiveParams {
  matmul: { transA: boolean; transB: boolean }; // rank-3 operands, batch equal or 1
  binary: { op: BinaryOp };
  unary: { op: UnaryOp; alpha: number };
  sum: { axis: number };
  max: { axis: number };
  reshape: Record<string, never>;
  permute: { perm: number[] };
  slice: { axis: number; start: number; len: number };
  concat: { axis: number };
  gather: Record<string, never>;
  rmsnorm: { eps: number };
  rope: Record<string, never>;
  attention: Pick<AttentionParams, "scale" | "causal">;
  logSoftmax: Record<string, never>;
  tokenLogprobs: Record<string, never>;
  cast: Record<string, never>;
}
export type Primitive = keyof PrimitiveParams;

export interface Node<P extends Primitive = Primitive> {
  prim: P;
  inputs: Tensor[];
  params: PrimitiveParams[P];
  saved: Tensor[]; // extra forward results the backward needs (e.g. logsumexp)
}

/** Gradients for each input (null where an input needs none), given g = dL/d(out). */
export type Vjp<P extends Primitive> = (g: Tensor, node: Node<P>, out: Tensor) => (Tensor | null)[];

function topoOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  const stack: [Tensor, boolean][] = [[root, false]];
  while (stack.length) {
    const [t, done] = stack.pop()!;
    if (done) {
      order.push(t);
      continue;
    }
    if (seen.has(t)) continue;
    seen.add(t);
    stack.push([t, true]);
    for (const inp of t.node?.inputs ?? []) if (inp.requiresGrad && !seen.has(inp)) stack.push([inp, false]);
  }
  return order; // inputs before outputs
}

/**
 * Accumulates d(root)/d(leaf) into `leaf.grad` for every leaf that requires a gradient. `grad` defaults to ones
 * (root must then have one element). Intermediate gradients are disposed as soon as they are used.
 */
export function backward(root: Tensor, grad?: Tensor): void {
  if (!root.requiresGrad) throw new ShapeError("backward", { root: root.shape }, "root does not require grad");
  if (!grad && root.size !== 1) {
    throw new ShapeError("backward", { root: root.shape }, "needs a scalar root or an explicit gradient");
  }
  noGrad(() => {
    const grads = new Map<Tensor, Tensor>();
    grads.set(root, grad ? grad.view(grad.shape) : ones(root.shape, root.dtype, root.backend));
    const order = topoOrder(root);
    for (let i = order.length - 1; i >= 0; i--) {
      const t = order[i];
      const g = grads.get(t);
      if (!g) continue;
      grads.delete(t);
      if (!t.node) {
        accumulateLeaf(t, g);
        continue;
      }
      const node = t.node;
      const ins = tidy(() => (VJPS[node.prim] as Vjp<Primitive>)(g, node, t)); // frees what the vjp made and dropped
      const stored = new Set<Tensor>([g]); // tensors now owned elsewhere: never disposed here
      node.inputs.forEach((inp, k) => {
        const gi = ins[k];
        if (!gi || !inp.requiresGrad) return;
        const prev = grads.get(inp);
        if (prev) grads.set(inp, accumulate(prev, gi));
        else if (stored.has(gi))
          grads.set(inp, gi.view(gi.shape)); // passed through, or returned twice
        else {
          grads.set(inp, gi);
          stored.add(gi);
        }
      });
      for (const gi of new Set(ins)) if (gi && !stored.has(gi)) gi.dispose();
      g.dispose();
    }
  });
}

function accumulateLeaf(leaf: Tensor, g: Tensor): void {
  if (!leaf.grad) {
    const copy = empty(leaf.shape, leaf.dtype, leaf.backend).keep();
    leaf.backend.cast(g.buf, copy.buf); // same dtype: a copy
    copy.name = leaf.name ? `${leaf.name}.grad` : "";
    leaf.grad = copy;
  } else {
    accumulate(leaf.grad, g);
  }
  g.dispose();
}
