// SIMD helpers: AVX2/FMA where the compiler targets it, plain C++ otherwise.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define SW_AVX2 1
#else
#define SW_AVX2 0
#endif

namespace sw {

#if SW_AVX2
/** e^x for 8 floats, about 1 ulp; NaN propagates, overflow gives +inf, underflow 0 (with subnormals). */
inline __m256 exp8(__m256 x) {
  const __m256 hi = _mm256_set1_ps(89.0f), lo = _mm256_set1_ps(-104.0f);
  x = _mm256_max_ps(lo, _mm256_min_ps(hi, x));  // operand order keeps NaN
  const __m256 log2e = _mm256_set1_ps(1.44269504088896341f);
  const __m256 ln2hi = _mm256_set1_ps(0.693145751953125f), ln2lo = _mm256_set1_ps(1.428606765330187e-06f);
  __m256 n = _mm256_round_ps(_mm256_mul_ps(x, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, ln2hi, x);
  r = _mm256_fnmadd_ps(n, ln2lo, r);  // r in [-ln2/2, ln2/2]
  // e^r by its Taylor series to degree 7 (error < 6e-9 on this range).
  __m256 p = _mm256_set1_ps(1.0f / 5040);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  // 2^n as two factors so that n in [-150, 128] stays representable.
  __m256i ni = _mm256_cvtps_epi32(n);
  __m256i n1 = _mm256_srai_epi32(ni, 1);
  __m256i n2 = _mm256_sub_epi32(ni, n1);
  const __m256i bias = _mm256_set1_epi32(127);
  __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
  __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
  return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

/** Horizontal sum of 8 floats. */
inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline double hsum4d(__m256d v) {
  __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
  s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
  return _mm_cvtsd_f64(s);
}
/** Horizontal max of 8 floats (NaN-free input). */
inline float hmax8(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
/** Mask for the first `n` (0..8) lanes, for masked loads and stores of row tails. */
inline __m256i tail_mask(int64_t n) {
  alignas(32) static const int32_t m[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(m + 8 - n));
}
#endif

/** Scalar e^x in float (the tail loops use this; std::exp is correctly rounded enough). */
inline float exp1(float x) { return std::exp(x); }

/** Sum of x[0..n) accumulated in double. */
double sum_f64(const float* x, int64_t n);
/** Sum of x[i]^2 in double. */
double sumsq_f64(const float* x, int64_t n);
/** Max of x[0..n); NaN if any element is NaN; -inf for n == 0. */
float max_f32(const float* x, int64_t n);

}  // namespace sw
