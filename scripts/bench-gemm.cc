// Scratch GEMM benchmark for tuning native/gemm.cc without Node:
//   g++ -O3 -march=native -std=c++17 -pthread -Inative scripts/bench-gemm.cc native/gemm.cc native/pool.cc -o /tmp/bench-gemm
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "gemm.h"
#include "pool.h"

using namespace sw;

static double check(bool ta, bool tb, int64_t m, int64_t n, int64_t k) {
  std::vector<float> a(m * k), b(k * n), c(m * n);
  for (auto& x : a) x = float(rand()) / RAND_MAX - 0.5f;
  for (auto& x : b) x = float(rand()) / RAND_MAX - 0.5f;
  gemm_batched(ta, tb, 1, m, n, k, a.data(), 0, b.data(), 0, c.data(), false);
  double maxerr = 0;
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < n; j++) {
      double s = 0;
      for (int64_t p = 0; p < k; p++) s += double(ta ? a[p * m + i] : a[i * k + p]) * (tb ? b[j * k + p] : b[p * n + j]);
      maxerr = std::max(maxerr, std::fabs(s - c[i * n + j]));
    }
  return maxerr;
}

/** Median and best GFLOP/s over repeated runs. */
static std::pair<double, double> bench(bool ta, bool tb, int64_t m, int64_t n, int64_t k) {
  std::vector<float> a(m * k), b(k * n), c(m * n);
  for (size_t i = 0; i < a.size(); i++) a[i] = std::sin(double(i)) * 0.5;
  for (size_t i = 0; i < b.size(); i++) b[i] = std::sin(double(i)) * 0.5;
  double flops = 2.0 * m * n * k;
  int reps = std::max<int>(3, int(2e10 / flops));
  std::vector<double> t;
  for (int r = 0; r < reps + 2; r++) {
    auto t0 = std::chrono::steady_clock::now();
    gemm_batched(ta, tb, 1, m, n, k, a.data(), 0, b.data(), 0, c.data(), false);
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return {flops / t[t.size() / 2] / 1e9, flops / t[0] / 1e9};
}

int main(int argc, char** argv) {
  setvbuf(stdout, nullptr, _IONBF, 0);
  if (argc > 1) pool_set_threads(atoi(argv[1]));
  printf("threads %d, fma peak %.1f GFLOP/s\n", pool_threads(), fma_peak_gflops());
  if (getenv("CHECK")) for (auto sh : std::vector<std::vector<int>>{{1, 1, 1}, {7, 13, 300}, {33, 17, 5}, {100, 37, 513}})
    for (int ta = 0; ta < 2; ta++)
      for (int tb = 0; tb < 2; tb++) printf("check %d %d %dx%dx%d err %.2e\n", ta, tb, sh[0], sh[1], sh[2], check(ta, tb, sh[0], sh[1], sh[2]));
  struct S { bool ta, tb; int m, n, k; };
  for (S s : {S{0, 0, 256, 256, 256}, S{0, 0, 512, 512, 512}, S{0, 0, 1024, 1024, 1024}, S{0, 0, 1000, 1000, 1000}, S{0, 0, 1040, 1040, 1040}, S{0, 0, 2048, 1024, 256},
              S{1, 0, 512, 512, 512}, S{0, 1, 512, 512, 512}})
  {
    auto r = bench(s.ta, s.tb, s.m, s.n, s.k);
    printf("gemm ta=%d tb=%d M=%d N=%d K=%d: median %.1f best %.1f GFLOP/s\n", s.ta, s.tb, s.m, s.n, s.k, r.first, r.second);
  }
}
