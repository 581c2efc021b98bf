#include "fp4forge/pipeline/read_ahead.h"


namespace fp4forge {

ReadAhead::ReadAhead(std::vector<int64_t> sizes, std::vector<size_t> needs, int64_t window,
                     std::function<void(size_t)> read)
    : offsets_(sizes.size() + 1, 0), needs_(std::move(needs)), window_(window), read_(std::move(read)) {
  for (size_t i = 0; i < sizes.size(); ++i) offsets_[i + 1] = offsets_[i] + sizes[i];
  thread_ = std::thread([this] { Run(); });
}

ReadAhead::~ReadAhead() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

void ReadAhead::WaitFor(size_t i) {
  std::unique_lock<std::mutex> lock(mutex_);
  consumer_ = i;
  changed_.notify_all();
  changed_.wait(lock, [&] { return done_ > needs_[i] || error_; });
  if (done_ <= needs_[i]) std::rethrow_exception(error_);  // an item it needs failed
}

void ReadAhead::Run() {
  for (size_t j = 0; j < needs_.size(); ++j) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [&] {
        return stop_ || j <= needs_[consumer_] || offsets_[j + 1] - offsets_[consumer_] <= window_;
      });
      if (stop_) return;
    }
    try {
      read_(j);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      error_ = std::current_exception();
      changed_.notify_all();
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_ = j + 1;
    }
    changed_.notify_all();
  }
}

}  // namespace fp4forge
