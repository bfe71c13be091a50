// Fused softmax attention and its backward, one (batch, head, query block) at a time with the packed GEMM.
// A forward with few query rows (a decode step, a short continuation) takes a direct path instead: per
// (batch, head), dot products of each query row with the keys it may see, one softmax, and a weighted sum of their
// values, with no packing and no thread-pool wake-up for small work.
// Legend: B batch, Tq queries, Tk keys (a prefix of Tk - Tq keys precedes the queries), H query heads,
// Hkv key/value heads (GQA: head hh reads kv head hh / (H / Hkv)), D head size, QB query rows per block,
// N keys a query row sees.
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

// ---------------------------------------------------------------- few query rows

constexpr int64_t kDirectTq = 16;  // query rows up to which the direct path runs
constexpr double kSerialFlops = 4.0e6;  // below this much work (flops, ~40 us), threads cost more than they save

#if SW_AVX2
/** Lane i of the result = the sum of the 8 lanes of a[i]. */
inline __m256 hsum8x8(const __m256* a) {
  __m256 s0 = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
  __m256 s1 = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
  return _mm256_add_ps(_mm256_permute2f128_ps(s0, s1, 0x20), _mm256_permute2f128_ps(s0, s1, 0x31));
}
#endif

/** s[j] = scale * dot(qr, K row idx[j]) for j < n; K rows are ldk apart, D long. */
void direct_scores(const float* qr, const float* kb, int64_t ldk, const int32_t* idx, int64_t n, int64_t d,
                   float scale, float* s) {
  int64_t j = 0;
#if SW_AVX2
  const int64_t dv = d / 8 * 8;
  const __m256i tail = tail_mask(d - dv);
  const __m256 sc = _mm256_set1_ps(scale);
  for (; j + 8 <= n; j += 8) {  // eight keys at a time: eight partial-sum vectors, summed across together
    const float* kr[8];
    __m256 acc[8];
    for (int u = 0; u < 8; u++) {
      kr[u] = kb + idx[j + u] * ldk;
      acc[u] = _mm256_setzero_ps();
    }
    for (int64_t e = 0; e < dv; e += 8) {
      __m256 qv = _mm256_loadu_ps(qr + e);
      for (int u = 0; u < 8; u++) acc[u] = _mm256_fmadd_ps(qv, _mm256_loadu_ps(kr[u] + e), acc[u]);
    }
    if (dv < d) {
      __m256 qv = _mm256_maskload_ps(qr + dv, tail);
      for (int u = 0; u < 8; u++) acc[u] = _mm256_fmadd_ps(qv, _mm256_maskload_ps(kr[u] + dv, tail), acc[u]);
    }
    _mm256_storeu_ps(s + j, _mm256_mul_ps(hsum8x8(acc), sc));
  }
#endif
  for (; j < n; j++) {
    const float* kr = kb + idx[j] * ldk;
    float acc = 0;
    for (int64_t e = 0; e < d; e++) acc += qr[e] * kr[e];
    s[j] = acc * scale;
  }
}

#if SW_AVX2
/** o[0, 8 * NV) (the last vector through `last`) = inv * sum over j < n of w[j] * V row idx[j]. */
template <int NV>
void direct_values(const float* w, const float* vb, int64_t ldv, const int32_t* idx, int64_t n, float inv,
                   __m256i last, float* o) {
  __m256 acc[NV];
  for (int u = 0; u < NV; u++) acc[u] = _mm256_setzero_ps();
  for (int64_t j = 0; j < n; j++) {
    const float* vr = vb + idx[j] * ldv;
    __m256 wj = _mm256_broadcast_ss(w + j);
    for (int u = 0; u < NV - 1; u++) acc[u] = _mm256_fmadd_ps(wj, _mm256_loadu_ps(vr + 8 * u), acc[u]);
    acc[NV - 1] = _mm256_fmadd_ps(wj, _mm256_maskload_ps(vr + 8 * (NV - 1), last), acc[NV - 1]);
  }
  const __m256 iv = _mm256_set1_ps(inv);
  for (int u = 0; u < NV - 1; u++) _mm256_storeu_ps(o + 8 * u, _mm256_mul_ps(acc[u], iv));
  _mm256_maskstore_ps(o + 8 * (NV - 1), last, _mm256_mul_ps(acc[NV - 1], iv));
}
#endif

