// Thread pool: one job at a time, tasks handed out through an atomic counter.
#include "pool.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define SW_PAUSE() _mm_pause()
#else
#define SW_PAUSE() std::this_thread::yield()
#endif

namespace sw {
namespace {

thread_local int t_tid = 0;
thread_local bool t_in_job = false;

struct Pool {
  std::vector<std::thread> workers;
  int nthreads = 1;

  // The current job; written by the main thread before `generation` is bumped.
  TaskFn fn = nullptr;
  void* ctx = nullptr;
  int64_t ntasks = 0;
  std::atomic<int64_t> next{0};
  std::atomic<int> finished{0};  // workers done with the current job
  std::atomic<uint64_t> generation{0};
  std::atomic<bool> stop{false};

  std::mutex mu;  // guards sleeping workers
  std::condition_variable cv;
  std::atomic<int> sleepers{0};
  std::condition_variable done_cv;  // the main thread sleeps on it when workers are slow (descheduled)
  std::atomic<bool> main_waiting{false};
  std::mutex job_mu;  // one job at a time (e.g. several Node worker threads)

  void drain(int tid) {
    for (;;) {
      int64_t t = next.fetch_add(1, std::memory_order_relaxed);
      if (t >= ntasks) break;
      fn(ctx, t, tid);
    }
  }

  void worker_loop(int tid, uint64_t seen) {
    t_tid = tid;
    t_in_job = true;
    for (;;) {
      // Spin for about a millisecond so that back-to-back kernels start quickly, then sleep.
      auto start = std::chrono::steady_clock::now();
      uint64_t g;
      for (int i = 0;; i++) {
        g = generation.load(std::memory_order_acquire);
        if (g != seen || stop.load(std::memory_order_relaxed)) break;
        SW_PAUSE();
        if ((i & 255) == 255 && std::chrono::steady_clock::now() - start > std::chrono::microseconds(1000)) {
          std::unique_lock<std::mutex> lk(mu);
          sleepers.fetch_add(1);
          while (generation.load() == seen && !stop.load()) cv.wait(lk);
          sleepers.fetch_sub(1);
          start = std::chrono::steady_clock::now();
        }
      }
      if (stop.load()) return;
      seen = g;
      drain(tid);
      finished.fetch_add(1);  // seq_cst: pairs with main_waiting in run()
      if (main_waiting.load()) {
        std::lock_guard<std::mutex> lk(mu);
        done_cv.notify_one();
      }
    }
  }

  void start(int n) {
    nthreads = n;
    stop.store(false);
    uint64_t gen = generation.load();
    for (int i = 1; i < n; i++) workers.emplace_back([this, i, gen] { worker_loop(i, gen); });
  }

  void shutdown() {
    {
      std::lock_guard<std::mutex> lk(mu);
      stop.store(true);
    }
    cv.notify_all();
    for (auto& w : workers) w.join();
    workers.clear();
    nthreads = 1;
  }

  void run(int64_t n, TaskFn f, void* c) {
    fn = f;
    ctx = c;
    ntasks = n;
    next.store(0, std::memory_order_relaxed);
    finished.store(0, std::memory_order_relaxed);
    generation.fetch_add(1);  // seq_cst: pairs with the sleepers check in worker_loop
    if (sleepers.load() > 0) {
      std::lock_guard<std::mutex> lk(mu);
      cv.notify_all();
    }
    t_in_job = true;
    drain(0);
    t_in_job = false;
    // Wait for every worker to check in: spin briefly, then sleep, so that a worker that lost its core to
    // another process can be moved onto this one.
    int others = nthreads - 1;
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; finished.load(std::memory_order_acquire) < others; i++) {
      SW_PAUSE();
      if ((i & 63) == 63 && std::chrono::steady_clock::now() - start > std::chrono::microseconds(50)) {
        std::unique_lock<std::mutex> lk(mu);
        main_waiting.store(true);
        while (finished.load() < others) done_cv.wait(lk);
        main_waiting.store(false);
        break;
      }
    }
  }
};

Pool* g_pool = nullptr;  // leaked on purpose: workers may still sleep at process exit

Pool& pool() {
  if (!g_pool) {
    g_pool = new Pool();
    unsigned hw = std::thread::hardware_concurrency();
    g_pool->start(hw == 0 ? 1 : int(hw));
  }
  return *g_pool;
}

}  // namespace

int pool_threads() { return pool().nthreads; }

int pool_tid() { return t_tid; }

void pool_set_threads(int n) {
  if (n < 1) n = 1;
  if (n > 256) n = 256;
  Pool& p = pool();
  std::lock_guard<std::mutex> lk(p.job_mu);
  if (n == p.nthreads) return;
  p.shutdown();
  p.start(n);
}

void pool_run(int64_t ntasks, TaskFn fn, void* ctx) {
  Pool& p = pool();
  if (t_in_job || p.nthreads == 1 || ntasks == 1 || !p.job_mu.try_lock()) {
    for (int64_t t = 0; t < ntasks; t++) fn(ctx, t, t_tid);
    return;
  }
  p.run(ntasks, fn, ctx);
  p.job_mu.unlock();
}

}  // namespace sw
