// Packed GEMM. Loops (BLIS order): jc over N by NC, pc over K by KC (pack B), ic over M by MC (pack A),
// jr over NR slivers, ir over MR slivers, then an MR x NR register-tile micro-kernel over kc.
#include "gemm.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include "pool.h"
#include "simd.h"

namespace sw {
namespace {

constexpr int64_t MR = 6, NR = 16;
#ifndef SW_KC
#define SW_KC 384
#define SW_MC 96
#define SW_NC 1024
#endif
constexpr int64_t KC = SW_KC, MC = SW_MC, NC = SW_NC;

/** A 64-byte-aligned scratch area owned by the calling thread, grown on demand, freed when the thread ends. */
struct Scratch {
  float* buf = nullptr;
  int64_t cap = 0;
  ~Scratch() { std::free(buf); }
};

float* scratch(int slot, int64_t floats) {
  thread_local Scratch s[2];
  if (s[slot].cap < floats) {
    std::free(s[slot].buf);
    size_t bytes = ((size_t(floats) * 4 + 63) / 64) * 64;
    s[slot].buf = static_cast<float*>(std::aligned_alloc(64, bytes));
    s[slot].cap = floats;
  }
  return s[slot].buf;
}

// Packs the mc x kc block of op(A) starting at (i0, p0) into MR-row slivers: dst[s][p][i], zero-padded rows.
void pack_a(const GemmArgs& g, int64_t i0, int64_t p0, int64_t mc, int64_t kc, float* dst) {
  for (int64_t s = 0; s < mc; s += MR) {
    int64_t mr = std::min(MR, mc - s);
    float* d = dst + s * kc;
    if (g.trans_a) {  // A(i, p) = a[p * lda + i]: MR contiguous floats per p
      const float* src = g.a + p0 * g.lda + i0 + s;
      for (int64_t p = 0; p < kc; p++) {
        const float* row = src + p * g.lda;
        int64_t i = 0;
        for (; i < mr; i++) d[p * MR + i] = row[i];
        for (; i < MR; i++) d[p * MR + i] = 0.0f;
      }
    } else {  // A(i, p) = a[i * lda + p]: each row contiguous in p
      for (int64_t i = 0; i < MR; i++) {
        if (i < mr) {
          const float* row = g.a + (i0 + s + i) * g.lda + p0;
          for (int64_t p = 0; p < kc; p++) d[p * MR + i] = row[p];
        } else {
          for (int64_t p = 0; p < kc; p++) d[p * MR + i] = 0.0f;
        }
      }
    }
  }
}

// Packs the kc x nc block of op(B) starting at (p0, j0) into NR-column slivers: dst[s][p][j], zero-padded columns.
void pack_b(const GemmArgs& g, int64_t p0, int64_t j0, int64_t kc, int64_t nc, float* dst) {
  for (int64_t s = 0; s < nc; s += NR) {
    int64_t nr = std::min(NR, nc - s);
    float* d = dst + s * kc;
    if (!g.trans_b) {  // B(p, j) = b[p * ldb + j]: NR contiguous floats per p
      const float* src = g.b + p0 * g.ldb + j0 + s;
      if (nr == NR) {
        for (int64_t p = 0; p < kc; p++) std::memcpy(d + p * NR, src + p * g.ldb, NR * sizeof(float));
      } else {
        for (int64_t p = 0; p < kc; p++) {
          int64_t j = 0;
          for (; j < nr; j++) d[p * NR + j] = src[p * g.ldb + j];
          for (; j < NR; j++) d[p * NR + j] = 0.0f;
        }
      }
    } else {  // B(p, j) = b[j * ldb + p]: each column contiguous in p
      for (int64_t j = 0; j < NR; j++) {
        if (j < nr) {
          const float* col = g.b + (j0 + s + j) * g.ldb + p0;
          for (int64_t p = 0; p < kc; p++) d[p * NR + j] = col[p];
        } else {
          for (int64_t p = 0; p < kc; p++) d[p * NR + j] = 0.0f;
        }
      }
    }
  }
}

#if SW_AVX2
// C[0..6, 0..16) = alpha * a @ b (+ C when add); a is kc x 6 packed, b is kc x 16 packed.
void kernel(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float alpha, bool add) {
  for (int i = 0; i < 6; i++) {  // C is read at the end: fetch it while the loop runs
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + 15), _MM_HINT_T0);
  }
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
#define SW_STEP(P)                                                  \
  {                                                                 \
    __m256 b0 = _mm256_load_ps(b + (P) * 16);                       \
    __m256 b1 = _mm256_load_ps(b + (P) * 16 + 8);                   \
    __m256 av = _mm256_broadcast_ss(a + (P) * 6 + 0);               \
    c00 = _mm256_fmadd_ps(av, b0, c00);                             \
    c01 = _mm256_fmadd_ps(av, b1, c01);                             \
    av = _mm256_broadcast_ss(a + (P) * 6 + 1);                      \
    c10 = _mm256_fmadd_ps(av, b0, c10);                             \
    c11 = _mm256_fmadd_ps(av, b1, c11);                             \
    av = _mm256_broadcast_ss(a + (P) * 6 + 2);                      \
    c20 = _mm256_fmadd_ps(av, b0, c20);                             \
    c21 = _mm256_fmadd_ps(av, b1, c21);                             \
    av = _mm256_broadcast_ss(a + (P) * 6 + 3);                      \
    c30 = _mm256_fmadd_ps(av, b0, c30);                             \
    c31 = _mm256_fmadd_ps(av, b1, c31);                             \
    av = _mm256_broadcast_ss(a + (P) * 6 + 4);                      \
    c40 = _mm256_fmadd_ps(av, b0, c40);                             \
    c41 = _mm256_fmadd_ps(av, b1, c41);                             \
    av = _mm256_broadcast_ss(a + (P) * 6 + 5);                      \
    c50 = _mm256_fmadd_ps(av, b0, c50);                             \
    c51 = _mm256_fmadd_ps(av, b1, c51);                             \
  }
  int64_t p = 0;
#if defined(__AVX512F__)
  // 32 vector registers: unrolling is free. With 16 (plain AVX2) the compiler would spill, so step one k at a time.
  for (; p + 4 <= kc; p += 4) {
    _mm_prefetch(reinterpret_cast<const char*>(b + 16 * 16), _MM_HINT_T0);
    SW_STEP(0) SW_STEP(1) SW_STEP(2) SW_STEP(3)
    a += 24;
    b += 64;
  }
#endif
  for (; p < kc; p++) {
    SW_STEP(0)
    a += 6;
    b += 16;
  }
#undef SW_STEP
  const __m256 al = _mm256_set1_ps(alpha);
  __m256 acc[12] = {c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51};
  for (int i = 0; i < 6; i++) {
    float* row = c + i * ldc;
    __m256 v0 = _mm256_mul_ps(acc[2 * i], al), v1 = _mm256_mul_ps(acc[2 * i + 1], al);
    if (add) {
      v0 = _mm256_add_ps(_mm256_loadu_ps(row), v0);
      v1 = _mm256_add_ps(_mm256_loadu_ps(row + 8), v1);
    }
    _mm256_storeu_ps(row, v0);
    _mm256_storeu_ps(row + 8, v1);
  }
}
#else
void kernel(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float alpha, bool add) {
  float acc[MR][NR] = {};
  for (int64_t p = 0; p < kc; p++)
    for (int64_t i = 0; i < MR; i++)
      for (int64_t j = 0; j < NR; j++) acc[i][j] += a[p * MR + i] * b[p * NR + j];
  for (int64_t i = 0; i < MR; i++)
    for (int64_t j = 0; j < NR; j++) c[i * ldc + j] = alpha * acc[i][j] + (add ? c[i * ldc + j] : 0.0f);
}
#endif

