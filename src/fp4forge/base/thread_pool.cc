#include "fp4forge/base/thread_pool.h"

#include <algorithm>
#include <chrono>

#include "fp4forge/base/parallel.h"

namespace fp4forge {

ThreadPool::ThreadPool(int num_threads) {
  const int total = ResolveThreads(num_threads);
  for (int i = 1; i < total; ++i) workers_.emplace_back([this, i] { Work(i); });
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
  const int64_t parts = std::clamp<int64_t>(size(), 1, std::max<int64_t>(num_items, 1));
  const int64_t chunk = (num_items + parts - 1) / std::max<int64_t>(parts, 1);
  if (parts == 1) {
    fn(0, num_items);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    job_ = &fn;
    num_items_ = num_items;
    chunk_ = chunk;
    pending_.store(static_cast<int>(workers_.size()));
    generation_.fetch_add(1);
  }
  start_.notify_all();
  fn(0, std::min(num_items, chunk));
  if (!SpinUntil([this] { return pending_.load() == 0; })) {
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return pending_.load() == 0; });
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

void ThreadPool::Work(int index) {
  uint64_t seen = 0;
  for (;;) {
    const std::function<void(int64_t, int64_t)>* job;
    int64_t begin, end;
    SpinUntil([&] { return generation_.load() != seen; });
    {
      std::unique_lock<std::mutex> lock(mutex_);
      start_.wait(lock, [&] { return stop_ || generation_.load() != seen; });
      if (stop_) return;
      seen = generation_.load();
      job = job_;
      begin = std::min(num_items_, index * chunk_);
      end = std::min(num_items_, begin + chunk_);
    }
    if (begin < end) (*job)(begin, end);
    if (pending_.fetch_sub(1) == 1) {
      std::lock_guard<std::mutex> lock(mutex_);
      done_.notify_one();
    }
  }
}

}  // namespace fp4forge
