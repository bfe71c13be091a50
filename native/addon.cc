// N-API bindings: buffer handles and one function per Backend kernel. Every argument is checked here (handle
// alive, dtype, element counts) so that a bad call throws a JS error with a code instead of touching bad memory.
// Codes: STEPWISE_DISPOSED, STEPWISE_DTYPE, STEPWISE_SHAPE, STEPWISE_INDEX, STEPWISE_ARG.
#include <node_api.h>

#include <atomic>
#include <unordered_map>
#include <vector>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "gemm.h"
#include "kernels.h"
#include "pool.h"

namespace sw {
namespace {

constexpr uint32_t kMagic = 0x53574246;  // "SWBF"
std::atomic<int64_t> g_live{0};

struct BufRec {
  uint32_t magic = kMagic;
  int dtype = kF32;
  int64_t size = 0;  // elements
  void* data = nullptr;
  bool freed = false;
};

const char* kDTypeNames[] = {"f32", "f64", "i32", "f16", "bf16"};

// Freed blocks are kept by exact size and handed out again (their contents are undefined, as the Backend contract
// allows): a training step allocates the same sizes every time, and fresh pages from the OS cost a page fault
// each. Alloc and free only ever run on the JS thread, so the cache needs no lock.
constexpr size_t kMaxCachedBytes = size_t(1) << 30;
std::unordered_map<size_t, std::vector<void*>> g_cache;
size_t g_cached_bytes = 0;

void* block_alloc(size_t padded) {
  auto it = g_cache.find(padded);
  if (it != g_cache.end() && !it->second.empty()) {
    void* p = it->second.back();
    it->second.pop_back();
    g_cached_bytes -= padded;
    return p;
  }
  return std::aligned_alloc(64, padded);
}

void block_free(void* p, size_t padded) {
  if (g_cached_bytes + padded > kMaxCachedBytes) {
    std::free(p);
    return;
  }
  g_cache[padded].push_back(p);
  g_cached_bytes += padded;
}

size_t padded_bytes(const BufRec* b) {
  size_t bytes = size_t(b->size) * size_t(dtype_bytes(b->dtype));
  size_t padded = ((bytes + 63) / 64) * 64;
  return padded == 0 ? 64 : padded;
}

void finalize_buf(napi_env, void* data, void*) {
  BufRec* b = static_cast<BufRec*>(data);
  if (!b->freed) block_free(b->data, padded_bytes(b));  // leaked by the caller: release the memory, keep the live count
  b->magic = 0;
  delete b;
}

/** Reads and checks the arguments of one call; after the first failure every accessor returns a dummy. */
class Args {
 public:
  Args(napi_env env, napi_callback_info info, const char* op) : env_(env), op_(op) {
    argc_ = 24;
    napi_get_cb_info(env, info, &argc_, argv_, nullptr, nullptr);
  }
  bool ok() const { return !failed_; }
  napi_env env() const { return env_; }
  napi_value arg(size_t i) const { return i < argc_ ? argv_[i] : nullptr; }

  std::nullptr_t fail(const char* code, const std::string& msg) {
    if (!failed_) {
      failed_ = true;
      napi_throw_error(env_, code, (std::string(op_) + ": " + msg).c_str());
    }
    return nullptr;
  }

