// A fixed set of worker threads for the engine's kernels, started once: a matrix-vector product
// per layer and token is too short (tens of microseconds) to start threads for, as ParallelFor does.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace fp4forge {

class ThreadPool {
 public:
  // `num_threads` counts the calling thread (0 = all hardware threads).
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(begin, end) on disjoint contiguous ranges covering [0, num_items) and returns when all
  // are done. The calling thread and the workers take ranges of a fixed size (about 1/8 of a
  // thread's share) from a shared counter until none are left, so a thread that the machine slows
  // down takes fewer: fn's results must not depend on how [0, num_items) was cut or who ran which
  // range. fn must not throw. One Run at a time.
  void Run(int64_t num_items, const std::function<void(int64_t, int64_t)>& fn);

 private:
  static constexpr int64_t kRangesPerThread = 8;

  void Work();
  void TakeRanges(const std::function<void(int64_t, int64_t)>& fn);
  // Busy-waits up to 200 µs for done(); false if it is still not done.
  template <typename Done>
  bool SpinUntil(Done done);

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable start_, done_;
  const std::function<void(int64_t, int64_t)>* job_ = nullptr;
  int64_t num_items_ = 0, grain_ = 1;
  std::atomic<int64_t> next_{0};  // the first item no thread has taken yet
  // A new job bumps generation_; workers spin on it a little before sleeping on start_, because a
  // decode step issues one short job per layer and projection back to back and a sleeping thread
  // takes tens of microseconds to wake.
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  bool stop_ = false;
};

}  // namespace fp4forge
