// Kernel entry points on raw memory. Shapes are int64 element counts; buffers are row-major.
// Functions that can fail on bad data (ids, positions) return an error message, empty when fine.
#pragma once
#include <cstdint>
#include <string>

namespace sw {

enum DType { kF32 = 0, kF64 = 1, kI32 = 2, kF16 = 3, kBF16 = 4 };
int dtype_bytes(int dt);

enum UnaryOp { kNeg, kExp, kLog, kSqrt, kRsqrt, kSilu, kSigmoid, kLogSigmoid, kRelu, kTanh, kSquare, kAbs,
               kScale, kAddScalar, kPowScalar, kNumUnary };
enum BinaryOp { kAdd, kSub, kMul, kDiv, kMaximum, kMinimum, kNumBinary };

// --- elementwise.cc ---
void fill(void* out, int dt, int64_t n, double value);
/** Converts n elements between dtypes; returns false for an unsupported pair. */
bool cast(const void* x, int xdt, void* out, int odt, int64_t n);
void unary(int op, const float* x, float* out, int64_t n, float alpha);
void unary_grad(int op, const float* x, const float* g, float* out, int64_t n, float alpha);
/** out = a op b; shapes have the same rank (a and b right-aligned, dims 1 or equal to out's). */
void binary(int op, const float* a, const int64_t* ashape, const float* b, const int64_t* bshape, float* out,
            const int64_t* oshape, int rank);

// --- reduce.cc ---
void sum_to(const float* x, const int64_t* xshape, float* out, const int64_t* oshape, int rank);
void reduce_sum(const float* x, int64_t outer, int64_t n, int64_t inner, float* out);
void reduce_max(const float* x, int64_t outer, int64_t n, int64_t inner, float* out);
void reduce_max_grad(const float* x, const float* g, int64_t outer, int64_t n, int64_t inner, float* out);
double sum_squares(const float* x, int64_t n);

// --- layout.cc ---
void permute(const void* x, int elem_bytes, const int64_t* shape, const int64_t* perm, int rank, void* out);
void copy_range(const void* src, int64_t src_dim, int64_t src_start, void* dst, int64_t dst_dim, int64_t dst_start,
                int64_t outer, int64_t len, int64_t inner, int elem_bytes, bool accumulate_f32);
std::string gather(const float* table, const int32_t* ids, float* out, int64_t n, int64_t v, int64_t c);
std::string scatter_add(const float* g, const int32_t* ids, float* out, int64_t n, int64_t v, int64_t c);

// --- nn.cc ---
void rmsnorm(const float* x, const float* w, float* out, float* rstd, int64_t n, int64_t c, float eps);
void rmsnorm_grad(const float* x, const float* w, const float* rstd, const float* g, float* dx, float* dw, int64_t n,
                  int64_t c);
std::string rope(const float* x, const float* cos, const float* sin, int64_t npos, const int32_t* pos, float* out,
                 int64_t b, int64_t t, int64_t h, int64_t d, bool inverse);
void log_softmax(const float* x, float* out, int64_t n, int64_t v);
void log_softmax_grad(const float* y, const float* g, float* dx, int64_t n, int64_t v);
std::string token_logprobs(const float* logits, const int32_t* targets, float* out, float* lse, int64_t n, int64_t v);
std::string token_logprobs_grad(const float* logits, const int32_t* targets, const float* lse, const float* g,
                                float* dlogits, int64_t n, int64_t v);
struct AdamW {
  double lr, beta1, beta2, eps, weight_decay;
  int64_t step;
};
void adamw(float* param, const float* grad, float* m, float* v, int64_t n, const AdamW& p);

// --- attention.cc ---
struct Attn {
  int64_t b, tq, tk, h, hkv, d;
  float scale;
  bool causal;
};
void attention(const float* q, const float* k, const float* v, const int32_t* mask, float* out, float* lse,
               const Attn& p);
void attention_grad(const float* q, const float* k, const float* v, const int32_t* mask, const float* out,
                    const float* lse, const float* g, float* dq, float* dk, float* dv, const Attn& p);

}  // namespace sw
