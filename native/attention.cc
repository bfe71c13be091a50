// Fused softmax attention and its backward, one (batch, head, query block) at a time with the packed GEMM.
// Legend: B batch, Tq queries, Tk keys (a prefix of Tk - Tq keys precedes the queries), H query heads,
// Hkv key/value heads (GQA: head hh reads kv head hh / (H / Hkv)), D head size, QB query rows per block.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "gemm.h"
#include "kernels.h"
#include "pool.h"
#include "simd.h"

namespace sw {
namespace {

constexpr int64_t QB = 64;
const float kNegInf = -std::numeric_limits<float>::infinity();

/** Thread-local scratch of at least n floats (slot 0 or 1). */
float* tscratch(int slot, int64_t n) {
  thread_local std::vector<float> bufs[2];
  if (int64_t(bufs[slot].size()) < n) bufs[slot].resize(size_t(n));
  return bufs[slot].data();
}

/** Keys [0, limit(i)) are in causal reach of query row i. */
inline int64_t key_limit(const Attn& p, int64_t i) {
  if (!p.causal) return p.tk;
  return std::max<int64_t>(0, std::min(p.tk, p.tk - p.tq + i + 1));
}

void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
          int64_t ldb, float* c, int64_t ldc, float alpha, bool acc) {
  GemmArgs g{ta, tb, m, n, k, a, lda, b, ldb, c, ldc, alpha, acc};
  gemm_st(g);
}

/** Sets s[j] = -inf where key j of row i is out of reach or padded; returns the row's key limit. */
inline int64_t mask_row(const Attn& p, const int32_t* mask_b, int64_t i, float* s, int64_t kend) {
  int64_t lim = std::min(key_limit(p, i), kend);
  for (int64_t j = lim; j < kend; j++) s[j] = kNegInf;
  if (mask_b)
    for (int64_t j = 0; j < lim; j++)
      if (mask_b[j] == 0) s[j] = kNegInf;
  return lim;
}

}  // namespace

void attention(const float* q, const float* k, const float* v, const int32_t* mask, float* out, float* lse,
               const Attn& p) {
  const int64_t nqb = (p.tq + QB - 1) / QB, group = p.h / p.hkv;
  const int64_t ldq = p.h * p.d, ldk = p.hkv * p.d;
  parallel_tasks(p.b * p.h * nqb, [&](int64_t task, int) {
    int64_t bi = task / (p.h * nqb), hh = (task / nqb) % p.h, i0 = (task % nqb) * QB;
    int64_t rows = std::min(QB, p.tq - i0), g = hh / group;
    int64_t kend = p.causal ? key_limit(p, i0 + rows - 1) : p.tk;
    const float* qb = q + ((bi * p.tq + i0) * p.h + hh) * p.d;
    const float* kb = k + (bi * p.tk * p.hkv + g) * p.d;
    const float* vb = v + (bi * p.tk * p.hkv + g) * p.d;
    float* ob = out + ((bi * p.tq + i0) * p.h + hh) * p.d;
    float* lb = lse + (bi * p.h + hh) * p.tq + i0;
    const int32_t* mb = mask ? mask + bi * p.tk : nullptr;
    if (kend == 0) {
      for (int64_t r = 0; r < rows; r++) {
        std::memset(ob + r * ldq, 0, size_t(p.d) * 4);
        lb[r] = kNegInf;
      }
      return;
    }
    float* s = tscratch(0, rows * kend);  // (rows, kend) scores, then probabilities
    gemm(false, true, rows, kend, p.d, qb, ldq, kb, ldk, s, kend, p.scale, false);
    for (int64_t r = 0; r < rows; r++) {
      float* sr = s + r * kend;
      mask_row(p, mb, i0 + r, sr, kend);
      float mx = max_f32(sr, kend);
      if (mx == kNegInf) {  // sees no key: out = 0, lse = -inf
        std::fill(sr, sr + kend, 0.0f);
        lb[r] = kNegInf;
        continue;
      }
      double z = 0;
      int64_t j = 0;
#if SW_AVX2
      __m256 m = _mm256_set1_ps(mx);
      __m256d z0 = _mm256_setzero_pd(), z1 = z0;
      for (; j + 8 <= kend; j += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(sr + j), m));
        _mm256_storeu_ps(sr + j, e);
        z0 = _mm256_add_pd(z0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        z1 = _mm256_add_pd(z1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
      }
      z = hsum4d(_mm256_add_pd(z0, z1));
#endif
      for (; j < kend; j++) {
        sr[j] = std::exp(sr[j] - mx);
        z += sr[j];
      }
      lb[r] = float(double(mx) + std::log(z));
      float inv = float(1.0 / z);
      for (j = 0; j < kend; j++) sr[j] *= inv;
    }
    gemm(false, false, rows, p.d, kend, s, kend, vb, ldk, ob, ldq, 1.0f, false);
  });
}