// One mc x nc block of C from packed A (mc x kc) and packed B (kc x nc).
void macro_kernel(const float* ap, const float* bp, int64_t mc, int64_t nc, int64_t kc, float* c, int64_t ldc,
                  float alpha, bool add) {
  alignas(64) float tmp[MR * NR];
  for (int64_t jr = 0; jr < nc; jr += NR) {
    int64_t nr = std::min(NR, nc - jr);
    for (int64_t ir = 0; ir < mc; ir += MR) {
      int64_t mr = std::min(MR, mc - ir);
      float* ct = c + ir * ldc + jr;
      if (mr == MR && nr == NR) {
        kernel(kc, ap + ir * kc, bp + jr * kc, ct, ldc, alpha, add);
      } else {  // edge tile: compute the full tile aside, then copy the valid part
        kernel(kc, ap + ir * kc, bp + jr * kc, tmp, NR, alpha, false);
        for (int64_t i = 0; i < mr; i++)
          for (int64_t j = 0; j < nr; j++) ct[i * ldc + j] = add ? ct[i * ldc + j] + tmp[i * NR + j] : tmp[i * NR + j];
      }
    }
  }
}

}  // namespace

void gemm_st(const GemmArgs& g) {
  if (g.m <= 0 || g.n <= 0) return;
  if (g.k <= 0) {
    if (!g.accumulate)
      for (int64_t i = 0; i < g.m; i++) std::memset(g.c + i * g.ldc, 0, size_t(g.n) * sizeof(float));
    return;
  }
  int64_t kc_max = std::min(KC, g.k);
  float* bp = scratch(0, kc_max * ((std::min(NC, g.n) + NR - 1) / NR * NR));
  float* ap = scratch(1, kc_max * ((std::min(MC, g.m) + MR - 1) / MR * MR));
  for (int64_t jc = 0; jc < g.n; jc += NC) {
    int64_t nc = std::min(NC, g.n - jc);
    for (int64_t pc = 0; pc < g.k; pc += KC) {
      int64_t kc = std::min(KC, g.k - pc);
      bool add = g.accumulate || pc > 0;
      pack_b(g, pc, jc, kc, nc, bp);
      for (int64_t ic = 0; ic < g.m; ic += MC) {
        int64_t mc = std::min(MC, g.m - ic);
        pack_a(g, ic, pc, mc, kc, ap);
        macro_kernel(ap, bp, mc, nc, kc, g.c + ic * g.ldc + jc, g.ldc, g.alpha, add);
      }
    }
  }
}

