#include "fp4forge/pipeline/background_writer.h"

#include <atomic>
#include <stdexcept>
#include <vector>

#include <gtest/gtest.h>

namespace fp4forge {
namespace {

TEST(BackgroundWriter, RunsJobsInOrder) {
  std::vector<int> order;
  {
    BackgroundWriter writer(2);
    for (int i = 0; i < 100; ++i) writer.Submit([&order, i] { order.push_back(i); });
    writer.Drain();
    EXPECT_EQ(order.size(), 100u);
  }
  for (int i = 0; i < 100; ++i) EXPECT_EQ(order[i], i);
}

TEST(BackgroundWriter, AFailedJobStopsLaterOnesAndIsRethrown) {
  std::atomic<int> ran = 0;
  BackgroundWriter writer(1);
  writer.Submit([&] { ++ran; });
  writer.Submit([] { throw std::runtime_error("disk full"); });
  // Either a later Submit or Drain reports the failure; jobs queued behind it never run.
  bool reported = false;
  try {
    for (int i = 0; i < 10; ++i) writer.Submit([&] { ++ran; });
    writer.Drain();
  } catch (const std::runtime_error& e) {
    reported = std::string(e.what()) == "disk full";
  }
  EXPECT_TRUE(reported);
  EXPECT_LT(ran.load(), 11);
}

}  // namespace
}  // namespace fp4forge
