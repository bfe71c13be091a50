// Network kernels: RMSNorm, rotary embedding, log-softmax, token log-probs, AdamW.
// Legend: N rows, C channels, V vocab, B batch, T time, H heads, D head size, P positions in the cos/sin tables.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "kernels.h"
#include "pool.h"
#include "simd.h"

namespace sw {

// ---------------------------------------------------------------- rmsnorm

void rmsnorm(const float* x, const float* w, float* out, float* rstd, int64_t n, int64_t c, float eps) {
  parallel_for(n, 3 * c, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; r++) {
      const float* xr = x + r * c;
      float* yr = out + r * c;
      double rs = 1.0 / std::sqrt(sumsq_f64(xr, c) / double(c) + double(eps));
      rstd[r] = float(rs);
      float s = float(rs);
      int64_t j = 0;
#if SW_AVX2
      __m256 sv = _mm256_set1_ps(s);
      for (; j + 8 <= c; j += 8)
        _mm256_storeu_ps(yr + j, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(xr + j), sv), _mm256_loadu_ps(w + j)));
#endif
      for (; j < c; j++) yr[j] = xr[j] * s * w[j];
    }
  });
}

// y_j = x_j r w_j, r = (mean(x^2) + eps)^-1/2:  dx_j = r g_j w_j - x_j r^3 mean_k(g_k w_k x_k);  dw_j = sum_rows g_j x_j r
void rmsnorm_grad(const float* x, const float* w, const float* rstd, const float* g, float* dx, float* dw, int64_t n,
                  int64_t c) {
  parallel_for(n, 5 * c, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; r++) {
      const float *xr = x + r * c, *gr = g + r * c;
      float* dr = dx + r * c;
      double dot = 0;
      for (int64_t j = 0; j < c; j++) dot += double(gr[j] * w[j]) * xr[j];
      double rs = rstd[r];
      float k = float(rs * rs * rs * dot / double(c)), s = float(rs);
      for (int64_t j = 0; j < c; j++) dr[j] = s * gr[j] * w[j] - k * xr[j];
    }
  });
  // dw: threads own column blocks and walk the rows in order (no races, same result for any thread count).
  const int64_t CB = 128;
  int64_t nb = (c + CB - 1) / CB;
  parallel_for(nb, 2 * n * std::min(c, CB), [&](int64_t b, int64_t e) {
    double acc[CB];
    for (int64_t blk = b; blk < e; blk++) {
      int64_t j0 = blk * CB, wdt = std::min(CB, c - j0);
      std::fill(acc, acc + wdt, 0.0);
      for (int64_t r = 0; r < n; r++) {
        const float *xr = x + r * c + j0, *gr = g + r * c + j0;
        double rs = rstd[r];
        for (int64_t j = 0; j < wdt; j++) acc[j] += double(gr[j] * xr[j]) * rs;
      }
      for (int64_t j = 0; j < wdt; j++) dw[j0 + j] = float(acc[j]);
    }
  });
}

// ---------------------------------------------------------------- rope

