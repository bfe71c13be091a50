// Packed GEMM. Loops (BLIS order): jc over N by NC, pc over K by KC (pack B), ic over M by MC (pack A),
// jr over NR slivers, ir over MR slivers, then an MR x NR register-tile micro-kernel over kc.
//
// Products with few rows (m <= kSmallM: decode steps, where x (m, K) meets a whole weight matrix) skip packing:
// packing would copy all of B to use it m times. They stream B once instead, R rows of C at a time:
// - B stored (N, K) (linear layers, x @ W^T): each C element is a dot product of an A row and a B row;
// - B stored (K, N) (their backward, dY @ W): each row p of B is added into R rows of C, scaled by A(i, p).
// Each C element's arithmetic is the same whatever the tile or the task it falls in, so results do not depend on
// the thread count.
#include "gemm.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <vector>

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

/** C = alpha * A @ B (+ C) on the calling thread, by packed blocks (any m). */
void gemm_packed_st(const GemmArgs& g) {
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

// ---------------------------------------------------------------- few rows: B streamed, not packed

constexpr int64_t kSmallM = 16;
constexpr int64_t kStreamFloats = 64 * 1024;  // a B this large (256 KB) is taken as not in cache
constexpr double kParallelUs = 30;  // estimated single-thread microseconds from which a product is split

/** Stores one C element: alpha * s (+ the old value). The packed kernel rounds the same way. */
inline void put(float* c, float s, float alpha, bool add) {
  float v = s * alpha;
  *c = add ? *c + v : v;
}

#if SW_AVX2
#define SW_UNROLL _Pragma("GCC unroll 16")
/** Pins v in a register: without it the compiler folds a load into every FMA that uses v (one load per use). */
inline __m256 in_reg(__m256 v) {
  __asm__("" : "+x"(v));
  return v;
}

// C[r][j] = dot(A row r, B row j) for R rows of A and NB rows of B (B stored (N, K)), over all of K: 8 lanes of
// partial sums, the K tail through masked loads into the same lanes, then one horizontal sum.
// With PF, also fetches the same rows of the next panel (pf) into L2, one line per 16 floats, so that memory
// streams in while this panel is computed (into L2, not L1: a burst of L1 prefetches stalls on the few L1 miss
// buffers; measured 16x1536x576 from memory: 600 us with T0 hints, 450 us with T1).
template <int R, int NB, bool PF>
void dot_tile(const float* a, int64_t lda, const float* b, int64_t ldb, int64_t k, float* c, int64_t ldc,
              float alpha, bool add, const float* pf) {
  __m256 acc[R][NB];
  SW_UNROLL
  for (int r = 0; r < R; r++)
    SW_UNROLL
    for (int j = 0; j < NB; j++) acc[r][j] = _mm256_setzero_ps();
  int64_t p = 0;
  for (; p + 8 <= k; p += 8) {
    if (PF && (p & 15) == 0) {  // one 64-byte line per 16 floats
      SW_UNROLL
      for (int j = 0; j < NB; j++) _mm_prefetch(reinterpret_cast<const char*>(pf + j * ldb + p), _MM_HINT_T1);
    }
    __m256 av[R];
    SW_UNROLL
    for (int r = 0; r < R; r++) av[r] = in_reg(_mm256_loadu_ps(a + r * lda + p));
    SW_UNROLL
    for (int j = 0; j < NB; j++) {
      __m256 bv = in_reg(_mm256_loadu_ps(b + j * ldb + p));
      SW_UNROLL
      for (int r = 0; r < R; r++) acc[r][j] = _mm256_fmadd_ps(av[r], bv, acc[r][j]);
    }
  }
  if (p < k) {
    __m256i mask = tail_mask(k - p);
    __m256 av[R];
    SW_UNROLL
    for (int r = 0; r < R; r++) av[r] = _mm256_maskload_ps(a + r * lda + p, mask);
    SW_UNROLL
    for (int j = 0; j < NB; j++) {
      __m256 bv = _mm256_maskload_ps(b + j * ldb + p, mask);
      SW_UNROLL
      for (int r = 0; r < R; r++) acc[r][j] = _mm256_fmadd_ps(av[r], bv, acc[r][j]);
    }
  }
  SW_UNROLL
  for (int r = 0; r < R; r++)
    SW_UNROLL
    for (int j = 0; j < NB; j++) put(c + r * ldc + j, hsum8(acc[r][j]), alpha, add);
}

// C[r][0..w) += sum over p of A(r, p) * B[p][0..w) for R rows and w <= 8 * NV columns (B stored (K, N)): one
// running sum per element, p in order; the last vector masked when w is not a multiple of 8.
template <int R, int NV, bool TAIL>
void axpy_tile(const float* a, int64_t lda, const float* b, int64_t ldb, int64_t k, float* c, int64_t ldc,
               float alpha, bool add, int64_t w) {
  __m256 acc[R][NV];
  SW_UNROLL
  for (int r = 0; r < R; r++)
    SW_UNROLL
    for (int v = 0; v < NV; v++) acc[r][v] = _mm256_setzero_ps();
  const __m256i last = tail_mask(w - 8 * (NV - 1) >= 8 ? 8 : w - 8 * (NV - 1));
  for (int64_t p = 0; p < k; p++) {
    const float* brow = b + p * ldb;
    __m256 bv[NV];
    SW_UNROLL
    for (int v = 0; v < NV - 1; v++) bv[v] = in_reg(_mm256_loadu_ps(brow + 8 * v));
    bv[NV - 1] = in_reg(TAIL ? _mm256_maskload_ps(brow + 8 * (NV - 1), last) : _mm256_loadu_ps(brow + 8 * (NV - 1)));
    SW_UNROLL
    for (int r = 0; r < R; r++) {
      __m256 ar = _mm256_broadcast_ss(a + r * lda + p);
      SW_UNROLL
      for (int v = 0; v < NV; v++) acc[r][v] = _mm256_fmadd_ps(ar, bv[v], acc[r][v]);
    }
  }
  const __m256 al = _mm256_set1_ps(alpha);
  SW_UNROLL
  for (int r = 0; r < R; r++) {
    SW_UNROLL
    for (int v = 0; v < NV; v++) {
      float* cp = c + r * ldc + 8 * v;
      __m256 x = _mm256_mul_ps(acc[r][v], al);
      if (!TAIL || v < NV - 1) {
        if (add) x = _mm256_add_ps(_mm256_loadu_ps(cp), x);
        _mm256_storeu_ps(cp, x);
      } else {
        if (add) x = _mm256_add_ps(_mm256_maskload_ps(cp, last), x);
        _mm256_maskstore_ps(cp, last, x);
      }
    }
  }
}

// Tile shapes: R rows of C by NB (dot) or 8 * NV (axpy) columns, so that the accumulators, the operands of one
// step and a temporary fit 16 vector registers; otherwise the compiler reloads operands from memory per FMA.
constexpr int tile_width(int r) { return r == 1 ? 8 : r == 2 ? 4 : r == 3 ? 3 : 2; }

template <int R, bool PF>
void dot_rows(const float* a, int64_t lda, const float* b, int64_t ldb, int64_t n, int64_t k, float* c, int64_t ldc,
              float alpha, bool add, const float* pf) {
  constexpr int NB = tile_width(R);
  int64_t j = 0;
  for (; j + NB <= n; j += NB)
    dot_tile<R, NB, PF>(a, lda, b + j * ldb, ldb, k, c + j, ldc, alpha, add, pf + j * ldb);
  for (; j < n; j++) dot_tile<R, 1, PF>(a, lda, b + j * ldb, ldb, k, c + j, ldc, alpha, add, pf + j * ldb);
}
template <int R>
void axpy_rows(const float* a, int64_t lda, const float* b, int64_t ldb, int64_t n, int64_t k, float* c,
               int64_t ldc, float alpha, bool add) {
  constexpr int NV = tile_width(R);
  int64_t j = 0;
  for (; j + 8 * NV <= n; j += 8 * NV) axpy_tile<R, NV, false>(a, lda, b + j, ldb, k, c + j, ldc, alpha, add, 8 * NV);
  for (; j + 8 <= n; j += 8) axpy_tile<R, 1, false>(a, lda, b + j, ldb, k, c + j, ldc, alpha, add, 8);
  if (j < n) axpy_tile<R, 1, true>(a, lda, b + j, ldb, k, c + j, ldc, alpha, add, n - j);
}

/** Rows [0, R) of C over n columns; pf (or null) is where the next panel of a B stored (N, K) starts. */
template <int R>
void small_rows(bool trans_b, const float* a, int64_t lda, const float* b, int64_t ldb, int64_t n, int64_t k,
                float* c, int64_t ldc, float alpha, bool add, const float* pf) {
  if (!trans_b) axpy_rows<R>(a, lda, b, ldb, n, k, c, ldc, alpha, add);
  else if (pf) dot_rows<R, true>(a, lda, b, ldb, n, k, c, ldc, alpha, add, pf);
  else dot_rows<R, false>(a, lda, b, ldb, n, k, c, ldc, alpha, add, b);
}
#else
template <int R>
void small_rows(bool trans_b, const float* a, int64_t lda, const float* b, int64_t ldb, int64_t n, int64_t k,
                float* c, int64_t ldc, float alpha, bool add, const float*) {
  for (int r = 0; r < R; r++)
    for (int64_t j = 0; j < n; j++) {
      float s = 0;
      for (int64_t p = 0; p < k; p++) s += a[r * lda + p] * (trans_b ? b[j * ldb + p] : b[p * ldb + j]);
      put(c + r * ldc + j, s, alpha, add);
    }
}
#endif

/**
 * Columns [j0, j1) of C = alpha * A @ op(B) (+ C) for m <= kSmallM rows of A stored row-major (lda). Walks B in
 * narrow panels (8 rows of a B stored (N, K), 64 columns of one stored (K, N)) that stay in L2 while every row
 * block of A passes over them, so that B comes from memory once; a long K is cut into blocks (summed into C one
 * after the other) so that a panel and A's rows still fit there.
 */
void small_gemm(int64_t m, int64_t j0, int64_t j1, int64_t k, const float* a, int64_t lda, bool trans_b,
                const float* b, int64_t ldb, float* c, int64_t ldc, float alpha, bool add) {
#if SW_AVX2
  if (m == 1 && trans_b && (j1 - j0) * k > kStreamFloats) {
    // A matrix-vector product over a B that is not in cache: one B row at a time, a single sequential stream,
    // which the hardware prefetchers follow best (measured: 19-22 GB/s on one core, against 13-14 GB/s with 8
    // rows read side by side). Each element is computed exactly as in the 8-row tiles.
    for (int64_t j = j0; j < j1; j++) dot_tile<1, 1, false>(a, lda, b + j * ldb, ldb, k, c + j, ldc, alpha, add, nullptr);
    return;
  }
#endif
  const int64_t panel = trans_b ? 8 : 512, kblock = trans_b ? 4096 : 256;
  for (int64_t jp = j0; jp < j1; jp += panel) {
    int64_t n = std::min(panel, j1 - jp);
    for (int64_t p0 = 0; p0 < k; p0 += kblock) {
      int64_t kc = std::min(kblock, k - p0);
      bool acc = add || p0 > 0;
      const float* bp = trans_b ? b + jp * ldb + p0 : b + p0 * ldb + jp;
      for (int64_t i = 0; i < m; i += 4) {
        const float* ai = a + i * lda + p0;
        float* ci = c + i * ldc + jp;
        // The first row block fetches the next panel while the others reuse this one from cache.
        const float* pf = trans_b && i == 0 && jp + 2 * panel <= j1 ? bp + panel * ldb : nullptr;
        switch (std::min<int64_t>(4, m - i)) {
          case 1: small_rows<1>(trans_b, ai, lda, bp, ldb, n, kc, ci, ldc, alpha, acc, pf); break;
          case 2: small_rows<2>(trans_b, ai, lda, bp, ldb, n, kc, ci, ldc, alpha, acc, pf); break;
          case 3: small_rows<3>(trans_b, ai, lda, bp, ldb, n, kc, ci, ldc, alpha, acc, pf); break;
          default: small_rows<4>(trans_b, ai, lda, bp, ldb, n, kc, ci, ldc, alpha, acc, pf); break;
        }
      }
    }
  }
}

/** op(A) as m row-major rows: A itself, or its transpose copied into dst (m * k floats). Returns the row stride. */
int64_t rows_of_a(bool trans_a, const float*& a, int64_t lda, int64_t m, int64_t k, float* dst) {
  if (!trans_a) return lda;
  for (int64_t p = 0; p < k; p++)
    for (int64_t i = 0; i < m; i++) dst[i * k + p] = a[p * lda + i];
  a = dst;
  return k;
}

/** Zeroes C (or leaves it, when accumulating) for an empty inner dimension. */
void empty_k(const GemmArgs& g) {
  if (!g.accumulate)
    for (int64_t i = 0; i < g.m; i++) std::memset(g.c + i * g.ldc, 0, size_t(g.n) * sizeof(float));
}

}  // namespace

