// Microbenchmark of the generated matmul kernels on tinyllama-1.1b shapes, driven by the test
// harness's cases (tests/codegen/harness.h): decode matrix-vector bandwidth against the memory
// bandwidth measured in the same run, prefill throughput, and the compile time of one layer.
//
//   codegen_bench [--quick] [--cpu NAME]      (bench/run-codegen-bench.sh runs it)
//   codegen_bench --dump-ir TYPE N K [q8]     the optimized LLVM IR of one matmul kernel
//                                             (pipe into `llc-19 -O3` to read its assembly)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "tests/codegen/harness.h"

using namespace ingot;
using namespace ingot::cgtest;

namespace {

using Clock = std::chrono::steady_clock;

// Read bandwidth of a buffer of `bytes` (1 GiB by default) with `threads` threads (each reads
// its part), best of 3.
double measure_bandwidth(int threads, size_t bytes = size_t{1} << 30) {
  auto* buf = static_cast<uint64_t*>(std::aligned_alloc(64, bytes));
  const size_t n = bytes / 8;
  for (size_t i = 0; i < n; ++i) buf[i] = i;
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    std::vector<std::thread> pool;
    std::vector<uint64_t> sums(static_cast<size_t>(threads));
    auto t0 = Clock::now();
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        const size_t lo = n * static_cast<size_t>(t) / static_cast<size_t>(threads);
        const size_t hi = n * static_cast<size_t>(t + 1) / static_cast<size_t>(threads);
        uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
        for (size_t i = lo; i + 8 <= hi; i += 8) {
          s0 += buf[i]; s1 += buf[i + 1]; s2 += buf[i + 2]; s3 += buf[i + 3];
          s4 += buf[i + 4]; s5 += buf[i + 5]; s6 += buf[i + 6]; s7 += buf[i + 7];
        }
        sums[static_cast<size_t>(t)] = s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7;
      });
    for (auto& th : pool) th.join();
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    if (sums[0] == 42) std::printf(" ");  // keep the sums alive
    best = std::max(best, static_cast<double>(bytes) / s / 1e9);
  }
  std::free(buf);
  return best;
}

struct BenchShape {
  int64_t N, K;
  const char* what;
};

const BenchShape kShapes[] = {
    {2048, 2048, "q/o proj"}, {256, 2048, "k/v proj (one KV group)"}, {5632, 2048, "gate or up"},
    {2048, 5632, "down"},     {32000, 2048, "logits"},
};

