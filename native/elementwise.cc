// Elementwise kernels: fill, cast, unary and its gradient, broadcasting binary ops.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels.h"
#include "pool.h"
#include "simd.h"

namespace sw {

int dtype_bytes(int dt) { return dt == kF64 ? 8 : (dt == kF16 || dt == kBF16) ? 2 : 4; }

namespace {

// --- 16-bit floats, round to nearest even ---
inline float bf16_to_f32(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x7fffffu)) return uint16_t((u >> 16) | 0x40);  // quiet NaN
  return uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
inline float f16_to_f32(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, u;
  if (exp == 0) {
    float f = std::ldexp(float(mant), -24);
    return sign ? -f : f;
  }
  if (exp == 0x1f) u = sign | 0x7f800000u | (mant << 13);
  else u = sign | ((exp + 112) << 23) | (mant << 13);
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint16_t f32_to_f16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  uint32_t sign = (u >> 16) & 0x8000, exp = (u >> 23) & 0xff, mant = u & 0x7fffff;
  if (exp == 0xff) return uint16_t(sign | 0x7c00 | (mant ? 0x200 : 0));
  int e = int(exp) - 127 + 15;
  if (e >= 0x1f) return uint16_t(sign | 0x7c00);
  if (e <= 0) {
    if (e < -10) return uint16_t(sign);
    mant |= 0x800000;
    int shift = 14 - e;
    uint32_t r = mant >> shift, rest = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rest > half || (rest == half && (r & 1))) r++;
    return uint16_t(sign | r);
  }
  uint32_t r = (uint32_t(e) << 10) | (mant >> 13), rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (r & 1))) r++;
  return uint16_t(sign | r);
}

/** Loads element i of a buffer of dtype dt as float. */
inline float load_f(const void* p, int dt, int64_t i) {
  switch (dt) {
    case kF32: return static_cast<const float*>(p)[i];
    case kF64: return float(static_cast<const double*>(p)[i]);
    case kI32: return float(static_cast<const int32_t*>(p)[i]);
    case kF16: return f16_to_f32(static_cast<const uint16_t*>(p)[i]);
    default: return bf16_to_f32(static_cast<const uint16_t*>(p)[i]);
  }
}

void f16_to_f32_n(const uint16_t* x, float* out, int64_t n) {
  int64_t i = 0;
#if SW_AVX2 && defined(__F16C__)
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i))));
#endif
  for (; i < n; i++) out[i] = f16_to_f32(x[i]);
}

void f32_to_f16_n(const float* x, uint16_t* out, int64_t n) {
  int64_t i = 0;
#if SW_AVX2 && defined(__F16C__)
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
#endif
  for (; i < n; i++) out[i] = f32_to_f16(x[i]);
}

}  // namespace

void fill(void* out, int dt, int64_t n, double value) {
  parallel_for(n, 1, [&](int64_t b, int64_t e) {
    switch (dt) {
      case kF32: std::fill(static_cast<float*>(out) + b, static_cast<float*>(out) + e, float(value)); break;
      case kF64: std::fill(static_cast<double*>(out) + b, static_cast<double*>(out) + e, value); break;
      case kI32: std::fill(static_cast<int32_t*>(out) + b, static_cast<int32_t*>(out) + e, int32_t(value)); break;
      case kF16: std::fill(static_cast<uint16_t*>(out) + b, static_cast<uint16_t*>(out) + e, f32_to_f16(float(value))); break;
      default: std::fill(static_cast<uint16_t*>(out) + b, static_cast<uint16_t*>(out) + e, f32_to_bf16(float(value))); break;
    }
  });
}