// P = softmax(S), S = scale Q K^T.  dV = P^T dO;  dP = dO V^T;  dS = P (dP - rowsum(dO * O));  dQ = scale dS K;
// dK = scale dS^T Q.  Tasks own a (batch, kv head) pair, so dK and dV never race; when there are fewer pairs than
// threads, each pair is split further and the splits sum private dK, dV copies at the end.
void attention_grad(const float* q, const float* k, const float* v, const int32_t* mask, const float* out,
                    const float* lse, const float* g, float* dq, float* dk, float* dv, const Attn& p) {
  const int64_t nqb = (p.tq + QB - 1) / QB, group = p.h / p.hkv;
  const int64_t ldq = p.h * p.d, ldk = p.hkv * p.d;
  const int64_t pairs = p.b * p.hkv, items = group * nqb;  // items: (head in group, query block)
  int nt = pool_threads();
  int64_t nsplit = pairs >= nt ? 1 : std::min<int64_t>(items, (2 * nt + pairs - 1) / pairs);
  std::vector<float> priv;  // (pairs, nsplit, 2, Tk, D) when split
  if (nsplit > 1) priv.assign(size_t(pairs * nsplit * 2 * p.tk * p.d), 0.0f);
  parallel_tasks(pairs * nsplit, [&](int64_t task, int) {
    int64_t pair = task / nsplit, split = task % nsplit, bi = pair / p.hkv, gk = pair % p.hkv;
    float *dkb, *dvb;
    int64_t ldo;
    if (nsplit > 1) {
      dkb = priv.data() + (task * 2) * p.tk * p.d;
      dvb = dkb + p.tk * p.d;
      ldo = p.d;
    } else {
      dkb = dk + (bi * p.tk * p.hkv + gk) * p.d;
      dvb = dv + (bi * p.tk * p.hkv + gk) * p.d;
      ldo = ldk;
      for (int64_t j = 0; j < p.tk; j++) {
        std::memset(dkb + j * ldk, 0, size_t(p.d) * 4);
        std::memset(dvb + j * ldk, 0, size_t(p.d) * 4);
      }
    }
    const float* kb = k + (bi * p.tk * p.hkv + gk) * p.d;
    const float* vb = v + (bi * p.tk * p.hkv + gk) * p.d;
    const int32_t* mb = mask ? mask + bi * p.tk : nullptr;
    for (int64_t it = split; it < items; it += nsplit) {
      int64_t hh = gk * group + it / nqb, i0 = (nqb - 1 - it % nqb) * QB;  // late (costly) blocks first
      int64_t rows = std::min(QB, p.tq - i0);
      int64_t kend = p.causal ? key_limit(p, i0 + rows - 1) : p.tk;
      int64_t off = ((bi * p.tq + i0) * p.h + hh) * p.d;
      const float *qb = q + off, *gb = g + off, *ob = out + off, *lb = lse + (bi * p.h + hh) * p.tq + i0;
      if (kend == 0) {
        for (int64_t r = 0; r < rows; r++) std::memset(dq + off + r * ldq, 0, size_t(p.d) * 4);
        continue;
      }
      float* pm = tscratch(0, rows * kend);  // P (rows, kend)
      float* ds = tscratch(1, rows * kend);  // dP, then dS
      gemm(false, true, rows, kend, p.d, qb, ldq, kb, ldk, pm, kend, p.scale, false);
      gemm(false, true, rows, kend, p.d, gb, ldq, vb, ldk, ds, kend, 1.0f, false);
      for (int64_t r = 0; r < rows; r++) {
        float* pr = pm + r * kend;
        float* dr = ds + r * kend;
        mask_row(p, mb, i0 + r, pr, kend);
        float l = lb[r];
        if (l == kNegInf) {
          std::fill(pr, pr + kend, 0.0f);
          std::fill(dr, dr + kend, 0.0f);
          continue;
        }
        double di = 0;
        for (int64_t e = 0; e < p.d; e++) di += double(gb[r * ldq + e]) * ob[r * ldq + e];
        float dif = float(di);
        int64_t j = 0;
#if SW_AVX2
        __m256 lv = _mm256_set1_ps(l), dv8 = _mm256_set1_ps(dif);
        for (; j + 8 <= kend; j += 8) {
          __m256 pj = exp8(_mm256_sub_ps(_mm256_loadu_ps(pr + j), lv));
          _mm256_storeu_ps(pr + j, pj);
          _mm256_storeu_ps(dr + j, _mm256_mul_ps(pj, _mm256_sub_ps(_mm256_loadu_ps(dr + j), dv8)));
        }
#endif
        for (; j < kend; j++) {
          pr[j] = std::exp(pr[j] - l);
          dr[j] = pr[j] * (dr[j] - dif);
        }
      }
      gemm(true, false, kend, p.d, rows, pm, kend, gb, ldq, dvb, ldo, 1.0f, true);
      gemm(false, false, rows, p.d, kend, ds, kend, kb, ldk, dq + off, ldq, p.scale, false);
      gemm(true, false, kend, p.d, rows, ds, kend, qb, ldq, dkb, ldo, p.scale, true);
    }
  });
  if (nsplit == 1) return;
  parallel_tasks(pairs, [&](int64_t pair, int) {
    int64_t bi = pair / p.hkv, gk = pair % p.hkv;
    for (int64_t j = 0; j < p.tk; j++) {
      float* dkr = dk + ((bi * p.tk + j) * p.hkv + gk) * p.d;
      float* dvr = dv + ((bi * p.tk + j) * p.hkv + gk) * p.d;
      for (int64_t e = 0; e < p.d; e++) {
        float sk = 0, sv = 0;
        for (int64_t s = 0; s < nsplit; s++) {
          const float* base = priv.data() + ((pair * nsplit + s) * 2) * p.tk * p.d;
          sk += base[j * p.d + e];
          sv += base[p.tk * p.d + j * p.d + e];
        }
        dkr[e] = sk;
        dvr[e] = sv;
      }
    }
  });
}

}  // namespace sw
