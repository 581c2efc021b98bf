#include "fp4forge/base/thread_pool.h"

#include <algorithm>
#include <chrono>

#include "fp4forge/base/parallel.h"  // ResolveThreads

namespace fp4forge {

ThreadPool::ThreadPool(int num_threads) {
  const int total = ResolveThreads(num_threads);
  for (int i = 1; i < total; ++i) workers_.emplace_back([this] { Work(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  start_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void ThreadPool::Run(int64_t num_items, const std::function<void(int64_t, int64_t)>& fn) {
  if (num_items <= 0) return;
  if (size() == 1 || num_items == 1) {
    fn(0, num_items);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    job_ = &fn;
    num_items_ = num_items;
    grain_ = std::max<int64_t>(1, num_items / (kRangesPerThread * size()));
    next_.store(0);
    pending_.store(static_cast<int>(workers_.size()));
    generation_.fetch_add(1);
  }
  start_.notify_all();
  TakeRanges(fn);
  if (!SpinUntil([this] { return pending_.load() == 0; })) {
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return pending_.load() == 0; });
  }
}

void ThreadPool::TakeRanges(const std::function<void(int64_t, int64_t)>& fn) {
  for (;;) {
    const int64_t begin = next_.fetch_add(grain_);
    if (begin >= num_items_) return;
    fn(begin, std::min(num_items_, begin + grain_));
  }
}

template <typename Done>
bool ThreadPool::SpinUntil(Done done) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(200);
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) return false;
  }
  return true;
}

void ThreadPool::Work() {
  uint64_t seen = 0;
  for (;;) {
    const std::function<void(int64_t, int64_t)>* job;
    SpinUntil([&] { return generation_.load() != seen; });
    {
      std::unique_lock<std::mutex> lock(mutex_);
      start_.wait(lock, [&] { return stop_ || generation_.load() != seen; });
      if (stop_) return;
      seen = generation_.load();
      job = job_;
    }
    TakeRanges(*job);
    if (pending_.fetch_sub(1) == 1) {
      std::lock_guard<std::mutex> lock(mutex_);
      done_.notify_one();
    }
  }
}

}  // namespace fp4forge