void gemm_batched(bool trans_a, bool trans_b, int64_t batch, int64_t m, int64_t n, int64_t k, const float* a,
                  int64_t stride_a, const float* b, int64_t stride_b, float* c, bool accumulate) {
  if (batch <= 0 || m <= 0 || n <= 0) return;
  int nt = pool_threads();
  double flops = 2.0 * double(batch) * double(m) * double(n) * double(k);
  // Split each product into sm x sn tiles of C so that there are enough tasks to keep every thread busy.
  int64_t sm = 1, sn = 1;
  if (nt > 1 && flops > 2.0e6 && batch % nt != 0 && batch < 4 * nt) {
    // Tasks per product: the fewest that make the task count a multiple of the thread count.
    int64_t per = (4 * nt + batch - 1) / batch;
    for (int64_t p = 1; p * batch <= 4 * nt; p++) {
      if ((p * batch) % nt == 0) {
        per = p;
        break;
      }
    }
    // Prefer splitting N (each task then packs its own slice of B and all of A).
    int64_t max_n = (n + NR - 1) / NR, max_m = (m + MR - 1) / MR;
    sn = std::min(per, max_n);
    if (sn < per) sm = std::min((per + sn - 1) / sn, max_m);
  }
  int64_t tn = ((n + sn - 1) / sn + NR - 1) / NR * NR;  // tile widths, multiples of the register tile
  int64_t tm = ((m + sm - 1) / sm + MR - 1) / MR * MR;
  sn = (n + tn - 1) / tn;
  sm = (m + tm - 1) / tm;
  int64_t lda = trans_a ? m : k, ldb = trans_b ? k : n;
  auto task = [&](int64_t t, int) {
    int64_t bi = t / (sm * sn), r = t % (sm * sn);
    int64_t i0 = (r / sn) * tm, j0 = (r % sn) * tn;
    GemmArgs g;
    g.trans_a = trans_a;
    g.trans_b = trans_b;
    g.m = std::min(tm, m - i0);
    g.n = std::min(tn, n - j0);
    g.k = k;
    g.a = a + bi * stride_a + (trans_a ? i0 : i0 * lda);
    g.lda = lda;
    g.b = b + bi * stride_b + (trans_b ? j0 * ldb : j0);
    g.ldb = ldb;
    g.c = c + bi * m * n + i0 * n + j0;
    g.ldc = n;
    g.alpha = 1.0f;
    g.accumulate = accumulate;
    gemm_st(g);
  };
  int64_t ntasks = batch * sm * sn;
  if (flops < 2.0e5 || nt == 1) {
    for (int64_t t = 0; t < ntasks; t++) task(t, 0);
  } else {
    parallel_tasks(ntasks, task);
  }
}

