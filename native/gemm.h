// Packed GEMM (BLIS-style): C = alpha * op(A) @ op(B) (+ C when accumulate), row-major with leading dimensions.
#pragma once
#include <cstdint>

namespace sw {

struct GemmArgs {
  bool trans_a, trans_b;  // A stored (K, M) / B stored (N, K)
  int64_t m, n, k;
  const float* a;
  int64_t lda;  // row stride of A as stored
  const float* b;
  int64_t ldb;
  float* c;
  int64_t ldc;
  float alpha;
  bool accumulate;
};

/**
 * Single-threaded GEMM on the calling thread (usable inside pool tasks). Up to 16 rows (m) it streams B without
 * packing it; more rows go through the packed blocks.
 */
void gemm_st(const GemmArgs& g);

/**
 * Batched GEMM over the thread pool; stride 0 broadcasts A or B; C items are m*n apart (ldc = n). Up to 16 rows,
 * B is streamed unpacked, split over N between the threads. Results do not depend on the thread count.
 */
void gemm_batched(bool trans_a, bool trans_b, int64_t batch, int64_t m, int64_t n, int64_t k, const float* a,
                  int64_t stride_a, const float* b, int64_t stride_b, float* c, bool accumulate);

/** Measured FMA throughput over all pool threads, in GFLOP/s. */
double fma_peak_gflops();

}  // namespace sw