  /** A live buffer handle; dtype -1 accepts any dtype. */
  BufRec* buf(size_t i, const char* name, int dtype = kF32) {
    if (failed_) return &dummy_;
    void* p = nullptr;
    napi_valuetype t;
    if (i >= argc_ || napi_typeof(env_, argv_[i], &t) != napi_ok || t != napi_external ||
        napi_get_value_external(env_, argv_[i], &p) != napi_ok || !p ||
        static_cast<BufRec*>(p)->magic != kMagic) {
      fail("STEPWISE_ARG", std::string(name) + " is not a native buffer");
      return &dummy_;
    }
    BufRec* b = static_cast<BufRec*>(p);
    if (b->freed) {
      fail("STEPWISE_DISPOSED", std::string(name) + " was used after dispose");
      return &dummy_;
    }
    if (dtype >= 0 && b->dtype != dtype) {
      fail("STEPWISE_DTYPE", std::string(name) + " must be " + kDTypeNames[dtype] + ", got " + kDTypeNames[b->dtype]);
      return &dummy_;
    }
    return b;
  }
  /** Like buf, but JS null gives nullptr. */
  BufRec* buf_or_null(size_t i, const char* name, int dtype) {
    napi_valuetype t;
    if (!failed_ && i < argc_ && napi_typeof(env_, argv_[i], &t) == napi_ok && (t == napi_null || t == napi_undefined))
      return nullptr;
    return buf(i, name, dtype);
  }
  /** Checks that b holds at least n elements. */
  void need(BufRec* b, int64_t n, const char* name) {
    if (!failed_ && b->size < n)
      fail("STEPWISE_SHAPE", std::string(name) + " needs " + std::to_string(n) + " elements, has " + std::to_string(b->size));
  }
  int64_t i64(size_t i, const char* name, int64_t min = 0) {
    double v = num(i, name);
    if (!failed_ && (v != double(int64_t(v)) || v < double(min) || v > 9.0e15)) {
      fail("STEPWISE_ARG", std::string(name) + " must be an integer >= " + std::to_string(min) + ", got " + std::to_string(v));
    }
    return failed_ ? 0 : int64_t(v);
  }
  double num(size_t i, const char* name) {
    double v = 0;
    if (!failed_ && (i >= argc_ || napi_get_value_double(env_, argv_[i], &v) != napi_ok))
      fail("STEPWISE_ARG", std::string(name) + " must be a number");
    return v;
  }
  bool flag(size_t i) {
    bool v = false;
    if (!failed_ && i < argc_) napi_get_value_bool(env_, argv_[i], &v);
    return v;
  }
  /** An array of non-negative integers (a shape or a permutation). */
  std::vector<int64_t> dims(size_t i, const char* name) {
    std::vector<int64_t> out;
    uint32_t n = 0;
    bool is_arr = false;
    if (failed_) return out;
    if (i >= argc_ || napi_is_array(env_, argv_[i], &is_arr) != napi_ok || !is_arr ||
        napi_get_array_length(env_, argv_[i], &n) != napi_ok || n > 64) {
      fail("STEPWISE_ARG", std::string(name) + " must be an array of at most 64 dims");
      return out;
    }
    for (uint32_t k = 0; k < n; k++) {
      napi_value e;
      double v = -1;
      napi_get_element(env_, argv_[i], k, &e);
      napi_get_value_double(env_, e, &v);
      if (v < 0 || v != double(int64_t(v))) {
        fail("STEPWISE_ARG", std::string(name) + " has a bad entry at " + std::to_string(k));
        return out;
      }
      out.push_back(int64_t(v));
    }
    return out;
  }