namespace {
/** Runs `iters` rounds of 12 independent 8-wide FMA chains; returns a value that depends on all of them. */
float fma_chains(int64_t iters) {
#if SW_AVX2
  __m256 x0 = _mm256_set1_ps(1.0f), x1 = x0, x2 = x0, x3 = x0, x4 = x0, x5 = x0, x6 = x0, x7 = x0, x8 = x0, x9 = x0,
         x10 = x0, x11 = x0;
  const __m256 mul = _mm256_set1_ps(0.999999f), add = _mm256_set1_ps(1e-7f);
  for (int64_t it = 0; it < iters; it++) {
    x0 = _mm256_fmadd_ps(x0, mul, add);
    x1 = _mm256_fmadd_ps(x1, mul, add);
    x2 = _mm256_fmadd_ps(x2, mul, add);
    x3 = _mm256_fmadd_ps(x3, mul, add);
    x4 = _mm256_fmadd_ps(x4, mul, add);
    x5 = _mm256_fmadd_ps(x5, mul, add);
    x6 = _mm256_fmadd_ps(x6, mul, add);
    x7 = _mm256_fmadd_ps(x7, mul, add);
    x8 = _mm256_fmadd_ps(x8, mul, add);
    x9 = _mm256_fmadd_ps(x9, mul, add);
    x10 = _mm256_fmadd_ps(x10, mul, add);
    x11 = _mm256_fmadd_ps(x11, mul, add);
    // Opaque to the optimiser, so the chains are neither folded nor merged.
    __asm__ volatile("" : "+x"(x0), "+x"(x1), "+x"(x2), "+x"(x3), "+x"(x4), "+x"(x5), "+x"(x6), "+x"(x7), "+x"(x8),
                     "+x"(x9), "+x"(x10), "+x"(x11));
  }
  __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(x0, x1), _mm256_add_ps(x2, x3)),
                           _mm256_add_ps(_mm256_add_ps(x4, x5), _mm256_add_ps(x6, x7)));
  s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(x8, x9), _mm256_add_ps(x10, x11)));
  return hsum8(s);
#else
  float x[96];
  for (int i = 0; i < 96; i++) x[i] = 1.0f;
  for (int64_t it = 0; it < iters; it++)
    for (int i = 0; i < 96; i++) x[i] = x[i] * 0.999999f + 1e-7f;
  float s = 0;
  for (int i = 0; i < 96; i++) s += x[i];
  return s;
#endif
}
}  // namespace

double fma_peak_gflops() {
  const int64_t iters = 2000000;  // about 5 ms per thread
  int nt = pool_threads();
  volatile float sink = 0;
  double best = 0;
  for (int rep = 0; rep < 4; rep++) {  // the first round also wakes the workers
    auto t0 = std::chrono::steady_clock::now();
    parallel_tasks(nt, [&](int64_t, int) { sink = sink + fma_chains(iters); });
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, double(nt) * double(iters) * 12 * 8 * 2 / secs / 1e9);
  }
  return best;
}

}  // namespace sw
