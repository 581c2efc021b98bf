// Run covers every item exactly once, whatever the number of items and threads, and back to back.
#include "fp4forge/base/thread_pool.h"

#include <atomic>
#include <vector>

#include <gtest/gtest.h>

namespace fp4forge {
namespace {

TEST(ThreadPool, RunCoversEveryItemOnce) {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (int64_t n : {0, 1, 2, 5, 23, 1000, 4099}) {
      for (int repeat = 0; repeat < 3; ++repeat) {
        std::vector<std::atomic<int>> seen(static_cast<size_t>(n));
        pool.Run(n, [&](int64_t begin, int64_t end) {
          ASSERT_LE(0, begin);
          ASSERT_LT(begin, end);
          ASSERT_LE(end, n);
          for (int64_t i = begin; i < end; ++i) seen[i].fetch_add(1);
        });
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(seen[i].load(), 1) << "item " << i << " of " << n << ", " << threads << " threads";
      }
    }
  }
}

}  // namespace
}  // namespace fp4forge
