// Attention kernel microbenchmark (issue 6): decode of one token at a past length of 2048 on the
// tinyllama-1.1b shapes (32 query heads, 4 KV heads, head_dim 64), f32 and f16 caches, 1 and 2
// threads: time per call and bytes of KV cache read per second, against the read bandwidth
// measured in the same run. "hot": one layer's cache, called again and again (it stays in L2/L3);
// "cold": the calls rotate through 22 caches (one per layer of the model), so every call streams
// its cache from memory as a real decode step does. Also one 512-token prefill per cache type.
//
//   attention_bench [--past N] [--iterations N]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "tests/codegen/attention_cases.h"
#include "tests/codegen/harness.h"

using namespace ingot;
using namespace ingot::cgtest;

namespace {

using Clock = std::chrono::steady_clock;

// Read bandwidth of a 1 GiB buffer with `threads` threads (each sums its part), best of 3.
double read_bandwidth(int threads) {
  const size_t bytes = size_t{1} << 30, n = bytes / 8;
  auto* buf = static_cast<uint64_t*>(std::aligned_alloc(64, bytes));
  for (size_t i = 0; i < n; ++i) buf[i] = i;
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    std::vector<uint64_t> sums(static_cast<size_t>(threads));
    std::vector<std::thread> pool;
    const auto t0 = Clock::now();
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        const size_t lo = n * static_cast<size_t>(t) / static_cast<size_t>(threads);
        const size_t hi = n * static_cast<size_t>(t + 1) / static_cast<size_t>(threads);
        uint64_t s[8] = {};
        for (size_t i = lo; i + 8 <= hi; i += 8)
          for (int k = 0; k < 8; ++k) s[k] += buf[i + static_cast<size_t>(k)];
        uint64_t total = 0;
        for (uint64_t v : s) total += v;
        sums[static_cast<size_t>(t)] = total;
      });
    for (auto& th : pool) th.join();
    const double sec = std::chrono::duration<double>(Clock::now() - t0).count();
    if (sums[0] == 42) std::printf(" ");
    best = std::max(best, static_cast<double>(bytes) / sec / 1e9);
  }
  std::free(buf);
  return best;
}

// Seconds per call, rotating through `copies` independent buffer sets (caches included).
double time_rotating(KernelFn fn, const AttentionData& d, int threads, int copies, int iterations) {
  std::vector<std::unique_ptr<AttentionBuffers>> bufs;
  for (int c = 0; c < copies; ++c) bufs.push_back(attention_buffers(d, threads));
  for (auto& b : bufs) fn(b->args, b->dims, 0, 1);  // warm-up, and every page touched
  std::barrier sync(threads);
  std::vector<std::thread> pool;
  const auto t0 = Clock::now();
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      for (int i = 0; i < iterations; ++i) {
        const auto& b = bufs[static_cast<size_t>(i % copies)];
        fn(b->args, b->dims, t, threads);
        sync.arrive_and_wait();
      }
    });
  for (auto& th : pool) th.join();
  return std::chrono::duration<double>(Clock::now() - t0).count() / iterations;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t past = 2048;
  int iterations = 220;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--past") past = std::atoll(argv[i + 1]);
    else if (a == "--iterations") iterations = std::atoi(argv[i + 1]);
  }
  const double bw[2] = {read_bandwidth(1), read_bandwidth(2)};
  std::printf("read bandwidth: %.1f GB/s (1 thread), %.1f GB/s (2 threads)\n", bw[0], bw[1]);

  std::vector<std::unique_ptr<AttentionData>> decode, prefill;
  std::vector<KernelSpec> specs;
  for (bool f16 : {false, true}) {
    AttentionCase c;
    c.T = 1;
    c.past = past;
    c.H = 32;
    c.KV = 4;
    c.D = 64;
    c.f16 = f16;
    auto d = make_attention(c, 1, false);
    if (!d.ok()) {
      std::fprintf(stderr, "%s\n", d.message().c_str());
      return 1;
    }
    specs.push_back((*d)->spec);
    decode.push_back(std::move(*d));
    c.T = 512;
    c.past = 0;
    auto p = make_attention(c, 2, false);
    if (!p.ok()) return 1;
    prefill.push_back(std::move(*p));
  }
  CompileStats stats;
  auto lib = compile_and_open(specs, CodegenOptions{}, &stats);
  if (!lib.ok()) {
    std::fprintf(stderr, "%s\n", lib.message().c_str());
    return 1;
  }
  std::printf("compile (2 kernels): emit %.0f ms, optimize %.0f ms, codegen %.0f ms, link %.0f ms\n", stats.emit_ms,
              stats.optimize_ms, stats.codegen_ms, stats.link_ms);

  std::printf("\ndecode: T=1, past=%lld, H=32, KV=4, D=64 (one layer)\n", static_cast<long long>(past));
  std::printf("%-6s %-4s %-8s %12s %12s %10s %8s\n", "cache", "thr", "mode", "us/call", "KV MB/call", "KV GB/s", "% bw");
  for (const auto& d : decode) {
    KernelFn fn = (*lib)->find(d->spec.name);
    const double kv_bytes = 2.0 * static_cast<double>(past + 1) * static_cast<double>(d->row_bytes);
    for (int threads : {1, 2})
      for (int copies : {1, 22}) {
        const double s = time_rotating(fn, *d, threads, copies, iterations);
        const double gbs = kv_bytes / s / 1e9;
        std::printf("%-6s %-4d %-8s %12.1f %12.2f %10.1f %7.0f%%\n", d->c.f16 ? "f16" : "f32", threads,
                    copies == 1 ? "hot" : "cold", s * 1e6, kv_bytes / 1e6, gbs, 100.0 * gbs / bw[threads - 1]);
      }
  }

  std::printf("\nprefill: T=512, past=0, H=32, KV=4, D=64 (one layer; causal: 2*2*H*D*T*(T+1)/2 flops)\n");
  std::printf("%-6s %-4s %12s %10s\n", "cache", "thr", "ms/call", "GFLOP/s");
  for (const auto& d : prefill) {
    KernelFn fn = (*lib)->find(d->spec.name);
    const double T = 512, flops = 4.0 * 32 * 64 * T * (T + 1) / 2;
    for (int threads : {1, 2}) {
      const double s = time_rotating(fn, *d, threads, 1, 5);
      std::printf("%-6s %-4d %12.2f %10.1f\n", d->c.f16 ? "f16" : "f32", threads, s * 1e3, flops / s / 1e9);
    }
  }
  return 0;
}
