// A fixed pool of worker threads for kernel calls: run(fn) calls fn(thread, nthreads) once per
// thread index, concurrently, the caller being thread 0, and returns when every call has
// returned. Generated kernels split their own work by thread index, so the pool needs no queue:
// one task at a time, dispatched with an atomic generation counter. Workers spin briefly between
// tasks (a decoder step issues hundreds of small calls) and then sleep.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace ingot {

class ThreadPool {
 public:
  // `threads` >= 1 (1: no workers, run() calls fn(0, 1) inline); fewer when the system cannot
  // start them all: size() tells.
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return threads_; }
  // Calls fn(t, size()) for t = 0..size()-1 and waits for all. Not reentrant: one caller at a time
  // (a session owns its pool, or callers serialize).
  void run(const std::function<void(int thread, int nthreads)>& fn);

 private:
  void worker(int index);
  int threads_;
  std::vector<std::thread> workers_;
  const std::function<void(int, int)>* task_ = nullptr;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::condition_variable wake_;
  std::atomic<int> sleepers_{0};
};

}  // namespace ingot