void gemm_st(const GemmArgs& g) {
  if (g.m <= 0 || g.n <= 0) return;
  if (g.k <= 0) return empty_k(g);
  if (g.m > kSmallM) return gemm_packed_st(g);
  const float* a = g.a;
  int64_t lda = rows_of_a(g.trans_a, a, g.lda, g.m, g.k, g.trans_a ? scratch(1, g.m * g.k) : nullptr);
  small_gemm(g.m, 0, g.n, g.k, a, lda, g.trans_b, g.b, g.ldb, g.c, g.ldc, g.alpha, g.accumulate);
}

namespace {
/** gemm_batched for m <= kSmallM: tasks are (batch item, slice of N); A is transposed once up front if needed. */
void gemm_batched_small(bool trans_a, bool trans_b, int64_t batch, int64_t m, int64_t n, int64_t k, const float* a,
                        int64_t stride_a, const float* b, int64_t stride_b, float* c, bool accumulate) {
  std::vector<float> at;
  int64_t lda = trans_a ? m : k;
  if (trans_a) {  // op(A) rows, one copy per distinct batch item
    int64_t items = stride_a == 0 ? 1 : batch;
    at.resize(size_t(items * m * k));
    for (int64_t bi = 0; bi < items; bi++) {
      const float* src = a + bi * stride_a;
      rows_of_a(true, src, lda, m, k, at.data() + bi * m * k);
    }
    a = at.data();
    stride_a = stride_a == 0 ? 0 : m * k;
    lda = k;
  }
  int64_t ldb = trans_b ? k : n;
  // Rough single-thread time in microseconds: FMAs at about 60 GFLOP/s plus B from memory at about 20 GB/s.
  // Below kParallelUs, waking the pool and waiting for it costs more than it saves (more so on a loaded machine).
  double us = double(batch) * (2.0 * double(m) * double(n) * double(k) / 60e3 + 4.0 * double(n) * double(k) / 20e3);
  int nt = pool_threads();
  bool threaded = nt > 1 && us >= kParallelUs;
  // Slices of N: a few per thread when the product is large enough to share; whole items otherwise.
  int64_t per = 1;
  if (threaded && batch < 4 * nt) per = std::min<int64_t>((4 * nt + batch - 1) / batch, (n + 23) / 24);
  int64_t width = (n + per - 1) / per;
  width = (width + 7) / 8 * 8;
  per = (n + width - 1) / width;
  auto task = [&](int64_t t, int) {
    int64_t bi = t / per, j0 = (t % per) * width, j1 = std::min(n, j0 + width);
    small_gemm(m, j0, j1, k, a + bi * stride_a, lda, trans_b, b + bi * stride_b, ldb, c + bi * m * n, n, 1.0f,
               accumulate);
  };
  if (threaded) {
    parallel_tasks(batch * per, task);
  } else {
    for (int64_t t = 0; t < batch * per; t++) task(t, 0);
  }
}
}  // namespace

void gemm_batched(bool trans_a, bool trans_b, int64_t batch, int64_t m, int64_t n, int64_t k, const float* a,
                  int64_t stride_a, const float* b, int64_t stride_b, float* c, bool accumulate) {
  if (batch <= 0 || m <= 0 || n <= 0) return;
  if (k > 0 && m <= kSmallM) return gemm_batched_small(trans_a, trans_b, batch, m, n, k, a, stride_a, b, stride_b, c,
                                                       accumulate);
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
    if (g.k <= 0) empty_k(g);
    else gemm_packed_st(g);
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
