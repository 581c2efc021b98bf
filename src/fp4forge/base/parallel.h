// Static work splitting over threads. Each worker gets one contiguous range, so which thread
// computes an item never changes the result: outputs are identical for every thread count.
#pragma once

#include <algorithm>
#include <cstdint>
#include <exception>
#include <thread>
#include <vector>

namespace fp4forge {

// Number of threads to use when the caller asks for `requested` (0 = all hardware threads).
inline int ResolveThreads(int requested) {
  if (requested > 0) return requested;
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

// Calls fn(begin, end) on up to `num_threads` disjoint ranges covering [0, num_items), the first
// on the calling thread. Returns when all are done; rethrows the first exception of any worker.
template <typename Fn>
void ParallelFor(int64_t num_items, int num_threads, Fn&& fn) {
  const int64_t workers = std::clamp<int64_t>(num_threads, 1, std::max<int64_t>(num_items, 1));
  if (workers == 1) {
    fn(int64_t{0}, num_items);
    return;
  }
  const int64_t chunk = (num_items + workers - 1) / workers;
  std::vector<std::exception_ptr> errors(workers);
  std::vector<std::thread> threads;
  threads.reserve(workers - 1);
  auto run = [&](int64_t w) {
    try {
      const int64_t begin = w * chunk;
      const int64_t end = std::min(num_items, begin + chunk);
      if (begin < end) fn(begin, end);
    } catch (...) {
      errors[w] = std::current_exception();
    }
  };
  for (int64_t w = 1; w < workers; ++w) threads.emplace_back(run, w);
  run(0);
  for (std::thread& t : threads) t.join();
  for (const std::exception_ptr& e : errors) {
    if (e) std::rethrow_exception(e);
  }
}

}  // namespace fp4forge