std::string rope(const float* x, const float* cs, const float* sn, int64_t npos, const int32_t* pos, float* out,
                 int64_t b, int64_t t, int64_t h, int64_t d, bool inverse) {
  for (int64_t i = 0; i < b * t; i++) {
    if (pos[i] < 0 || pos[i] >= npos) {
      return "rope: position " + std::to_string(pos[i]) + " at index " + std::to_string(i) + " is outside [0, " +
             std::to_string(npos) + ")";
    }
  }
  const int64_t half = d / 2;
  const float sgn = inverse ? -1.0f : 1.0f;
  parallel_for(b * t, h * d * 3, [&](int64_t b0, int64_t b1) {
    for (int64_t bt = b0; bt < b1; bt++) {
      const float* cr = cs + int64_t(pos[bt]) * half;
      const float* sr = sn + int64_t(pos[bt]) * half;
      for (int64_t hh = 0; hh < h; hh++) {
        const float* xr = x + (bt * h + hh) * d;
        float* yr = out + (bt * h + hh) * d;
        int64_t i = 0;
#if SW_AVX2
        __m256 sg = _mm256_set1_ps(sgn);
        for (; i + 8 <= half; i += 8) {
          __m256 c = _mm256_loadu_ps(cr + i), s = _mm256_mul_ps(sg, _mm256_loadu_ps(sr + i));
          __m256 x1 = _mm256_loadu_ps(xr + i), x2 = _mm256_loadu_ps(xr + i + half);
          _mm256_storeu_ps(yr + i, _mm256_fmsub_ps(x1, c, _mm256_mul_ps(x2, s)));
          _mm256_storeu_ps(yr + i + half, _mm256_fmadd_ps(x2, c, _mm256_mul_ps(x1, s)));
        }
#endif
        for (; i < half; i++) {
          float c = cr[i], s = sgn * sr[i], x1 = xr[i], x2 = xr[i + half];
          yr[i] = x1 * c - x2 * s;
          yr[i + half] = x2 * c + x1 * s;
        }
      }
    }
  });
  return "";
}

// ---------------------------------------------------------------- softmax family

/** log(sum_j exp(x_j)) of one row, with the sum in double; -inf for a row of -inf. */
static double row_lse(const float* x, int64_t v) {
  float mx = max_f32(x, v);
  if (mx == -std::numeric_limits<float>::infinity()) return -std::numeric_limits<double>::infinity();
  double z = 0;
  int64_t j = 0;
#if SW_AVX2
  __m256 m = _mm256_set1_ps(mx);
  __m256d z0 = _mm256_setzero_pd(), z1 = z0;
  for (; j + 8 <= v; j += 8) {
    __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + j), m));
    z0 = _mm256_add_pd(z0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
    z1 = _mm256_add_pd(z1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
  }
  z = hsum4d(_mm256_add_pd(z0, z1));
#endif
  for (; j < v; j++) z += std::exp(double(x[j]) - mx);
  return double(mx) + std::log(z);
}

void log_softmax(const float* x, float* out, int64_t n, int64_t v) {
  parallel_for(n, 12 * v, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; r++) {
      const float* xr = x + r * v;
      float* yr = out + r * v;
      float l = float(row_lse(xr, v));
      int64_t j = 0;
#if SW_AVX2
      __m256 lv = _mm256_set1_ps(l);
      for (; j + 8 <= v; j += 8) _mm256_storeu_ps(yr + j, _mm256_sub_ps(_mm256_loadu_ps(xr + j), lv));
#endif
      for (; j < v; j++) yr[j] = xr[j] - l;
    }
  });
}

// y = x - lse(x):  dx_j = g_j - softmax_j sum_k g_k
void log_softmax_grad(const float* y, const float* g, float* dx, int64_t n, int64_t v) {
  parallel_for(n, 12 * v, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; r++) {
      const float *yr = y + r * v, *gr = g + r * v;
      float* dr = dx + r * v;
      float sg = float(sum_f64(gr, v));
      int64_t j = 0;
#if SW_AVX2
      __m256 s = _mm256_set1_ps(sg);
      for (; j + 8 <= v; j += 8)
        _mm256_storeu_ps(dr + j, _mm256_fnmadd_ps(exp8(_mm256_loadu_ps(yr + j)), s, _mm256_loadu_ps(gr + j)));
#endif
      for (; j < v; j++) dr[j] = gr[j] - std::exp(yr[j]) * sg;
    }
  });
}

static std::string check_targets(const char* op, const int32_t* t, int64_t n, int64_t v) {
  for (int64_t r = 0; r < n; r++) {
    if (t[r] >= v) {
      return std::string(op) + ": target " + std::to_string(t[r]) + " at row " + std::to_string(r) +
             " is outside [0, " + std::to_string(v) + ")";
    }
  }
  return "";
}

