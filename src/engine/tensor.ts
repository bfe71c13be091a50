// Tensors, scopes and the ownership rule.
//
// OWNERSHIP RULE (the one rule for every backend buffer):
//   A tensor owns its buffer (reshape views share it through a reference count). A tensor created inside
//   `tidy(fn)` is disposed when fn returns, unless it is returned by fn (it then belongs to the enclosing scope)
//   or was passed to `keep()`. A tensor created outside any tidy scope belongs to its creator, who calls
//   `dispose()`. Parameters and their `.grad` and optimizer state live outside scopes and are disposed by
//   their owner (model, optimizer). `backend.liveBuffers()` lets tests check that a step leaks nothing.

import type { Backend, Buf, DType, HostArray } from "../backend/backend.js";
import { hostArray } from "../backend/backend.js";
import { getBackend } from "../backend/index.js";
import { DisposedError, ShapeError } from "../core/errors.js";
import type { Node } from "./autograd.js";

class Storage {
  refs = 1;
  constructor(
    readonly backend: Backend,
    readonly buf: Buf,
  ) {}
  release(): void {
    if (--this.refs === 0) this.backend.dispose(this.buf);
  }
}

const scopes: Set<Tensor>[] = [];
let gradEnabled = true;

export class Tensor {
  readonly size: number;
  requiresGrad = false;
  /** Accumulated gradient of a leaf that requires grad; owned by the leaf's owner. */
  grad: Tensor | null = null;
  /** How this tensor was computed, when it needs a gradient. */
  node: Node | null = null;
  /** A name for error messages (parameters get their Hugging Face tensor names). */
  name = "";
  private disposed_ = false;
  private kept = false;

  constructor(
    readonly shape: readonly number[],
    readonly dtype: DType,
    private storage: Storage,
  ) {
    this.size = numel(shape);
    if (this.size !== storage.buf.size) {
      throw new ShapeError("Tensor", { shape }, `needs ${this.size} elements, buffer has ${storage.buf.size}`);
    }
    scopes.at(-1)?.add(this);
  }

  get backend(): Backend {
    return this.storage.backend;
  }
  get buf(): Buf {
    if (this.disposed_) throw new DisposedError(`tensor ${this.describe()} used after dispose()`);
    return this.storage.buf;
  }
  /** True when another tensor views the same buffer: in-place writes would show through it. */
  get shared(): boolean {
    return this.storage.refs > 1;
  }
  get disposed(): boolean {
    return this.disposed_;
  }
  get rank(): number {
    return this.shape.length;
  }

  describe(): string {
    return `${this.name ? this.name + " " : ""}(${this.shape.join(", ")}) ${this.dtype}`;
  }

  /** A tensor with another shape over the same buffer (no copy). Used by the reshape primitive. */
  view(shape: readonly number[]): Tensor {
    this.buf; // throws if disposed
    this.storage.refs++;
    return new Tensor(shape, this.dtype, this.storage);
  }

  dispose(): void {
    if (this.disposed_) return;
    this.disposed_ = true;
    this.node = null;
    this.storage.release();
    for (const s of scopes) s.delete(this);
  }

  /** Contents as a host array (waits for pending kernels). */
  toArray(): HostArray {
    return this.backend.readSync(this.buf);
  }
  async data(): Promise<HostArray> {
    return this.backend.read(this.buf);
  }
  /** The value of a one-element tensor. */
  item(): number {
    if (this.size !== 1) throw new ShapeError("item", { x: this.shape }, "needs exactly one element");
    return this.toArray()[0];
  }

  /** Protects this tensor from the enclosing tidy scopes. */
  keep(): this {
    this.kept = true;
    for (const s of scopes) s.delete(this);
    return this;
  }
  get isKept(): boolean {
    return this.kept;
  }
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const s of shape) {
    if (!Number.isInteger(s) || s < 0) throw new ShapeError("shape", { shape }, `bad dimension ${s}`);
    n *= s;
  }
  return n;
}

/** Runs fn in a scope that disposes every tensor created in it, except what fn returns and kept tensors. */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    scopes.pop();
    for (const t of scope) t.dispose();
    throw e;
  }
  scopes.pop();
  const out = new Set(collectTensors(result));
  for (const t of scope) if (!out.has(t)) t.dispose();
  const parent = scopes.at(-1);
  if (parent) for (const t of out) if (!t.isKept && !t.disposed) parent.add(t);
  return result;
}

function collectTensors(x: unknown, acc: Tensor[] = []): Tensor[] {
  if (x instanceof Tensor) acc.push(x);
  else if (Array.isArray(x)) for (const v of x) collectTensors(v, acc);
  else if (x && typeof x === "object" && Object.getPrototypeOf(x) === Object.prototype) {
    for (const v of Object.values(x)) collectTensors(v, acc);
  }
  return acc;
}

export function keep<T extends Tensor>(t: T): T {
  return t.keep();
}

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs fn without recording anything for autograd. */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

// --- creation ---

/** A new tensor whose contents are undefined until a kernel writes them (outputs of ops). */
export function empty(shape: readonly number[], dtype: DType = "f32", backend: Backend = getBackend()): Tensor {
  const buf = backend.alloc(numel(shape), dtype);
  return new Tensor(shape, dtype, new Storage(backend, buf));
}

export function zeros(shape: readonly number[], dtype: DType = "f32", backend?: Backend): Tensor {
  return full(shape, 0, dtype, backend);
}

export function full(shape: readonly number[], value: number, dtype: DType = "f32", backend?: Backend): Tensor {
  const t = empty(shape, dtype, backend);
  t.backend.fill(t.buf, value);
  return t;
}

export function ones(shape: readonly number[], dtype: DType = "f32", backend?: Backend): Tensor {
  return full(shape, 1, dtype, backend);
}

/** A tensor holding `data` (copied), with the given shape. */
export function tensor(
  data: ArrayLike<number>,
  shape: readonly number[] = [data.length],
  dtype: DType = "f32",
  backend?: Backend,
): Tensor {
  if (numel(shape) !== data.length) {
    throw new ShapeError("tensor", { shape }, `data has ${data.length} elements`);
  }
  const t = empty(shape, dtype, backend);
  const host = hostArray(dtype, data.length);
  host.set(data);
  t.backend.write(t.buf, host);
  return t;
}

export function scalar(value: number, dtype: DType = "f32", backend?: Backend): Tensor {
  return tensor([value], [], dtype, backend);
}
