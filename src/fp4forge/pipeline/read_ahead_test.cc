#include "fp4forge/pipeline/read_ahead.h"

#include <atomic>
#include <stdexcept>

#include <gtest/gtest.h>

namespace fp4forge {
namespace {

// Items of 100 bytes, a window of 250: the reader may be at most two items past the consumer's,
// except where needs[] asks for more (items 1 and 2 form a group that needs item 5).
TEST(ReadAhead, ReadsInOrderWithinTheWindowAndWholeGroups) {
  std::atomic<size_t> read{0}, consumer{0};
  std::atomic<bool> beyond_window{false};
  const std::vector<size_t> needs = {0, 5, 5, 3, 4, 5, 6, 7, 8, 9};
  ReadAhead reader(std::vector<int64_t>(10, 100), needs, 250, [&](size_t i) {
    EXPECT_EQ(i, read.load());
    if (i > needs[consumer] && (i + 1 - consumer) * 100 > 250) beyond_window = true;
    read = i + 1;
  });
  for (size_t i = 0; i < 10; ++i) {
    consumer = i;
    reader.WaitFor(i);
    EXPECT_GT(read.load(), needs[i]);
  }
  EXPECT_FALSE(beyond_window);
}

TEST(ReadAhead, AnErrorReachesTheConsumer) {
  ReadAhead reader(std::vector<int64_t>(4, 1), {0, 1, 2, 3}, 100, [](size_t i) {
    if (i == 2) throw std::runtime_error("bad tensor");
  });
  reader.WaitFor(1);
  EXPECT_THROW(reader.WaitFor(2), std::runtime_error);
}

}  // namespace
}  // namespace fp4forge
