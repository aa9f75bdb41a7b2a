// Runs fn(task) for task in [0, count) on up to `threads` threads (the caller's included),
// handing tasks out dynamically so uneven tiles balance. The first exception thrown by any task
// is rethrown on the calling thread after all threads have stopped.
#pragma once

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace arseg {

inline int defaultThreads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

template <typename Fn>
void parallelFor(int count, int threads, Fn&& fn) {
  if (count <= 0) return;
  threads = std::max(1, std::min(threads, count));
  std::atomic<int> next{0};
  std::exception_ptr failure;
  std::mutex failureLock;
  auto worker = [&](int thread) {
    try {
      for (int task; (task = next.fetch_add(1)) < count;) fn(task, thread);
    } catch (...) {
      std::lock_guard<std::mutex> lock(failureLock);
      if (!failure) failure = std::current_exception();
      next.store(count);
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker, t);
  worker(0);
  for (std::thread& t : pool) t.join();
  if (failure) std::rethrow_exception(failure);
}

}  // namespace arseg
