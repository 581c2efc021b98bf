// Runs write jobs on one background thread so that writing a tensor overlaps with reading and
// quantizing the next. At most `capacity` jobs wait at a time (each may own a quantized tensor),
// which keeps memory bounded. A job's exception is rethrown by the next Submit() or by Drain().
#pragma once

#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

namespace fp4forge {

class BackgroundWriter {
 public:
  explicit BackgroundWriter(size_t capacity);
  ~BackgroundWriter();  // drains, swallowing errors (call Drain() to see them)
  BackgroundWriter(const BackgroundWriter&) = delete;
  BackgroundWriter& operator=(const BackgroundWriter&) = delete;

  void Submit(std::function<void()> job);  // blocks while `capacity` jobs are waiting
  void Drain();                            // waits for every job; rethrows the first error

 private:
  void Run();
  void RethrowLocked();

  size_t capacity_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<std::function<void()>> jobs_;
  bool busy_ = false, stop_ = false;
  std::exception_ptr error_;
  std::thread thread_;
};

}  // namespace fp4forge
