// Reductions: sums accumulate in double (then round once, like the reference), max propagates NaN.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels.h"
#include "pool.h"
#include "simd.h"

namespace sw {

double sum_f64(const float* x, int64_t n) {
  int64_t i = 0;
  double s = 0;
#if SW_AVX2
  __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
  for (; i + 16 <= n; i += 16) {
    a0 = _mm256_add_pd(a0, _mm256_cvtps_pd(_mm_loadu_ps(x + i)));
    a1 = _mm256_add_pd(a1, _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4)));
    a2 = _mm256_add_pd(a2, _mm256_cvtps_pd(_mm_loadu_ps(x + i + 8)));
    a3 = _mm256_add_pd(a3, _mm256_cvtps_pd(_mm_loadu_ps(x + i + 12)));
  }
  s = hsum4d(_mm256_add_pd(_mm256_add_pd(a0, a1), _mm256_add_pd(a2, a3)));
#endif
  for (; i < n; i++) s += x[i];
  return s;
}

double sumsq_f64(const float* x, int64_t n) {
  int64_t i = 0;
  double s = 0;
#if SW_AVX2
  __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
  for (; i + 16 <= n; i += 16) {
    __m256d v0 = _mm256_cvtps_pd(_mm_loadu_ps(x + i)), v1 = _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4));
    __m256d v2 = _mm256_cvtps_pd(_mm_loadu_ps(x + i + 8)), v3 = _mm256_cvtps_pd(_mm_loadu_ps(x + i + 12));
    a0 = _mm256_fmadd_pd(v0, v0, a0);
    a1 = _mm256_fmadd_pd(v1, v1, a1);
    a2 = _mm256_fmadd_pd(v2, v2, a2);
    a3 = _mm256_fmadd_pd(v3, v3, a3);
  }
  s = hsum4d(_mm256_add_pd(_mm256_add_pd(a0, a1), _mm256_add_pd(a2, a3)));
#endif
  for (; i < n; i++) s += double(x[i]) * x[i];
  return s;
}

float max_f32(const float* x, int64_t n) {
  int64_t i = 0;
  float m = -std::numeric_limits<float>::infinity();
  bool nan = false;
#if SW_AVX2
  __m256 mv = _mm256_set1_ps(m), nv = _mm256_setzero_ps();
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_loadu_ps(x + i);
    nv = _mm256_or_ps(nv, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    mv = _mm256_max_ps(mv, v);
  }
  nan = _mm256_movemask_ps(nv) != 0;
  m = hmax8(mv);
#endif
  for (; i < n; i++) {
    if (x[i] != x[i]) nan = true;
    else if (x[i] > m) m = x[i];
  }
  return nan ? std::numeric_limits<float>::quiet_NaN() : m;
}

void reduce_sum(const float* x, int64_t outer, int64_t n, int64_t inner, float* out) {
  if (inner == 1) {
    parallel_for(outer, n, [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; o++) out[o] = float(sum_f64(x + o * n, n));
    });
    return;
  }
  // Columns in blocks of 256: a double accumulator per column, rows streamed in order.
  const int64_t CB = 256;
  int64_t nb = (inner + CB - 1) / CB;
  parallel_for(outer * nb, n * std::min(inner, CB), [&](int64_t t0, int64_t t1) {
    double acc[CB];
    for (int64_t t = t0; t < t1; t++) {
      int64_t o = t / nb, j0 = (t % nb) * CB, w = std::min(CB, inner - j0);
      std::fill(acc, acc + w, 0.0);
      for (int64_t i = 0; i < n; i++) {
        const float* row = x + (o * n + i) * inner + j0;
        for (int64_t j = 0; j < w; j++) acc[j] += row[j];
      }
      for (int64_t j = 0; j < w; j++) out[o * inner + j0 + j] = float(acc[j]);
    }
  });
}

