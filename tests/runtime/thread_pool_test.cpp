// The kernel thread pool: every thread index runs exactly once per call, calls do not overlap,
// and many small calls in a row (a decoder step's pattern) complete.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "runtime/thread_pool.h"

namespace ingot {
namespace {

TEST(ThreadPool, EveryIndexRunsOncePerCall) {
  for (int n : {1, 2, 3}) {
    ThreadPool pool(n);
    EXPECT_EQ(pool.size(), n);
    for (int call = 0; call < 100; ++call) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      std::atomic<int> wrong_count{0};
      pool.run([&](int t, int nt) {
        if (nt != n) wrong_count++;
        hits[static_cast<size_t>(t)]++;
      });
      for (int t = 0; t < n; ++t) ASSERT_EQ(hits[static_cast<size_t>(t)].load(), 1) << "threads " << n << " call " << call;
      ASSERT_EQ(wrong_count.load(), 0);
    }
  }
}

TEST(ThreadPool, RunReturnsOnlyAfterEveryThreadFinished) {
  ThreadPool pool(3);
  std::atomic<int> finished{0};
  pool.run([&](int t, int) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5 * t));
    finished++;
  });
  EXPECT_EQ(finished.load(), 3);
}

TEST(ThreadPool, SplitsWorkLikeAKernelAndWakesAfterSleeping) {
  ThreadPool pool(2);
  std::vector<int> out(1001, 0);
  auto fill = [&](int value) {
    pool.run([&](int t, int nt) {
      const size_t per = (out.size() + static_cast<size_t>(nt) - 1) / static_cast<size_t>(nt);
      for (size_t i = per * static_cast<size_t>(t); i < std::min(out.size(), per * static_cast<size_t>(t + 1)); ++i) out[i] = value;
    });
  };
  for (int v = 1; v <= 1000; ++v) fill(v);
  for (int x : out) ASSERT_EQ(x, 1000);
  // Long enough for the worker to go to sleep; the next call must wake it.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  fill(7);
  for (int x : out) ASSERT_EQ(x, 7);
}

}  // namespace
}  // namespace ingot