 private:
  napi_env env_;
  const char* op_;
  size_t argc_;
  napi_value argv_[24];
  bool failed_ = false;
  BufRec dummy_;
};

napi_value undefined(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}
napi_value number(napi_env env, double v) {
  napi_value r;
  napi_create_double(env, v, &r);
  return r;
}
int64_t numel(const std::vector<int64_t>& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

// ---------------------------------------------------------------- memory

napi_value Alloc(napi_env env, napi_callback_info info) {
  Args a(env, info, "alloc");
  int64_t size = a.i64(0, "size");
  int64_t dt = a.i64(1, "dtype");
  if (!a.ok()) return nullptr;
  if (dt > kBF16) return a.fail("STEPWISE_DTYPE", "unknown dtype code " + std::to_string(dt));
  BufRec* b = new BufRec();
  b->dtype = int(dt);
  b->size = size;
  size_t padded = padded_bytes(b);
  void* data = block_alloc(padded);  // contents undefined (Backend contract); kernels write before reading
  if (!data) {
    delete b;
    return a.fail("STEPWISE_ARG", "out of memory allocating " + std::to_string(padded) + " bytes");
  }
  b->data = data;
  napi_value ext;
  if (napi_create_external(env, b, finalize_buf, nullptr, &ext) != napi_ok) {
    block_free(data, padded);
    delete b;
    return a.fail("STEPWISE_ARG", "could not create a buffer handle");
  }
  g_live++;
  return ext;
}

napi_value Free(napi_env env, napi_callback_info info) {
  Args a(env, info, "dispose");
  BufRec* b = a.buf(0, "buffer", -1);
  if (!a.ok()) {  // disposing twice is a no-op
    napi_value exc;
    napi_get_and_clear_last_exception(env, &exc);
    return undefined(env);
  }
  block_free(b->data, padded_bytes(b));
  b->data = nullptr;
  b->freed = true;
  g_live--;
  return undefined(env);
}

/** The JS typed-array type that holds a dtype. */
napi_typedarray_type array_type(int dt) {
  switch (dt) {
    case kF32: return napi_float32_array;
    case kF64: return napi_float64_array;
    case kI32: return napi_int32_array;
    default: return napi_uint16_array;
  }
}

napi_value Write(napi_env env, napi_callback_info info) {
  Args a(env, info, "write");
  BufRec* b = a.buf(0, "buffer", -1);
  int64_t offset = a.i64(2, "offset");
  if (!a.ok()) return nullptr;
  napi_typedarray_type t;
  size_t len;
  void* data;
  bool is_ta = false;
  napi_is_typedarray(env, a.arg(1), &is_ta);
  if (!is_ta || napi_get_typedarray_info(env, a.arg(1), &t, &len, &data, nullptr, nullptr) != napi_ok)
    return a.fail("STEPWISE_ARG", "data must be a typed array");
  if (t != array_type(b->dtype))
    return a.fail("STEPWISE_DTYPE", std::string("data does not match the buffer dtype ") + kDTypeNames[b->dtype]);
  if (offset + int64_t(len) > b->size)
    return a.fail("STEPWISE_SHAPE", std::to_string(len) + " elements at offset " + std::to_string(offset) +
                                        " overflow a buffer of " + std::to_string(b->size));
  int eb = dtype_bytes(b->dtype);
  if (len) std::memcpy(static_cast<char*>(b->data) + offset * eb, data, len * size_t(eb));
  return undefined(env);
}

napi_value Read(napi_env env, napi_callback_info info) {
  Args a(env, info, "read");
  BufRec* b = a.buf(0, "buffer", -1);
  if (!a.ok()) return nullptr;
  size_t bytes = size_t(b->size) * size_t(dtype_bytes(b->dtype));
  void* dst = nullptr;
  napi_value ab, ta;
  if (napi_create_arraybuffer(env, bytes, &dst, &ab) != napi_ok) return a.fail("STEPWISE_ARG", "out of memory");
  if (bytes) std::memcpy(dst, b->data, bytes);
  napi_create_typedarray(env, array_type(b->dtype), size_t(b->size), ab, 0, &ta);
  return ta;
}

napi_value Live(napi_env env, napi_callback_info) { return number(env, double(g_live.load())); }

napi_value SetThreads(napi_env env, napi_callback_info info) {
  Args a(env, info, "setThreads");
  int64_t n = a.i64(0, "n", 1);
  if (!a.ok()) return nullptr;
  pool_set_threads(int(n));
  return undefined(env);
}

napi_value Threads(napi_env env, napi_callback_info) { return number(env, pool_threads()); }

napi_value FmaPeak(napi_env env, napi_callback_info) { return number(env, fma_peak_gflops()); }

// ---------------------------------------------------------------- elementwise

napi_value Fill(napi_env env, napi_callback_info info) {
  Args a(env, info, "fill");
  BufRec* o = a.buf(0, "out", -1);
  double v = a.num(1, "value");
  if (!a.ok()) return nullptr;
  fill(o->data, o->dtype, o->size, v);
  return undefined(env);
}

napi_value Cast(napi_env env, napi_callback_info info) {
  Args a(env, info, "cast");
  BufRec* x = a.buf(0, "x", -1);
  BufRec* o = a.buf(1, "out", -1);
  a.need(o, x->size, "out");
  if (!a.ok()) return nullptr;
  if (!cast(x->data, x->dtype, o->data, o->dtype, x->size))
    return a.fail("STEPWISE_DTYPE", std::string("cannot cast ") + kDTypeNames[x->dtype] + " to " + kDTypeNames[o->dtype]);
  return undefined(env);
}

napi_value Unary(napi_env env, napi_callback_info info) {
  Args a(env, info, "unary");
  int64_t op = a.i64(0, "op");
  BufRec* x = a.buf(1, "x");
  BufRec* o = a.buf(2, "out");
  double alpha = a.num(3, "alpha");
  a.need(o, x->size, "out");
  if (a.ok() && op >= kNumUnary) a.fail("STEPWISE_ARG", "unknown op");
  if (!a.ok()) return nullptr;
  unary(int(op), static_cast<float*>(x->data), static_cast<float*>(o->data), x->size, float(alpha));
  return undefined(env);
}

napi_value UnaryGrad(napi_env env, napi_callback_info info) {
  Args a(env, info, "unaryGrad");
  int64_t op = a.i64(0, "op");
  BufRec* x = a.buf(1, "x");
  BufRec* g = a.buf(2, "g");
  BufRec* o = a.buf(3, "out");
  double alpha = a.num(4, "alpha");
  a.need(g, x->size, "g");
  a.need(o, x->size, "out");
  if (a.ok() && op >= kNumUnary) a.fail("STEPWISE_ARG", "unknown op");
  if (!a.ok()) return nullptr;
  unary_grad(int(op), static_cast<float*>(x->data), static_cast<float*>(g->data), static_cast<float*>(o->data),
             x->size, float(alpha));
  return undefined(env);
}

/** Checks that a and b broadcast to out (same rank, dims 1 or equal). */
bool broadcastable(Args& a, const std::vector<int64_t>& as, const std::vector<int64_t>& bs,
                   const std::vector<int64_t>& os) {
  if (as.size() != os.size() || bs.size() != os.size()) {
    a.fail("STEPWISE_SHAPE", "shapes must have the rank of the output");
    return false;
  }
  for (size_t i = 0; i < os.size(); i++) {
    if ((as[i] != os[i] && as[i] != 1) || (bs[i] != os[i] && bs[i] != 1)) {
      a.fail("STEPWISE_SHAPE", "dim " + std::to_string(i) + " does not broadcast (" + std::to_string(as[i]) + ", " +
                                   std::to_string(bs[i]) + " -> " + std::to_string(os[i]) + ")");
      return false;
    }
  }
  return true;
}

napi_value Binary(napi_env env, napi_callback_info info) {
  Args a(env, info, "binary");
  int64_t op = a.i64(0, "op");
  BufRec* x = a.buf(1, "a");
  std::vector<int64_t> as = a.dims(2, "aShape");
  BufRec* y = a.buf(3, "b");
  std::vector<int64_t> bs = a.dims(4, "bShape");
  BufRec* o = a.buf(5, "out");
  std::vector<int64_t> os = a.dims(6, "outShape");
  if (!a.ok() || !broadcastable(a, as, bs, os)) return nullptr;
  a.need(x, numel(as), "a");
  a.need(y, numel(bs), "b");
  a.need(o, numel(os), "out");
  if (a.ok() && op >= kNumBinary) a.fail("STEPWISE_ARG", "unknown op");
  if (!a.ok()) return nullptr;
  if (numel(os) == 0) return undefined(env);
  binary(int(op), static_cast<float*>(x->data), as.data(), static_cast<float*>(y->data), bs.data(),
         static_cast<float*>(o->data), os.data(), int(os.size()));
  return undefined(env);
}

// ---------------------------------------------------------------- reductions

napi_value SumTo(napi_env env, napi_callback_info info) {
  Args a(env, info, "sumTo");
  BufRec* x = a.buf(0, "x");
  std::vector<int64_t> xs = a.dims(1, "xShape");
  BufRec* o = a.buf(2, "out");
  std::vector<int64_t> os = a.dims(3, "outShape");
  if (!a.ok() || !broadcastable(a, os, os, xs)) return nullptr;
  a.need(x, numel(xs), "x");
  a.need(o, numel(os), "out");
  if (!a.ok()) return nullptr;
  if (numel(xs) == 0) {
    fill(o->data, kF32, numel(os), 0.0);
    return undefined(env);
  }
  sum_to(static_cast<float*>(x->data), xs.data(), static_cast<float*>(o->data), os.data(), int(xs.size()));
  return undefined(env);
}

napi_value Reduce(napi_env env, napi_callback_info info) {
  Args a(env, info, "reduce");
  int64_t op = a.i64(0, "op");
  BufRec* x = a.buf(1, "x");
  int64_t outer = a.i64(2, "outer"), n = a.i64(3, "n"), inner = a.i64(4, "inner");
  BufRec* o = a.buf(5, "out");
  a.need(x, outer * n * inner, "x");
  a.need(o, outer * inner, "out");
  if (!a.ok()) return nullptr;
  const float* xp = static_cast<float*>(x->data);
  float* op_ = static_cast<float*>(o->data);
  if (op == 0) reduce_sum(xp, outer, n, inner, op_);
  else reduce_max(xp, outer, n, inner, op_);
  return undefined(env);
}

napi_value ReduceMaxGrad(napi_env env, napi_callback_info info) {
  Args a(env, info, "reduceMaxGrad");
  BufRec* x = a.buf(0, "x");
  BufRec* g = a.buf(1, "g");
  int64_t outer = a.i64(2, "outer"), n = a.i64(3, "n"), inner = a.i64(4, "inner");
  BufRec* o = a.buf(5, "out");
  a.need(x, outer * n * inner, "x");
  a.need(g, outer * inner, "g");
  a.need(o, outer * n * inner, "out");
  if (!a.ok()) return nullptr;
  reduce_max_grad(static_cast<float*>(x->data), static_cast<float*>(g->data), outer, n, inner,
                  static_cast<float*>(o->data));
  return undefined(env);
}

napi_value SumSquares(napi_env env, napi_callback_info info) {
  Args a(env, info, "sumSquares");
  BufRec* x = a.buf(0, "x");
  BufRec* o = a.buf(1, "out");
  bool acc = a.flag(2);
  a.need(o, 1, "out");
  if (!a.ok()) return nullptr;
  float* out = static_cast<float*>(o->data);
  double s = sum_squares(static_cast<float*>(x->data), x->size);
  out[0] = acc ? float(double(out[0]) + s) : float(s);
  return undefined(env);
}

// ---------------------------------------------------------------- matmul and layout

napi_value Matmul(napi_env env, napi_callback_info info) {
  Args a(env, info, "matmul");
  BufRec* x = a.buf(0, "a");
  BufRec* y = a.buf(1, "b");
  BufRec* o = a.buf(2, "out");
  int64_t batch = a.i64(3, "batch"), m = a.i64(4, "m"), n = a.i64(5, "n"), k = a.i64(6, "k");
  bool ta = a.flag(7), tb = a.flag(8);
  int64_t sa = a.i64(9, "strideA"), sb = a.i64(10, "strideB");
  bool acc = a.flag(11);
  if (batch > 0) {
    a.need(x, (batch - 1) * sa + m * k, "a");
    a.need(y, (batch - 1) * sb + k * n, "b");
    a.need(o, batch * m * n, "out");
  }
  if (!a.ok()) return nullptr;
  gemm_batched(ta, tb, batch, m, n, k, static_cast<float*>(x->data), sa, static_cast<float*>(y->data), sb,
               static_cast<float*>(o->data), acc);
  return undefined(env);
}

napi_value Permute(napi_env env, napi_callback_info info) {
  Args a(env, info, "permute");
  BufRec* x = a.buf(0, "x", -1);
  std::vector<int64_t> shape = a.dims(1, "shape");
  std::vector<int64_t> perm = a.dims(2, "perm");
  BufRec* o = a.buf(3, "out", -1);
  if (!a.ok()) return nullptr;
  std::vector<bool> seen(shape.size(), false);
  bool good = perm.size() == shape.size();
  for (size_t i = 0; good && i < perm.size(); i++) {
    good = perm[i] < int64_t(shape.size()) && !seen[size_t(perm[i])];
    if (good) seen[size_t(perm[i])] = true;
  }
  if (!good) return a.fail("STEPWISE_SHAPE", "perm is not a permutation of the shape's dims");
  if (x->dtype != o->dtype) return a.fail("STEPWISE_DTYPE", "x and out dtypes differ");
  a.need(x, numel(shape), "x");
  a.need(o, numel(shape), "out");
  if (!a.ok()) return nullptr;
  if (numel(shape) == 0) return undefined(env);
  permute(x->data, dtype_bytes(x->dtype), shape.data(), perm.data(), int(shape.size()), o->data);
  return undefined(env);
}

napi_value CopyRange(napi_env env, napi_callback_info info) {
  Args a(env, info, "copyRange");
  BufRec* s = a.buf(0, "src", -1);
  int64_t sdim = a.i64(1, "srcDim"), sstart = a.i64(2, "srcStart");
  BufRec* d = a.buf(3, "dst", -1);
  int64_t ddim = a.i64(4, "dstDim"), dstart = a.i64(5, "dstStart");
  int64_t outer = a.i64(6, "outer"), len = a.i64(7, "len"), inner = a.i64(8, "inner");
  bool acc = a.flag(9);
  if (!a.ok()) return nullptr;
  if (s->dtype != d->dtype) return a.fail("STEPWISE_DTYPE", "src and dst dtypes differ");
  if (acc && s->dtype != kF32) return a.fail("STEPWISE_DTYPE", "accumulate needs f32");
  if (sstart + len > sdim || dstart + len > ddim)
    return a.fail("STEPWISE_SHAPE", "range [" + std::to_string(sstart) + ", +" + std::to_string(len) +
                                        ") or its destination is outside its dim");
  a.need(s, outer * sdim * inner, "src");
  a.need(d, outer * ddim * inner, "dst");
  if (!a.ok()) return nullptr;
  copy_range(s->data, sdim, sstart, d->data, ddim, dstart, outer, len, inner, dtype_bytes(s->dtype), acc);
  return undefined(env);
}

napi_value Gather(napi_env env, napi_callback_info info) {
  Args a(env, info, "gather");
  BufRec* t = a.buf(0, "table");
  BufRec* ids = a.buf(1, "ids", kI32);
  BufRec* o = a.buf(2, "out");
  int64_t n = a.i64(3, "n"), v = a.i64(4, "v"), c = a.i64(5, "c");
  a.need(t, v * c, "table");
  a.need(ids, n, "ids");
  a.need(o, n * c, "out");
  if (!a.ok()) return nullptr;
  std::string err = gather(static_cast<float*>(t->data), static_cast<int32_t*>(ids->data),
                           static_cast<float*>(o->data), n, v, c);
  if (!err.empty()) {
    napi_throw_error(env, "STEPWISE_INDEX", err.c_str());
    return nullptr;
  }
  return undefined(env);
}

napi_value ScatterAdd(napi_env env, napi_callback_info info) {
  Args a(env, info, "scatterAdd");
  BufRec* g = a.buf(0, "g");
  BufRec* ids = a.buf(1, "ids", kI32);
  BufRec* o = a.buf(2, "out");
  int64_t n = a.i64(3, "n"), v = a.i64(4, "v"), c = a.i64(5, "c");
  a.need(g, n * c, "g");
  a.need(ids, n, "ids");
  a.need(o, v * c, "out");
  if (!a.ok()) return nullptr;
  std::string err = scatter_add(static_cast<float*>(g->data), static_cast<int32_t*>(ids->data),
                                static_cast<float*>(o->data), n, v, c);
  if (!err.empty()) {
    napi_throw_error(env, "STEPWISE_INDEX", err.c_str());
    return nullptr;
  }
  return undefined(env);
}

// ---------------------------------------------------------------- nn

napi_value RmsNorm(napi_env env, napi_callback_info info) {
  Args a(env, info, "rmsnorm");
  BufRec* x = a.buf(0, "x");
  BufRec* w = a.buf(1, "w");
  BufRec* o = a.buf(2, "out");
  BufRec* r = a.buf(3, "rstd");
  int64_t n = a.i64(4, "n"), c = a.i64(5, "c");
  double eps = a.num(6, "eps");
  a.need(x, n * c, "x");
  a.need(w, c, "w");
  a.need(o, n * c, "out");
  a.need(r, n, "rstd");
  if (!a.ok()) return nullptr;
  rmsnorm(static_cast<float*>(x->data), static_cast<float*>(w->data), static_cast<float*>(o->data),
          static_cast<float*>(r->data), n, c, float(eps));
  return undefined(env);
}

napi_value RmsNormGrad(napi_env env, napi_callback_info info) {
  Args a(env, info, "rmsnormGrad");
  BufRec* x = a.buf(0, "x");
  BufRec* w = a.buf(1, "w");
  BufRec* r = a.buf(2, "rstd");
  BufRec* g = a.buf(3, "g");
  BufRec* dx = a.buf(4, "dx");
  BufRec* dw = a.buf(5, "dw");
  int64_t n = a.i64(6, "n"), c = a.i64(7, "c");
  a.need(x, n * c, "x");
  a.need(w, c, "w");
  a.need(r, n, "rstd");
  a.need(g, n * c, "g");
  a.need(dx, n * c, "dx");
  a.need(dw, c, "dw");
  if (!a.ok()) return nullptr;
  rmsnorm_grad(static_cast<float*>(x->data), static_cast<float*>(w->data), static_cast<float*>(r->data),
               static_cast<float*>(g->data), static_cast<float*>(dx->data), static_cast<float*>(dw->data), n, c);
  return undefined(env);
}

napi_value Rope(napi_env env, napi_callback_info info) {
  Args a(env, info, "rope");
  BufRec* x = a.buf(0, "x");
  BufRec* cs = a.buf(1, "cos");
  BufRec* sn = a.buf(2, "sin");
  BufRec* pos = a.buf(3, "pos", kI32);
  BufRec* o = a.buf(4, "out");
  int64_t b = a.i64(5, "b"), t = a.i64(6, "t"), h = a.i64(7, "h"), d = a.i64(8, "d");
  bool inverse = a.flag(9);
  if (a.ok() && d % 2 != 0) a.fail("STEPWISE_SHAPE", "head size d must be even, got " + std::to_string(d));
  a.need(x, b * t * h * d, "x");
  a.need(o, b * t * h * d, "out");
  a.need(pos, b * t, "pos");
  if (a.ok() && cs->size != sn->size) a.fail("STEPWISE_SHAPE", "cos and sin sizes differ");
  if (!a.ok()) return nullptr;
  int64_t npos = d == 0 ? 0 : cs->size / (d / 2);
  std::string err = rope(static_cast<float*>(x->data), static_cast<float*>(cs->data), static_cast<float*>(sn->data),
                         npos, static_cast<int32_t*>(pos->data), static_cast<float*>(o->data), b, t, h, d, inverse);
  if (!err.empty()) {
    napi_throw_error(env, "STEPWISE_INDEX", err.c_str());
    return nullptr;
  }
  return undefined(env);
}

/** Reads b, tq, tk, h, hkv, d, scale, causal from args[i..i+8) and checks them. */
Attn attn_params(Args& a, size_t i) {
  Attn p;
  p.b = a.i64(i, "b");
  p.tq = a.i64(i + 1, "tq");
  p.tk = a.i64(i + 2, "tk");
  p.h = a.i64(i + 3, "h", 1);
  p.hkv = a.i64(i + 4, "hkv", 1);
  p.d = a.i64(i + 5, "d");
  p.scale = float(a.num(i + 6, "scale"));
  p.causal = a.flag(i + 7);
  if (a.ok() && p.h % p.hkv != 0)
    a.fail("STEPWISE_SHAPE", "h (" + std::to_string(p.h) + ") must be a multiple of hkv (" + std::to_string(p.hkv) + ")");
  return p;
}

napi_value Attention(napi_env env, napi_callback_info info) {
  Args a(env, info, "attention");
  BufRec* q = a.buf(0, "q");
  BufRec* k = a.buf(1, "k");
  BufRec* v = a.buf(2, "v");
  BufRec* m = a.buf_or_null(3, "keyMask", kI32);
  BufRec* o = a.buf(4, "out");
  BufRec* l = a.buf(5, "lse");
  Attn p = attn_params(a, 6);
  a.need(q, p.b * p.tq * p.h * p.d, "q");
  a.need(k, p.b * p.tk * p.hkv * p.d, "k");
  a.need(v, p.b * p.tk * p.hkv * p.d, "v");
  if (m) a.need(m, p.b * p.tk, "keyMask");
  a.need(o, p.b * p.tq * p.h * p.d, "out");
  a.need(l, p.b * p.h * p.tq, "lse");
  if (!a.ok()) return nullptr;
  attention(static_cast<float*>(q->data), static_cast<float*>(k->data), static_cast<float*>(v->data),
            m ? static_cast<int32_t*>(m->data) : nullptr, static_cast<float*>(o->data), static_cast<float*>(l->data), p);
  return undefined(env);
}

napi_value AttentionGrad(napi_env env, napi_callback_info info) {
  Args a(env, info, "attentionGrad");
  BufRec* q = a.buf(0, "q");
  BufRec* k = a.buf(1, "k");
  BufRec* v = a.buf(2, "v");
  BufRec* m = a.buf_or_null(3, "keyMask", kI32);
  BufRec* o = a.buf(4, "out");
  BufRec* l = a.buf(5, "lse");
  BufRec* g = a.buf(6, "g");
  BufRec* dq = a.buf(7, "dq");
  BufRec* dk = a.buf(8, "dk");
  BufRec* dv = a.buf(9, "dv");
  Attn p = attn_params(a, 10);
  int64_t nq = p.b * p.tq * p.h * p.d, nk = p.b * p.tk * p.hkv * p.d;
  a.need(q, nq, "q");
  a.need(k, nk, "k");
  a.need(v, nk, "v");
  if (m) a.need(m, p.b * p.tk, "keyMask");
  a.need(o, nq, "out");
  a.need(l, p.b * p.h * p.tq, "lse");
  a.need(g, nq, "g");
  a.need(dq, nq, "dq");
  a.need(dk, nk, "dk");
  a.need(dv, nk, "dv");
  if (!a.ok()) return nullptr;
  attention_grad(static_cast<float*>(q->data), static_cast<float*>(k->data), static_cast<float*>(v->data),
                 m ? static_cast<int32_t*>(m->data) : nullptr, static_cast<float*>(o->data),
                 static_cast<float*>(l->data), static_cast<float*>(g->data), static_cast<float*>(dq->data),
                 static_cast<float*>(dk->data), static_cast<float*>(dv->data), p);
  return undefined(env);
}

napi_value LogSoftmax(napi_env env, napi_callback_info info) {
  Args a(env, info, "logSoftmax");
  BufRec* x = a.buf(0, "x");
  BufRec* o = a.buf(1, "out");
  int64_t n = a.i64(2, "n"), v = a.i64(3, "v");
  a.need(x, n * v, "x");
  a.need(o, n * v, "out");
  if (!a.ok()) return nullptr;
  log_softmax(static_cast<float*>(x->data), static_cast<float*>(o->data), n, v);
  return undefined(env);
}

napi_value LogSoftmaxGrad(napi_env env, napi_callback_info info) {
  Args a(env, info, "logSoftmaxGrad");
  BufRec* y = a.buf(0, "y");
  BufRec* g = a.buf(1, "g");
  BufRec* dx = a.buf(2, "dx");
  int64_t n = a.i64(3, "n"), v = a.i64(4, "v");
  a.need(y, n * v, "y");
  a.need(g, n * v, "g");
  a.need(dx, n * v, "dx");
  if (!a.ok()) return nullptr;
  log_softmax_grad(static_cast<float*>(y->data), static_cast<float*>(g->data), static_cast<float*>(dx->data), n, v);
  return undefined(env);
}

napi_value TokenLogprobs(napi_env env, napi_callback_info info) {
  Args a(env, info, "tokenLogprobs");
  BufRec* x = a.buf(0, "logits");
  BufRec* t = a.buf(1, "targets", kI32);
  BufRec* o = a.buf(2, "out");
  BufRec* l = a.buf(3, "lse");
  int64_t n = a.i64(4, "n"), v = a.i64(5, "v");
  a.need(x, n * v, "logits");
  a.need(t, n, "targets");
  a.need(o, n, "out");
  a.need(l, n, "lse");
  if (!a.ok()) return nullptr;
  std::string err = token_logprobs(static_cast<float*>(x->data), static_cast<int32_t*>(t->data),
                                   static_cast<float*>(o->data), static_cast<float*>(l->data), n, v);
  if (!err.empty()) {
    napi_throw_error(env, "STEPWISE_INDEX", err.c_str());
    return nullptr;
  }
  return undefined(env);
}

napi_value TokenLogprobsGrad(napi_env env, napi_callback_info info) {
  Args a(env, info, "tokenLogprobsGrad");
  BufRec* x = a.buf(0, "logits");
  BufRec* t = a.buf(1, "targets", kI32);
  BufRec* l = a.buf(2, "lse");
  BufRec* g = a.buf(3, "g");
  BufRec* dx = a.buf(4, "dlogits");
  int64_t n = a.i64(5, "n"), v = a.i64(6, "v");
  a.need(x, n * v, "logits");
  a.need(t, n, "targets");
  a.need(l, n, "lse");
  a.need(g, n, "g");
  a.need(dx, n * v, "dlogits");
  if (!a.ok()) return nullptr;
  std::string err = token_logprobs_grad(static_cast<float*>(x->data), static_cast<int32_t*>(t->data),
                                        static_cast<float*>(l->data), static_cast<float*>(g->data),
                                        static_cast<float*>(dx->data), n, v);
  if (!err.empty()) {
    napi_throw_error(env, "STEPWISE_INDEX", err.c_str());
    return nullptr;
  }
  return undefined(env);
}

napi_value AdamWStep(napi_env env, napi_callback_info info) {
  Args a(env, info, "adamw");
  BufRec* p = a.buf(0, "param");
  BufRec* g = a.buf(1, "grad");
  BufRec* m = a.buf(2, "m");
  BufRec* v = a.buf(3, "v");
  AdamW h;
  h.lr = a.num(4, "lr");
  h.beta1 = a.num(5, "beta1");
  h.beta2 = a.num(6, "beta2");
  h.eps = a.num(7, "eps");
  h.weight_decay = a.num(8, "weightDecay");
  h.step = a.i64(9, "step", 1);
  a.need(g, p->size, "grad");
  a.need(m, p->size, "m");
  a.need(v, p->size, "v");
  if (!a.ok()) return nullptr;
  adamw(static_cast<float*>(p->data), static_cast<float*>(g->data), static_cast<float*>(m->data),
        static_cast<float*>(v->data), p->size, h);
  return undefined(env);
}

napi_value Init(napi_env env, napi_value exports) {
  struct Fn {
    const char* name;
    napi_callback cb;
  };
  const Fn fns[] = {
      {"alloc", Alloc}, {"free", Free}, {"write", Write}, {"read", Read}, {"liveBuffers", Live},
      {"setThreads", SetThreads}, {"threads", Threads}, {"fmaPeakGflops", FmaPeak}, {"fill", Fill},
      {"cast", Cast}, {"unary", Unary}, {"unaryGrad", UnaryGrad}, {"binary", Binary}, {"sumTo", SumTo},
      {"reduce", Reduce}, {"reduceMaxGrad", ReduceMaxGrad}, {"sumSquares", SumSquares}, {"matmul", Matmul},
      {"permute", Permute}, {"copyRange", CopyRange}, {"gather", Gather}, {"scatterAdd", ScatterAdd},
      {"rmsnorm", RmsNorm}, {"rmsnormGrad", RmsNormGrad}, {"rope", Rope}, {"attention", Attention},
      {"attentionGrad", AttentionGrad}, {"logSoftmax", LogSoftmax}, {"logSoftmaxGrad", LogSoftmaxGrad},
      {"tokenLogprobs", TokenLogprobs}, {"tokenLogprobsGrad", TokenLogprobsGrad}, {"adamw", AdamWStep},
  };
  for (const Fn& f : fns) {
    napi_value v;
    napi_create_function(env, f.name, NAPI_AUTO_LENGTH, f.cb, nullptr, &v);
    napi_set_named_property(env, exports, f.name, v);
  }
  return exports;
}

}  // namespace
}  // namespace sw

NAPI_MODULE(NODE_GYP_MODULE_NAME, sw::Init)
