// Reads a list of items ahead of their consumer on a thread of its own, so that the disk and the
// cores work at once: quantize's first pass over the input (amaxes, pages into the page cache)
// runs while its second pass quantizes and writes earlier tensors.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace fp4forge {

class ReadAhead {
 public:
  // read(i) reads item i (sizes[i] bytes), in order 0, 1, ..., at most `window` bytes beyond the item
  // the consumer is at, except that everything up to needs[i] (>= i) is read before item i is
  // handed out (a fused group's last member, for example).
  ReadAhead(std::vector<int64_t> sizes, std::vector<size_t> needs, int64_t window, std::function<void(size_t)> read);
  ~ReadAhead();  // stops the reader and waits for it
  ReadAhead(const ReadAhead&) = delete;
  ReadAhead& operator=(const ReadAhead&) = delete;

  // Blocks until items 0..needs[i] are read; rethrows the error of read() that stops them.
  void WaitFor(size_t i);

 private:
  void Run();

  std::vector<int64_t> offsets_;  // offsets_[i]: bytes of items before i
  std::vector<size_t> needs_;
  int64_t window_;
  std::function<void(size_t)> read_;
  std::mutex mutex_;
  std::condition_variable changed_;
  size_t done_ = 0;      // items read
  size_t consumer_ = 0;  // the item the consumer waits for or works on
  bool stop_ = false;
  std::exception_ptr error_;
  std::thread thread_;
};

}  // namespace fp4forge
