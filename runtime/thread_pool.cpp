#include "runtime/thread_pool.h"

#include <exception>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define INGOT_PAUSE() _mm_pause()
#else
#define INGOT_PAUSE() std::this_thread::yield()
#endif

namespace ingot {
namespace {
// About 20-50 us of spinning on this class of machine before a worker sleeps.
constexpr int kSpinIterations = 20000;
}  // namespace

ThreadPool::ThreadPool(int threads) : threads_(threads < 1 ? 1 : threads) {
  // A system that cannot start another thread (ulimit -u, memory) throws std::system_error: run
  // on the threads already started rather than let the exception escape. No task has run yet, so
  // the workers read the final count when they first see one.
  try {
    workers_.reserve(static_cast<size_t>(threads_ - 1));
    for (int t = 1; t < threads_; ++t) workers_.emplace_back(&ThreadPool::worker, this, t);
  } catch (const std::exception&) {
    threads_ = static_cast<int>(workers_.size()) + 1;
  }
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_.store(true, std::memory_order_release);
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::run(const std::function<void(int, int)>& fn) {
  if (threads_ == 1) {
    fn(0, 1);
    return;
  }
  task_ = &fn;
  pending_.store(threads_ - 1, std::memory_order_relaxed);
  {
    // The generation changes under the mutex so a worker that checked it and is about to sleep
    // cannot miss the notification.
    std::lock_guard<std::mutex> lock(mutex_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  if (sleepers_.load(std::memory_order_acquire) > 0) wake_.notify_all();
  fn(0, threads_);
  // Spin briefly, then give the core away: a worker that the OS has descheduled (another process
  // on its core) would otherwise have this thread burn its whole time slice waiting.
  for (int spin = 0; pending_.load(std::memory_order_acquire) != 0; ++spin) {
    if (spin < kSpinIterations / 4) INGOT_PAUSE();
    else std::this_thread::yield();
  }
  task_ = nullptr;
}

void ThreadPool::worker(int index) {
  uint64_t seen = 0;
  for (;;) {
    uint64_t g = generation_.load(std::memory_order_acquire);
    for (int spin = 0; g == seen && spin < kSpinIterations; ++spin) {
      INGOT_PAUSE();
      g = generation_.load(std::memory_order_acquire);
    }
    if (g == seen) {
      std::unique_lock<std::mutex> lock(mutex_);
      sleepers_.fetch_add(1, std::memory_order_acq_rel);
      wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      sleepers_.fetch_sub(1, std::memory_order_acq_rel);
      g = generation_.load(std::memory_order_acquire);
    }
    seen = g;
    if (stop_.load(std::memory_order_acquire)) return;
    (*task_)(index, threads_);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

}  // namespace ingot