bool cast(const void* x, int xdt, void* out, int odt, int64_t n) {
  if (xdt == odt) {
    int64_t eb = dtype_bytes(xdt);
    parallel_for(n, 1, [&](int64_t b, int64_t e) {
      std::memcpy(static_cast<char*>(out) + b * eb, static_cast<const char*>(x) + b * eb, size_t((e - b) * eb));
    });
    return true;
  }
  if (odt == kI32) return false;  // float -> int is not a cast the engine needs
  parallel_for(n, 2, [&](int64_t b, int64_t e) {
    if (xdt == kF16 && odt == kF32) {
      f16_to_f32_n(static_cast<const uint16_t*>(x) + b, static_cast<float*>(out) + b, e - b);
    } else if (xdt == kF32 && odt == kF16) {
      f32_to_f16_n(static_cast<const float*>(x) + b, static_cast<uint16_t*>(out) + b, e - b);
    } else if (xdt == kF64 && odt == kF32) {  // direct, one rounding
      for (int64_t i = b; i < e; i++) static_cast<float*>(out)[i] = float(static_cast<const double*>(x)[i]);
    } else if (xdt == kI32 && odt == kF64) {
      for (int64_t i = b; i < e; i++) static_cast<double*>(out)[i] = double(static_cast<const int32_t*>(x)[i]);
    } else {
      for (int64_t i = b; i < e; i++) {
        float v = load_f(x, xdt, i);
        switch (odt) {
          case kF32: static_cast<float*>(out)[i] = v; break;
          case kF64: static_cast<double*>(out)[i] = double(v); break;
          case kF16: static_cast<uint16_t*>(out)[i] = f32_to_f16(v); break;
          default: static_cast<uint16_t*>(out)[i] = f32_to_bf16(v); break;
        }
      }
    }
  });
  return true;
}

// ---------------------------------------------------------------- unary

namespace {

inline float sigmoid1(float x) { return 1.0f / (1.0f + std::exp(-x)); }

/** Forward of one op on a scalar (the reference formulas, in float). */
inline float unary1(int op, float x, float a) {
  switch (op) {
    case kNeg: return -x;
    case kExp: return std::exp(x);
    case kLog: return std::log(x);
    case kSqrt: return std::sqrt(x);
    case kRsqrt: return 1.0f / std::sqrt(x);
    case kSilu: return x * sigmoid1(x);
    case kSigmoid: return sigmoid1(x);
    case kLogSigmoid: return std::min(x, 0.0f) - std::log1p(std::exp(-std::fabs(x)));
    case kRelu: return x > 0 ? x : 0.0f;
    case kTanh: return std::tanh(x);
    case kSquare: return x * x;
    case kAbs: return std::fabs(x);
    case kScale: return a * x;
    case kAddScalar: return x + a;
    default: return float(std::pow(double(x), double(a)));
  }
}

inline float sign1(float x) { return x > 0 ? 1.0f : x < 0 ? -1.0f : x; }  // keeps 0, -0 and NaN

/** d op / dx at x. */
inline float der1(int op, float x, float a) {
  switch (op) {
    case kNeg: return -1.0f;
    case kExp: return std::exp(x);
    case kLog: return 1.0f / x;
    case kSqrt: return 0.5f / std::sqrt(x);
    case kRsqrt: return -0.5f / (x * std::sqrt(x));
    case kSilu: {
      float s = sigmoid1(x);
      return s * (1.0f + x * (1.0f - s));
    }
    case kSigmoid: {
      float s = sigmoid1(x);
      return s * (1.0f - s);
    }
    case kLogSigmoid: return sigmoid1(-x);
    case kRelu: return x > 0 ? 1.0f : 0.0f;
    case kTanh: {
      float t = std::tanh(x);
      return 1.0f - t * t;
    }
    case kSquare: return 2.0f * x;
    case kAbs: return sign1(x);
    case kScale: return a;
    case kAddScalar: return 1.0f;
    default: return float(double(a) * std::pow(double(x), double(a) - 1.0));
  }
}

#if SW_AVX2
inline __m256 sigmoid8(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.0f);
  __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), x));
  return _mm256_div_ps(one, _mm256_add_ps(one, e));
}

/** Vector forward for the ops worth vectorising by hand; returns false for the rest. */
inline bool unary8(int op, __m256 x, __m256 a, __m256* y) {
  const __m256 zero = _mm256_setzero_ps();
  switch (op) {
    case kNeg: *y = _mm256_sub_ps(zero, x); return true;
    case kExp: *y = exp8(x); return true;
    case kSqrt: *y = _mm256_sqrt_ps(x); return true;
    case kRsqrt: *y = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_sqrt_ps(x)); return true;
    case kSilu: *y = _mm256_mul_ps(x, sigmoid8(x)); return true;
    case kSigmoid: *y = sigmoid8(x); return true;
    case kRelu: *y = _mm256_and_ps(x, _mm256_cmp_ps(x, zero, _CMP_GT_OQ)); return true;
    case kSquare: *y = _mm256_mul_ps(x, x); return true;
    case kAbs: *y = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x); return true;
    case kScale: *y = _mm256_mul_ps(a, x); return true;
    case kAddScalar: *y = _mm256_add_ps(x, a); return true;
    default: return false;
  }
}