// Seconds per call: the best of three runs of about `seconds` each (the machine may be shared).
double time_adaptive(KernelFn fn, const CaseData& d, int threads, double seconds, int copies) {
  double t = time_kernel(fn, d, threads, 2, copies);
  const int iters = std::max(3, static_cast<int>(seconds / 3 / t));
  for (int rep = 0; rep < 3; ++rep) t = std::min(t, time_kernel(fn, d, threads, iters, copies));
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  std::string only;  // decode, prefill or compile: run one part
  double copies_bytes = 0;  // decode: bytes of weight copies to rotate through (default 1.1 GB)
  std::string weights_filter;  // --weights q4_k,q6_k
  int64_t prefill_tokens = 0;  // --tokens M: the prefill part's row count (default 512, --quick 128)
  CodegenOptions opt;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick")) quick = true;
    else if (!std::strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
    else if (!std::strcmp(argv[i], "--copies-bytes") && i + 1 < argc) copies_bytes = std::atof(argv[++i]);
    else if (!std::strcmp(argv[i], "--cpu") && i + 1 < argc) opt.cpu = argv[++i];
    else if (!std::strcmp(argv[i], "--weights") && i + 1 < argc) weights_filter = argv[++i];
    else if (!std::strcmp(argv[i], "--tokens") && i + 1 < argc) prefill_tokens = std::atoll(argv[++i]);
    else if (!std::strcmp(argv[i], "--dump-ir") && i + 3 < argc) {
      KernelSpec k;
      k.name = "kernel";
      k.kind = "matmul";
      auto t = parse_element_type(argv[i + 1]);
      if (!t) return 2;
      k.matmul.weight = *t;
      k.matmul.N = std::atoll(argv[i + 2]);
      k.matmul.K = std::atoll(argv[i + 3]);
      k.matmul.act_q8 = i + 4 < argc && !std::strcmp(argv[i + 4], "q8");
      auto ir = kernels_llvm_ir({k}, opt);
      if (!ir.ok()) { std::fprintf(stderr, "%s\n", ir.message().c_str()); return 1; }
      std::fputs(ir->c_str(), stdout);
      return 0;
    }
    else {
      std::fprintf(stderr, "usage: codegen_bench [--quick] [--cpu NAME] [--only decode|prefill|compile] [--weights T,T] [--tokens M] | --dump-ir TYPE N K [q8]\n");
      return 2;
    }
  }
  const double secs = quick ? 0.1 : 0.4;

  std::printf("target cpu: %s\n", opt.cpu.c_str());
  double bw1 = 0, bw2 = 0;
  if (only.empty() || only == "decode") {
    bw1 = measure_bandwidth(1);
    bw2 = measure_bandwidth(2);
    std::printf("measured read bandwidth (1 GiB buffer): 1 thread %.1f GB/s, 2 threads %.1f GB/s\n\n", bw1, bw2);
  }

  // ---- decode: one token, every weight byte read once per call.
  struct Wt {
    ElementType t;
    bool aq8;
  };
  const Wt decode_types[] = {{ElementType::q4_0, true}, {ElementType::q8_0, true}, {ElementType::f16, false},
                             {ElementType::q4_k, true},  {ElementType::q6_k, true},  {ElementType::q4_k, false},
                             {ElementType::q6_k, false}};
  // --weights q4_k,q6_k: only these weight types.
  auto wanted = [&](ElementType t) { return weights_filter.empty() || ("," + weights_filter + ",").find("," + std::string(type_name(t)) + ",") != std::string::npos; };
  if (only.empty() || only == "decode") {
  std::printf("decode (M=1): effective weight bandwidth; %% of the read bandwidth measured (512 MiB, best of 3)\n"
              "just before each kernel measurement, with the same thread count\n");
  std::printf("| weight | act | N x K | what | MB | 1 thread GB/s | bw | %% | 2 threads GB/s | bw | %% |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const Wt& w : decode_types) {
    if (!wanted(w.t)) continue;
    for (const BenchShape& s : kShapes) {
      if (quick && s.N == 32000) continue;
      MatMulCase c;
      c.weight = w.t;
      c.act_q8 = w.aq8;
      c.M = 1;
      c.N = s.N;
      c.K = s.K;
      auto d = make_case(c, 1, false);
      if (!d.ok()) { std::fprintf(stderr, "%s\n", d.message().c_str()); return 1; }
      auto lib = compile_and_open({(*d)->spec}, opt);
      if (!lib.ok()) { std::fprintf(stderr, "%s\n", lib.message().c_str()); return 1; }
      KernelFn fn = (*lib)->find((*d)->spec.name);
      const double mb = static_cast<double>((*d)->packed.size()) / 1e6;
      // Rotate through copies totalling >= 1 GiB so that weights come from memory, not cache.
      const double rotate = copies_bytes > 0 ? copies_bytes : quick ? 256e6 : 1.1e9;
      const int copies = std::max(1, static_cast<int>(std::ceil(rotate / static_cast<double>((*d)->packed.size()))));
      double gb[2], bw[2];
      for (int th = 1; th <= 2; ++th) {
        bw[th - 1] = measure_bandwidth(th, size_t{512} << 20);
        gb[th - 1] = static_cast<double>((*d)->packed.size()) / time_adaptive(fn, **d, th, secs, copies) / 1e9;
      }
      std::printf("| %s | %s | %lld x %lld | %s | %.1f | %.1f | %.1f | %.0f%% | %.1f | %.1f | %.0f%% |\n", std::string(type_name(w.t)).c_str(),
                  w.aq8 ? "q8" : "f32", static_cast<long long>(s.N), static_cast<long long>(s.K), s.what, mb, gb[0], bw[0],
                  100 * gb[0] / bw[0], gb[1], bw[1], 100 * gb[1] / bw[1]);
      std::fflush(stdout);
    }
  }

  }

  // ---- prefill: 512 tokens.
  if (only.empty() || only == "prefill") {
  const Wt prefill_types[] = {{ElementType::f32, false}, {ElementType::f16, false}, {ElementType::q8_0, true}, {ElementType::q4_0, true},
                              {ElementType::q4_k, true}, {ElementType::q6_k, true}, {ElementType::q4_0, false}};
  const int64_t M = prefill_tokens > 0 ? prefill_tokens : quick ? 128 : 512;
  // Few rows (a decode step of several streams): the weights come from memory, as they do in a
  // model, so calls rotate through copies of at least 1.1 GB; with many rows they stay in cache.
  const bool from_memory = M < 64;
  std::printf("\nprefill (M=%lld): G(FL)OP/s = 2*M*N*K / time (int ops for q8 activations)%s\n", static_cast<long long>(M),
              from_memory ? "; weights rotate through 1.1 GB of copies" : "");
  std::printf("| weight | act | N x K | 1 thread | 2 threads | per core (2 threads) |\n|---|---|---|---|---|---|\n");
  for (const Wt& w : prefill_types) {
    if (!wanted(w.t)) continue;
    for (const BenchShape& s : {kShapes[0], kShapes[2], kShapes[3]}) {
      if (quick && s.N != 2048) continue;
      MatMulCase c;
      c.weight = w.t;
      c.act_q8 = w.aq8;
      c.M = M;
      c.N = s.N;
      c.K = s.K;
      auto d = make_case(c, 2, false);
      if (!d.ok()) { std::fprintf(stderr, "%s\n", d.message().c_str()); return 1; }
      auto lib = compile_and_open({(*d)->spec}, opt);
      if (!lib.ok()) { std::fprintf(stderr, "%s\n", lib.message().c_str()); return 1; }
      KernelFn fn = (*lib)->find((*d)->spec.name);
      const double ops = 2.0 * static_cast<double>(M * s.N * s.K);
      // --copies-bytes overrides (e.g. 1: one copy, weights from cache at any M).
      const double rotate = copies_bytes > 0 ? copies_bytes : from_memory ? 1.1e9 : 0;
      const int copies = std::max(1, static_cast<int>(std::ceil(rotate / static_cast<double>((*d)->packed.size()))));
      const double g1 = ops / time_adaptive(fn, **d, 1, secs, copies) / 1e9;
      const double g2 = ops / time_adaptive(fn, **d, 2, secs, copies) / 1e9;
      std::printf("| %s | %s | %lld x %lld | %.1f | %.1f | %.1f |\n", std::string(type_name(w.t)).c_str(), w.aq8 ? "q8" : "f32",
                  static_cast<long long>(s.N), static_cast<long long>(s.K), g1, g2, g2 / 2);
      std::fflush(stdout);
    }
  }

  }

  // ---- compile time of one tinyllama-1.1b layer (q4_0 weights, 8-bit activations).
  if (!only.empty() && only != "compile") return 0;
  std::vector<KernelSpec> layer(6);
  auto mm = [&](size_t i, const char* name, int64_t N, int64_t K) {
    layer[i].name = name;
    layer[i].kind = "matmul";
    layer[i].matmul.weight = ElementType::q4_0;
    layer[i].matmul.act_q8 = true;
    layer[i].matmul.N = N;
    layer[i].matmul.K = K;
    return &layer[i].matmul;
  };
  MatMulSpec* qkv = mm(0, "qkv", 2048 + 2 * 256, 2048);
  qkv->rope = RopeLayout::interleaved;
  qkv->rope_heads = 32 + 4;
  qkv->head_dim = 64;
  mm(1, "o", 2048, 2048)->residual = true;
  mm(2, "gate_up", 2 * 5632, 2048)->swiglu = true;
  mm(3, "down", 2048, 5632)->residual = true;
  for (size_t i : {size_t{4}, size_t{5}}) {
    layer[i].name = i == 4 ? "attn_norm" : "ffn_norm";
    layer[i].kind = "rms_norm";
    layer[i].rms_norm.D = 2048;
  }
  CompileStats st;
  auto t0 = Clock::now();
  auto lib = compile_and_open(layer, opt, &st);
  const double total = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  if (!lib.ok()) { std::fprintf(stderr, "%s\n", lib.message().c_str()); return 1; }
  std::printf("\ncompile one tinyllama layer (qkv+rope, o+residual, gate_up+swiglu, down+residual, 2 rmsnorm; q4_0, q8 act):\n"
              "  %.0f ms total: emit %.0f, O3 %.0f, object %.0f, link %.0f ms; object %zu bytes\n",
              total, st.emit_ms, st.optimize_ms, st.codegen_ms, st.link_ms, st.object_bytes);
  return 0;
}