std::string token_logprobs(const float* x, const int32_t* t, float* out, float* lse, int64_t n, int64_t v) {
  std::string err = check_targets("tokenLogprobs", t, n, v);
  if (!err.empty()) return err;
  parallel_for(n, 10 * v, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; r++) {
      double l = row_lse(x + r * v, v);
      lse[r] = float(l);
      out[r] = t[r] < 0 ? 0.0f : float(double(x[r * v + t[r]]) - l);
    }
  });
  return "";
}

// out = x_t - lse(x):  dx_j = g (1[j = t] - softmax_j)
std::string token_logprobs_grad(const float* x, const int32_t* t, const float* lse, const float* g, float* dx,
                                int64_t n, int64_t v) {
  std::string err = check_targets("tokenLogprobsGrad", t, n, v);
  if (!err.empty()) return err;
  parallel_for(n, 10 * v, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; r++) {
      const float* xr = x + r * v;
      float* dr = dx + r * v;
      if (t[r] < 0) {
        std::fill(dr, dr + v, 0.0f);
        continue;
      }
      float l = lse[r], gr = g[r];
      int64_t j = 0;
#if SW_AVX2
      __m256 lv = _mm256_set1_ps(l), ng = _mm256_set1_ps(-gr);
      for (; j + 8 <= v; j += 8)
        _mm256_storeu_ps(dr + j, _mm256_mul_ps(ng, exp8(_mm256_sub_ps(_mm256_loadu_ps(xr + j), lv))));
#endif
      for (; j < v; j++) dr[j] = -gr * std::exp(xr[j] - l);
      dr[t[r]] = gr * (1.0f - std::exp(xr[t[r]] - l));
    }
  });
  return "";
}

// ---------------------------------------------------------------- adamw

// PyTorch AdamW: p *= 1 - lr wd;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
//                p -= (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps)
void adamw(float* p, const float* g, float* m, float* v, int64_t n, const AdamW& a) {
  const float b1 = float(a.beta1), b2 = float(a.beta2), c1 = float(1 - a.beta1), c2 = float(1 - a.beta2);
  const float step = float(a.lr / (1 - std::pow(a.beta1, double(a.step))));
  const float inv_bc2 = float(1 / std::sqrt(1 - std::pow(a.beta2, double(a.step))));
  const float decay = float(1 - a.lr * a.weight_decay), eps = float(a.eps);
  parallel_for(n, 12, [&](int64_t b, int64_t e) {
    int64_t i = b;
#if SW_AVX2
    const __m256 B1 = _mm256_set1_ps(b1), B2 = _mm256_set1_ps(b2), C1 = _mm256_set1_ps(c1), C2 = _mm256_set1_ps(c2);
    const __m256 S = _mm256_set1_ps(step), IB = _mm256_set1_ps(inv_bc2), D = _mm256_set1_ps(decay),
                 E = _mm256_set1_ps(eps);
    for (; i + 8 <= e; i += 8) {
      __m256 gi = _mm256_loadu_ps(g + i);
      __m256 mi = _mm256_fmadd_ps(B1, _mm256_loadu_ps(m + i), _mm256_mul_ps(C1, gi));
      __m256 vi = _mm256_fmadd_ps(B2, _mm256_loadu_ps(v + i), _mm256_mul_ps(C2, _mm256_mul_ps(gi, gi)));
      __m256 den = _mm256_fmadd_ps(_mm256_sqrt_ps(vi), IB, E);
      __m256 pi = _mm256_fmsub_ps(_mm256_loadu_ps(p + i), D, _mm256_div_ps(_mm256_mul_ps(S, mi), den));
      _mm256_storeu_ps(m + i, mi);
      _mm256_storeu_ps(v + i, vi);
      _mm256_storeu_ps(p + i, pi);
    }
#endif
    for (; i < e; i++) {
      float gi = g[i];
      m[i] = b1 * m[i] + c1 * gi;
      v[i] = b2 * v[i] + c2 * gi * gi;
      p[i] = p[i] * decay - step * m[i] / (std::sqrt(v[i]) * inv_bc2 + eps);
    }
  });
}

}  // namespace sw