inline bool der8(int op, __m256 x, __m256 a, __m256* y) {
  const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
  switch (op) {
    case kNeg: *y = _mm256_set1_ps(-1.0f); return true;
    case kExp: *y = exp8(x); return true;
    case kSilu: {
      __m256 s = sigmoid8(x);
      *y = _mm256_mul_ps(s, _mm256_fmadd_ps(x, _mm256_sub_ps(one, s), one));
      return true;
    }
    case kSigmoid: {
      __m256 s = sigmoid8(x);
      *y = _mm256_mul_ps(s, _mm256_sub_ps(one, s));
      return true;
    }
    case kLogSigmoid: *y = sigmoid8(_mm256_sub_ps(zero, x)); return true;
    case kRelu: *y = _mm256_and_ps(one, _mm256_cmp_ps(x, zero, _CMP_GT_OQ)); return true;
    case kSquare: *y = _mm256_add_ps(x, x); return true;
    case kScale: *y = a; return true;
    case kAddScalar: *y = one; return true;
    default: return false;
  }
}
#endif

}  // namespace

void unary(int op, const float* x, float* out, int64_t n, float alpha) {
  int64_t cost = (op == kLog || op == kTanh || op == kLogSigmoid || op == kPowScalar) ? 20 : 4;
  parallel_for(n, cost, [&](int64_t b, int64_t e) {
    int64_t i = b;
#if SW_AVX2
    __m256 a = _mm256_set1_ps(alpha), y;
    if (unary8(op, _mm256_setzero_ps(), a, &y)) {
      for (; i + 8 <= e; i += 8) {
        unary8(op, _mm256_loadu_ps(x + i), a, &y);
        _mm256_storeu_ps(out + i, y);
      }
    }
#endif
    if (op == kPowScalar && alpha == 2.0f) {
      for (; i < e; i++) out[i] = x[i] * x[i];
    }
    for (; i < e; i++) out[i] = unary1(op, x[i], alpha);
  });
}

void unary_grad(int op, const float* x, const float* g, float* out, int64_t n, float alpha) {
  int64_t cost = (op == kLog || op == kTanh || op == kPowScalar) ? 20 : 4;
  parallel_for(n, cost, [&](int64_t b, int64_t e) {
    int64_t i = b;
#if SW_AVX2
    __m256 a = _mm256_set1_ps(alpha), y;
    if (der8(op, _mm256_setzero_ps(), a, &y)) {
      for (; i + 8 <= e; i += 8) {
        der8(op, _mm256_loadu_ps(x + i), a, &y);
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_loadu_ps(g + i), y));
      }
    }
#endif
    for (; i < e; i++) out[i] = g[i] * der1(op, x[i], alpha);
  });
}

// ---------------------------------------------------------------- binary