void reduce_max(const float* x, int64_t outer, int64_t n, int64_t inner, float* out) {
  if (inner == 1) {
    parallel_for(outer, n, [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; o++) out[o] = max_f32(x + o * n, n);
    });
    return;
  }
  const float ninf = -std::numeric_limits<float>::infinity();
  parallel_for(outer * inner, n, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; t++) {
      int64_t o = t / inner, j = t % inner;
      float m = ninf;
      for (int64_t i = 0; i < n; i++) {
        float v = x[(o * n + i) * inner + j];
        if (v > m || v != v) m = v;
      }
      out[t] = m;
    }
  });
}

void reduce_max_grad(const float* x, const float* g, int64_t outer, int64_t n, int64_t inner, float* out) {
  parallel_for(outer, n * inner, [&](int64_t b, int64_t e) {
    std::vector<int64_t> best(size_t(inner), 0);
    for (int64_t o = b; o < e; o++) {
      const float* xo = x + o * n * inner;
      float* oo = out + o * n * inner;
      std::fill(oo, oo + n * inner, 0.0f);
      std::fill(best.begin(), best.end(), 0);
      for (int64_t i = 1; i < n; i++)  // the first strict maximum, as the reference picks it
        for (int64_t j = 0; j < inner; j++)
          if (xo[i * inner + j] > xo[best[j] * inner + j]) best[j] = i;
      if (n > 0)
        for (int64_t j = 0; j < inner; j++) oo[best[j] * inner + j] = g[o * inner + j];
    }
  });
}

void sum_to(const float* x, const int64_t* xs, float* out, const int64_t* os, int rank) {
  // Merge adjacent dims that are both kept or both reduced; size-1 dims of x vanish.
  std::vector<int64_t> shape;
  std::vector<bool> kept;
  for (int i = 0; i < rank; i++) {
    if (xs[i] == 1) continue;
    bool k = os[i] != 1;
    if (!shape.empty() && kept.back() == k) shape.back() *= xs[i];
    else {
      shape.push_back(xs[i]);
      kept.push_back(k);
    }
  }
  int r = int(shape.size());
  int64_t total = 1;
  for (int64_t s : shape) total *= s;
  if (r == 0 || (r == 1 && kept[0])) {  // nothing reduced: a copy
    cast(x, kF32, out, kF32, total);
    return;
  }
  // (kept?) reduced (kept?) is exactly reduce_sum(outer, n, inner).
  if (r <= 3) {
    int64_t outer = 1, n = 1, inner = 1;
    int i = 0;
    if (kept[0]) outer = shape[i++];
    if (i < r && !kept[i]) n = shape[i++];
    if (i < r && kept[i]) inner = shape[i++];
    if (i == r) {
      reduce_sum(x, outer, n, inner, out);
      return;
    }
  }
  // General pattern: accumulate every element into its output slot (strides of out, 0 on reduced dims).
  std::vector<int64_t> ost(static_cast<size_t>(r)), idx(static_cast<size_t>(r), 0);
  int64_t s = 1;
  for (int i = r - 1; i >= 0; i--) {
    ost[i] = kept[i] ? s : 0;
    if (kept[i]) s *= shape[i];
  }
  std::vector<double> acc(size_t(s), 0.0);
  int64_t off = 0;
  for (int64_t e = 0; e < total; e++) {
    acc[off] += x[e];
    for (int i = r - 1; i >= 0; i--) {
      off += ost[i];
      if (++idx[i] < shape[i]) break;
      off -= ost[i] * shape[i];
      idx[i] = 0;
    }
  }
  for (int64_t i = 0; i < s; i++) out[i] = float(acc[i]);
}

double sum_squares(const float* x, int64_t n) {
  // Fixed chunks summed in order: the result does not depend on the thread count.
  const int64_t CH = 1 << 16;
  int64_t nc = (n + CH - 1) / CH;
  std::vector<double> part(size_t(std::max<int64_t>(nc, 1)), 0.0);
  parallel_for(nc, CH, [&](int64_t b, int64_t e) {
    for (int64_t c = b; c < e; c++) part[c] = sumsq_f64(x + c * CH, std::min(CH, n - c * CH));
  });
  double s = 0;
  for (double p : part) s += p;
  return s;
}

}  // namespace sw
