// A persistent thread pool. The calling (main) thread is worker 0; workers spin briefly after a job, then sleep.
#pragma once
#include <cstdint>

namespace sw {

using TaskFn = void (*)(void* ctx, int64_t task, int tid);

/** Number of threads that kernels split work over (main thread included). */
int pool_threads();
/** Sets the number of threads (>= 1); joins the old workers and starts new ones. */
void pool_set_threads(int n);
/** Runs fn(ctx, task, tid) for every task in [0, ntasks), spread over the pool. Nested calls run inline. */
void pool_run(int64_t ntasks, TaskFn fn, void* ctx);
/** The calling thread's index in the pool (0 for the main thread or outside a job). */
int pool_tid();

/** Runs f(task, tid) for task in [0, ntasks) on the pool. */
template <class F>
inline void parallel_tasks(int64_t ntasks, const F& f) {
  if (ntasks <= 0) return;
  if (ntasks == 1 || pool_threads() == 1) {
    int tid = pool_tid();
    for (int64_t t = 0; t < ntasks; t++) f(t, tid);
    return;
  }
  pool_run(ntasks, [](void* ctx, int64_t t, int tid) { (*static_cast<const F*>(ctx))(t, tid); },
           const_cast<void*>(static_cast<const void*>(&f)));
}

/**
 * Runs f(begin, end) over chunks of [0, n). `cost` is the rough work per index (in simple flops); ranges with
 * less total work than a few tens of microseconds run inline on the caller.
 */
template <class F>
inline void parallel_for(int64_t n, int64_t cost, const F& f) {
  if (n <= 0) return;
  const int64_t kMinWork = 1 << 16;  // flops below which threading does not pay
  int nt = pool_threads();
  int64_t work = n * (cost < 1 ? 1 : cost);
  if (nt == 1 || work < kMinWork) {
    f(int64_t(0), n);
    return;
  }
  // A few chunks per thread balance uneven work without much overhead.
  int64_t chunks = nt * 4;
  int64_t max_by_work = work / (kMinWork / 4);
  if (chunks > max_by_work) chunks = max_by_work < nt ? nt : max_by_work;
  if (chunks > n) chunks = n;
  int64_t step = (n + chunks - 1) / chunks;
  chunks = (n + step - 1) / step;
  parallel_tasks(chunks, [&](int64_t c, int) {
    int64_t b = c * step, e = b + step < n ? b + step : n;
    f(b, e);
  });
}

}  // namespace sw