/** o[0, D) = inv * sum over j < n of w[j] * V row idx[j], 64 floats of the row at a time. */
void direct_weighted_sum(const float* w, const float* vb, int64_t ldv, const int32_t* idx, int64_t n, float inv,
                         int64_t d, float* o) {
#if SW_AVX2
  for (int64_t e0 = 0; e0 < d; e0 += 64) {
    int64_t len = std::min<int64_t>(64, d - e0), nv = (len + 7) / 8;
    __m256i last = tail_mask(len - 8 * (nv - 1));
    const float* vc = vb + e0;
    switch (nv) {
      case 1: direct_values<1>(w, vc, ldv, idx, n, inv, last, o + e0); break;
      case 2: direct_values<2>(w, vc, ldv, idx, n, inv, last, o + e0); break;
      case 3: direct_values<3>(w, vc, ldv, idx, n, inv, last, o + e0); break;
      case 4: direct_values<4>(w, vc, ldv, idx, n, inv, last, o + e0); break;
      case 5: direct_values<5>(w, vc, ldv, idx, n, inv, last, o + e0); break;
      case 6: direct_values<6>(w, vc, ldv, idx, n, inv, last, o + e0); break;
      case 7: direct_values<7>(w, vc, ldv, idx, n, inv, last, o + e0); break;
      default: direct_values<8>(w, vc, ldv, idx, n, inv, last, o + e0); break;
    }
  }
#else
  for (int64_t e = 0; e < d; e++) {
    float acc = 0;
    for (int64_t j = 0; j < n; j++) acc += w[j] * vb[idx[j] * ldv + e];
    o[e] = acc * inv;
  }
#endif
}

/** exp(s[j] - max) in place over j < n; returns max + log(sum), or -inf (and leaves s) when n == 0. */
float direct_softmax(float* s, int64_t n, double* z_out) {
  float mx = n > 0 ? max_f32(s, n) : kNegInf;
  if (mx == kNegInf) return kNegInf;
  double z = 0;
  int64_t j = 0;
#if SW_AVX2
  __m256 m = _mm256_set1_ps(mx);
  __m256d z0 = _mm256_setzero_pd(), z1 = z0;
  for (; j + 8 <= n; j += 8) {
    __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(s + j), m));
    _mm256_storeu_ps(s + j, e);
    z0 = _mm256_add_pd(z0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
    z1 = _mm256_add_pd(z1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
  }
  z = hsum4d(_mm256_add_pd(z0, z1));
#endif
  for (; j < n; j++) {
    s[j] = std::exp(s[j] - mx);
    z += s[j];
  }
  *z_out = z;
  return float(double(mx) + std::log(z));
}

/** The forward for one (batch, head): every query row against the keys it sees (listed once, in order). */
void direct_head(const float* q, const float* k, const float* v, const int32_t* mask, float* out, float* lse,
                 const Attn& p, int64_t bi, int64_t hh) {
  const int64_t g = hh / (p.h / p.hkv), ldk = p.hkv * p.d;
  const int64_t kend = key_limit(p, p.tq - 1);  // the last row sees the most keys
  thread_local std::vector<int32_t> idx_buf;
  if (int64_t(idx_buf.size()) < kend) idx_buf.resize(size_t(kend));
  int32_t* idx = idx_buf.data();
  int64_t nk = 0;
  const int32_t* mb = mask ? mask + bi * p.tk : nullptr;
  for (int64_t j = 0; j < kend; j++)
    if (!mb || mb[j] != 0) idx[nk++] = int32_t(j);
  const float* kb = k + (bi * p.tk * p.hkv + g) * p.d;
  const float* vb = v + (bi * p.tk * p.hkv + g) * p.d;
  float* s = tscratch(0, std::max<int64_t>(nk, 1));
  int64_t n = nk;
  for (int64_t i = p.tq - 1; i >= 0; i--) {  // last row first: each earlier row sees a prefix of its keys
    int64_t lim = key_limit(p, i);
    while (n > 0 && idx[n - 1] >= lim) n--;
    const float* qr = q + ((bi * p.tq + i) * p.h + hh) * p.d;
    float* o = out + ((bi * p.tq + i) * p.h + hh) * p.d;
    float* l = lse + (bi * p.h + hh) * p.tq + i;
    direct_scores(qr, kb, ldk, idx, n, p.d, p.scale, s);
    double z = 0;
    *l = direct_softmax(s, n, &z);
    if (*l == kNegInf) {  // sees no key: out = 0, lse = -inf
      std::memset(o, 0, size_t(p.d) * 4);
      continue;
    }
    direct_weighted_sum(s, vb, ldk, idx, n, float(1.0 / z), p.d, o);
  }
}

void attention_direct(const float* q, const float* k, const float* v, const int32_t* mask, float* out, float* lse,
                      const Attn& p) {
  const int64_t tasks = p.b * p.h;
  auto task = [&](int64_t t, int) { direct_head(q, k, v, mask, out, lse, p, t / p.h, t % p.h); };
  double flops = 4.0 * double(tasks) * double(p.tq) * double(p.tk) * double(p.d);
  if (flops < kSerialFlops) {
    for (int64_t t = 0; t < tasks; t++) task(t, 0);
  } else {
    parallel_tasks(tasks, task);
  }
}

}  // namespace

void attention(const float* q, const float* k, const float* v, const int32_t* mask, float* out, float* lse,
               const Attn& p) {
  if (p.tq <= kDirectTq) return attention_direct(q, k, v, mask, out, lse, p);
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
