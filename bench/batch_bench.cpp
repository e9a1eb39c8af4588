// Decode throughput of sessions batched through one Batcher (runtime/engine.h), without HTTP:
// for each N, N sessions each prefill a prompt of P tokens of their own, all in one call (as a
// server's step does when N requests arrive together), then decode D tokens in lockstep, one
// Batcher::run per step with one token from each session. Prints, per N, that prefill call's
// time, the aggregate generated tokens/s, the step time and the ratio to N = 1. The ids fed are
// each session's greedy choices, so the work is what a server does.
//
// Usage: batch_bench BUNDLE [--sessions 1,2,4,8] [--prompt P] [--tokens D] [--threads T] [--reps R]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/engine.h"

namespace {

int32_t argmax(std::span<const float> v) {
  return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

std::vector<int> int_list(const std::string& s) {
  std::vector<int> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) out.push_back(std::atoi(item.c_str()));
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help") {
    std::fprintf(stderr, "usage: batch_bench BUNDLE [--sessions 1,2,4,8] [--prompt P] [--tokens D] [--threads T] [--reps R]\n");
    return argc < 2 ? 2 : 0;
  }
  std::vector<int> sessions = {1, 2, 4, 8};
  int tokens = 64, threads = 2, reps = 3, prompt_len = 3;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--sessions") sessions = int_list(v);
    else if (a == "--tokens") tokens = std::atoi(v.c_str());
    else if (a == "--prompt") prompt_len = std::max(1, std::atoi(v.c_str()));
    else if (a == "--threads") threads = std::atoi(v.c_str());
    else if (a == "--reps") reps = std::atoi(v.c_str());
    else {
      std::fprintf(stderr, "batch_bench: unknown option %s\n", a.c_str());
      return 2;
    }
  }
  auto engine = ingot::Engine::load(argv[1]);
  if (!engine.ok()) {
    std::fprintf(stderr, "batch_bench: %s\n", engine.message().c_str());
    return 1;
  }
  const ingot::Engine& e = **engine;
  auto batcher = ingot::Batcher::create(e, threads);
  if (!batcher.ok()) {
    std::fprintf(stderr, "batch_bench: %s\n", batcher.message().c_str());
    return 1;
  }
  std::printf("# %s, tier %s, %d threads, prompts of %d tokens, %d tokens per session, best of %d\n", argv[1], e.tier().c_str(), threads,
              prompt_len, tokens, reps);
  std::printf("%8s %12s %14s %12s %10s\n", "sessions", "prefill ms", "tokens/s", "step ms", "vs 1");
  double single = 0;
  for (int n : sessions) {
    if (static_cast<int64_t>(n) * prompt_len > e.max_batch()) {
      std::fprintf(stderr, "batch_bench: %d prompts of %d tokens exceed the bundle's max_batch (%lld)\n", n, prompt_len,
                   static_cast<long long>(e.max_batch()));
      return 2;
    }
    double best = 0, best_step = 0, best_prefill = 0;
    for (int rep = 0; rep < reps; ++rep) {
      std::vector<std::unique_ptr<ingot::Session>> s;
      std::vector<int32_t> next(static_cast<size_t>(n));
      // A prompt of its own for each session: BOS and ids that differ between sessions.
      std::vector<std::vector<int32_t>> prompts(static_cast<size_t>(n));
      std::vector<ingot::BatchPart> parts(static_cast<size_t>(n));
      for (int i = 0; i < n; ++i) {
        auto created = ingot::Session::create(e, 0);
        if (!created.ok()) {
          std::fprintf(stderr, "batch_bench: %s\n", created.message().c_str());
          return 1;
        }
        s.push_back(std::move(*created));
        std::vector<int32_t>& prompt = prompts[static_cast<size_t>(i)];
        prompt.push_back(1);
        for (int t = 1; t < prompt_len; ++t) prompt.push_back(static_cast<int32_t>((100 + 37 * i + 7919 * t) % e.vocab()));
        parts[static_cast<size_t>(i)] = {s.back().get(), prompt, 1};
      }
      const auto p0 = std::chrono::steady_clock::now();
      if (ingot::Status st = (*batcher)->run(parts); !st.ok()) {
        std::fprintf(stderr, "batch_bench: %s\n", st.message().c_str());
        return 1;
      }
      const double prefill_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - p0).count();
      for (int i = 0; i < n; ++i) next[static_cast<size_t>(i)] = argmax(s[static_cast<size_t>(i)]->logits());
      const auto t0 = std::chrono::steady_clock::now();
      for (int step = 0; step < tokens; ++step) {
        for (int i = 0; i < n; ++i) parts[static_cast<size_t>(i)] = {s[static_cast<size_t>(i)].get(), std::span<const int32_t>(&next[static_cast<size_t>(i)], 1), 1};
        if (ingot::Status st = (*batcher)->run(parts); !st.ok()) {
          std::fprintf(stderr, "batch_bench: %s\n", st.message().c_str());
          return 1;
        }
        for (int i = 0; i < n; ++i) next[static_cast<size_t>(i)] = argmax(s[static_cast<size_t>(i)]->logits());
      }
      const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const double rate = n * tokens / sec;
      if (rate > best) {
        best = rate;
        best_step = sec * 1000 / tokens;
      }
      if (rep == 0 || prefill_ms < best_prefill) best_prefill = prefill_ms;
    }
    if (n == sessions.front()) single = best / n;
    std::printf("%8d %12.1f %14.1f %12.2f %9.2fx\n", n, best_prefill, best, best_step, single > 0 ? best / single : 0.0);
  }
  return 0;
}