namespace {

template <int OP>
inline float bin1(float a, float b) {
  if (OP == kAdd) return a + b;
  if (OP == kSub) return a - b;
  if (OP == kMul) return a * b;
  if (OP == kDiv) return a / b;
  if (OP == kMaximum) return (a >= b || a != a) ? a : b;
  return (a <= b || a != a) ? a : b;
}

#if SW_AVX2
template <int OP>
inline __m256 bin8(__m256 a, __m256 b) {
  if (OP == kAdd) return _mm256_add_ps(a, b);
  if (OP == kSub) return _mm256_sub_ps(a, b);
  if (OP == kMul) return _mm256_mul_ps(a, b);
  if (OP == kDiv) return _mm256_div_ps(a, b);
  // a where (a >= b or a is NaN) else b: the reference's rule, NaN included.
  __m256 keep_a = OP == kMaximum ? _mm256_cmp_ps(a, b, _CMP_GE_OQ) : _mm256_cmp_ps(a, b, _CMP_LE_OQ);
  keep_a = _mm256_or_ps(keep_a, _mm256_cmp_ps(a, a, _CMP_UNORD_Q));
  return _mm256_blendv_ps(b, a, keep_a);
}
#endif

/** One row: out[i] = a[i * sa] op b[i * sb] with sa, sb in {0, 1}. */
template <int OP>
void bin_row(const float* a, int64_t sa, const float* b, int64_t sb, float* out, int64_t n) {
  int64_t i = 0;
#if SW_AVX2
  if (sa && sb) {
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, bin8<OP>(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
  } else if (sa) {
    __m256 bv = _mm256_set1_ps(b[0]);
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, bin8<OP>(_mm256_loadu_ps(a + i), bv));
  } else if (sb) {
    __m256 av = _mm256_set1_ps(a[0]);
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, bin8<OP>(av, _mm256_loadu_ps(b + i)));
  }
#endif
  for (; i < n; i++) out[i] = bin1<OP>(a[i * sa], b[i * sb]);
}

template <int OP>
void binary_op(const float* a, const int64_t* as, const float* b, const int64_t* bs, float* out, const int64_t* os,
               int rank) {
  // Strides with 0 on broadcast dims, then merge adjacent dims that stay contiguous for a, b and out.
  std::vector<int64_t> shape, sa, sb;
  int64_t stA = 1, stB = 1;
  std::vector<int64_t> fa(rank), fb(rank);
  for (int i = rank - 1; i >= 0; i--) {
    fa[i] = (as[i] == 1 && os[i] != 1) ? 0 : stA;
    fb[i] = (bs[i] == 1 && os[i] != 1) ? 0 : stB;
    stA *= as[i];
    stB *= bs[i];
  }
  for (int i = 0; i < rank; i++) {
    if (os[i] == 1) continue;
    if (!shape.empty() && sa.back() == fa[i] * os[i] && sb.back() == fb[i] * os[i]) {
      shape.back() *= os[i];
      sa.back() = fa[i];
      sb.back() = fb[i];
    } else {
      shape.push_back(os[i]);
      sa.push_back(fa[i]);
      sb.push_back(fb[i]);
    }
  }
  if (shape.empty()) {  // a single element
    out[0] = bin1<OP>(a[0], b[0]);
    return;
  }
  int r = int(shape.size());
  int64_t inner = shape[r - 1], rows = 1;
  for (int i = 0; i < r - 1; i++) rows *= shape[i];
  // Work items are (row, column chunk), so that one long row (same shapes) still spreads over the threads.
  const int64_t CH = 1 << 14;
  int64_t chunks = (inner + CH - 1) / CH, cw = (inner + chunks - 1) / chunks;
  parallel_for(rows * chunks, cw, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; t++) {
      int64_t row = t / chunks, j0 = (t % chunks) * cw, w = std::min(cw, inner - j0);
      int64_t offA = 0, offB = 0, rem = row;
      for (int i = r - 2; i >= 0; i--) {
        int64_t idx = rem % shape[i];
        rem /= shape[i];
        offA += idx * sa[i];
        offB += idx * sb[i];
      }
      int64_t ia = sa[r - 1], ib = sb[r - 1];
      bin_row<OP>(a + offA + j0 * ia, ia, b + offB + j0 * ib, ib, out + row * inner + j0, w);
    }
  });
}

}  // namespace

void binary(int op, const float* a, const int64_t* as, const float* b, const int64_t* bs, float* out,
            const int64_t* os, int rank) {
  switch (op) {
    case kAdd: return binary_op<kAdd>(a, as, b, bs, out, os, rank);
    case kSub: return binary_op<kSub>(a, as, b, bs, out, os, rank);
    case kMul: return binary_op<kMul>(a, as, b, bs, out, os, rank);
    case kDiv: return binary_op<kDiv>(a, as, b, bs, out, os, rank);
    case kMaximum: return binary_op<kMaximum>(a, as, b, bs, out, os, rank);
    default: return binary_op<kMinimum>(a, as, b, bs, out, os, rank);
  }
}

}  // namespace sw
