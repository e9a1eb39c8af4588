#include "tools/bench_profile.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <thread>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "runtime/atomic_file.h"

namespace ingot {
namespace {

using Clock = std::chrono::steady_clock;

double seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

// ---------------------------------------------------------------- the probes
// Each runs on `threads` threads at once, started together; the rate is total work over the
// slowest thread's wall time, best of a few rounds.

template <typename Fn>
double run_threads(int threads, Fn fn) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<double> secs(static_cast<size_t>(threads));
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire)) {
      }
      const auto t0 = Clock::now();
      fn(t);
      secs[size_t(t)] = seconds(t0, Clock::now());
    });
  while (ready.load() < threads) {
  }
  go.store(true, std::memory_order_release);
  for (auto& th : pool) th.join();
  return *std::max_element(secs.begin(), secs.end());
}

std::atomic<uint64_t> g_sink{0};

// Four streams a quarter of the slice apart, so that the core keeps several misses in flight (as a
// matmul over many weight rows does).
__attribute__((target("avx512f"))) uint64_t read_avx512(const uint8_t* p, size_t n) {
  __m512i a = _mm512_setzero_si512(), b = a, c = a, d = a;
  const size_t q = n / 4 / 64 * 64;
  for (size_t i = 0; i + 64 <= q; i += 64) {
    a = _mm512_add_epi64(a, _mm512_load_si512(p + i));
    b = _mm512_add_epi64(b, _mm512_load_si512(p + q + i));
    c = _mm512_add_epi64(c, _mm512_load_si512(p + 2 * q + i));
    d = _mm512_add_epi64(d, _mm512_load_si512(p + 3 * q + i));
  }
  return static_cast<uint64_t>(_mm512_reduce_add_epi64(_mm512_add_epi64(_mm512_add_epi64(a, b), _mm512_add_epi64(c, d))));
}

__attribute__((target("avx2"))) uint64_t read_avx2(const uint8_t* p, size_t n) {
  __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
  for (size_t i = 0; i + 128 <= n; i += 128) {
    a = _mm256_add_epi64(a, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i)));
    b = _mm256_add_epi64(b, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
    c = _mm256_add_epi64(c, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
    d = _mm256_add_epi64(d, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
  }
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), _mm256_add_epi64(_mm256_add_epi64(a, b), _mm256_add_epi64(c, d)));
  return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}

// Without AVX2 (an x86-64-v2 host): SSE2, what the compiler makes of plain loops.
uint64_t read_plain(const uint8_t* p, size_t n) {
  uint64_t a = 0, b = 0;
  for (size_t i = 0; i + 16 <= n; i += 16) {
    uint64_t x, y;
    std::memcpy(&x, p + i, 8);
    std::memcpy(&y, p + i + 8, 8);
    a += x;
    b += y;
  }
  return a + b;
}

constexpr int kAcc = 12;

float mul_add_plain(int64_t iters) {  // 4 lanes x kAcc multiply-adds (not fused) per iteration
  float acc[kAcc][4];
  for (int k = 0; k < kAcc; ++k)
    for (int l = 0; l < 4; ++l) acc[k][l] = 0.001f * static_cast<float>(k + l);
  for (int64_t i = 0; i < iters; ++i)
    for (int k = 0; k < kAcc; ++k)
      for (int l = 0; l < 4; ++l) acc[k][l] = acc[k][l] * 0.9999f + 0.0001f;
  float s = 0;
  for (int k = 0; k < kAcc; ++k)
    for (int l = 0; l < 4; ++l) s += acc[k][l];
  return s;
}

// 2 x 16 lanes x kAcc FMAs per iteration.
__attribute__((target("avx512f,fma"))) float fma_avx512(int64_t iters) {
  __m512 acc[kAcc];
  for (int k = 0; k < kAcc; ++k) acc[k] = _mm512_set1_ps(0.001f * static_cast<float>(k));
  const __m512 x = _mm512_set1_ps(0.9999f), y = _mm512_set1_ps(0.0001f);
  for (int64_t i = 0; i < iters; ++i)
    for (int k = 0; k < kAcc; ++k) acc[k] = _mm512_fmadd_ps(acc[k], x, y);
  __m512 s = acc[0];
  for (int k = 1; k < kAcc; ++k) s = _mm512_add_ps(s, acc[k]);
  return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"))) float fma_avx2(int64_t iters) {
  __m256 acc[kAcc];
  for (int k = 0; k < kAcc; ++k) acc[k] = _mm256_set1_ps(0.001f * static_cast<float>(k));
  const __m256 x = _mm256_set1_ps(0.9999f), y = _mm256_set1_ps(0.0001f);
  for (int64_t i = 0; i < iters; ++i)
    for (int k = 0; k < kAcc; ++k) acc[k] = _mm256_fmadd_ps(acc[k], x, y);
  __m256 s = acc[0];
  for (int k = 1; k < kAcc; ++k) s = _mm256_add_ps(s, acc[k]);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, s);
  return lanes[0] + lanes[7];
}

// vpdpbusd: 64 u8 x s8 multiply-adds (128 operations) per instruction.
__attribute__((target("avx512f,avx512bw,avx512vnni"))) int32_t dot_vnni512(int64_t iters) {
  __m512i acc[kAcc];
  for (int k = 0; k < kAcc; ++k) acc[k] = _mm512_set1_epi32(k);
  const __m512i x = _mm512_set1_epi8(3), y = _mm512_set1_epi8(-2);
  for (int64_t i = 0; i < iters; ++i)
    for (int k = 0; k < kAcc; ++k) acc[k] = _mm512_dpbusd_epi32(acc[k], x, y);
  __m512i s = acc[0];
  for (int k = 1; k < kAcc; ++k) s = _mm512_add_epi32(s, acc[k]);
  return _mm512_reduce_add_epi32(s);
}

// vpmaddubsw: 32 u8 x s8 multiplies and 16 pair additions (64 operations counted as 32 MACs),
// summed in 16 bits as the 4-bit kernels do (the vpmaddwd that widens the sums is shared by
// several). The empty asm makes x opaque at each use, so that the compiler cannot hoist the
// loop-invariant multiply (it did: the probe then timed vpaddw alone, 6x the true rate).
__attribute__((target("avx2"))) int32_t dot_avx2(int64_t iters) {
  __m256i acc[kAcc];
  for (int k = 0; k < kAcc; ++k) acc[k] = _mm256_set1_epi16(static_cast<int16_t>(k));
  __m256i x = _mm256_set1_epi8(3);
  const __m256i y = _mm256_set1_epi8(-2);
  for (int64_t i = 0; i < iters; ++i)
    for (int k = 0; k < kAcc; ++k) {
      __asm__ volatile("" : "+x"(x));
      acc[k] = _mm256_add_epi16(acc[k], _mm256_maddubs_epi16(x, y));
    }
  __m256i s = acc[0];
  for (int k = 1; k < kAcc; ++k) s = _mm256_add_epi16(s, acc[k]);
  return _mm256_extract_epi32(s, 0);
}

}  // namespace

HostLimits measure_host_limits(int threads) {
  HostLimits h;
  const bool avx512 = __builtin_cpu_supports("avx512f");
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const bool vnni = avx512 && __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw");
  // Bandwidth: twice the last-level cache and at least 512 MiB, so that the reads come from
  // memory, touched first; best of three reads.
  const long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
  const size_t bytes = std::max(size_t{512} << 20, l3 > 0 ? (static_cast<size_t>(l3) * 2 + (1 << 20) - 1) >> 20 << 20 : 0);
  h.probe_bytes = static_cast<int64_t>(bytes);
  uint8_t* buf = static_cast<uint8_t*>(std::aligned_alloc(64, bytes));
  if (buf) {
    std::memset(buf, 1, bytes);
    const size_t slice = bytes / static_cast<size_t>(threads) / 256 * 256;
    double best = 1e30;
    for (int r = 0; r < 3; ++r) {
      const double s = run_threads(threads, [&](int t) {
        const uint8_t* p = buf + static_cast<size_t>(t) * slice;
        g_sink += avx512 ? read_avx512(p, slice) : avx2 ? read_avx2(p, slice) : read_plain(p, slice);
      });
      best = std::min(best, s);
    }
    h.read_gbps = static_cast<double>(avx512 ? slice / 4 / 64 * 64 * 4 : slice) * threads / best / 1e9;
    std::free(buf);
  }
  // f32: FMAs on independent accumulators.
  {
    const int64_t iters = 4'000'000;
    double best = 1e30;
    for (int r = 0; r < 3; ++r)
      best = std::min(best, run_threads(threads, [&](int) {
        g_sink += static_cast<uint64_t>(avx512 ? fma_avx512(iters) : avx2 ? fma_avx2(iters) : mul_add_plain(iters));
      }));
    const double lanes = avx512 ? 16 : avx2 ? 8 : 4;
    h.f32_gops = 2.0 * lanes * kAcc * static_cast<double>(iters) * threads / best / 1e9;
    h.f32_isa = avx512 ? "avx512 vfmadd (16 lanes)" : avx2 ? "avx2 vfmadd (8 lanes)" : "sse2 mul+add (4 lanes)";
  }
  // int8: dot products.
  {
    const int64_t iters = 4'000'000;
    double best = 1e30;
    for (int r = 0; r < 3 && (vnni || avx2); ++r)
      best = std::min(best, run_threads(threads, [&](int) {
        g_sink += static_cast<uint64_t>(vnni ? dot_vnni512(iters) : dot_avx2(iters));
      }));
    if (!vnni && !avx2) best = 1e30;  // no int8 dot product instruction: the f32 figure applies
    const double ops_per_instr = vnni ? 128 : 64;
    h.int8_gops = vnni || avx2 ? ops_per_instr * kAcc * static_cast<double>(iters) * threads / best / 1e9 : h.f32_gops;
    h.int8_isa = vnni ? "avx512 vpdpbusd (64 multiply-adds)" : avx2 ? "avx2 vpmaddubsw (32 multiply-adds)" : "none (the f32 figure)";
  }
  return h;
}

namespace {

int64_t desc_value(const std::string& desc, const std::string& key) {
  const std::string k = " " + key + "=";
  size_t at = desc.find(k);
  if (at == std::string::npos) return 0;
  return std::atoll(desc.c_str() + at + k.size());
}

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "";
}

struct CallCost {
  std::string node, symbol, kind, desc;
  double bytes = 0, ops = 0;
  bool int8 = false;
};

// What one call moves and computes at `tokens` new tokens after `past` cached ones: weights whole,
// activations as their planned size per token, KV rows up to past + tokens; operations from the
// kernel's spec (matmul 2NK per token, attention 4 H D (past + i) for the i-th new token, other
// kernels about one operation per element of their largest row).
CallCost call_cost(const pb::Manifest& m, const pb::KernelCall& call, int64_t tokens, int64_t past,
                   const std::map<int64_t, int64_t>& buffer_bytes) {
  CallCost c;
  c.node = call.node();
  c.symbol = call.symbol().empty() ? "(builtin " + call.builtin() + ")" : call.symbol();
  for (const pb::Kernel& k : m.kernels())
    if (k.symbol() == call.symbol()) {
      c.kind = k.kind();
      c.desc = k.description();
    }
  if (call.symbol().empty()) c.kind = call.builtin();
  const int64_t max_batch = std::max<int64_t>(1, m.memory_plan().max_batch());
  const int64_t max_context = std::max<int64_t>(1, m.memory_plan().max_context());
  for (const pb::ArgRef& a : call.args()) {
    switch (a.ref_case()) {
      case pb::ArgRef::kWeight:
        if (a.weight() < static_cast<uint32_t>(m.tensors_size())) {
          const pb::Tensor& t = m.tensors(int(a.weight()));
          double b = static_cast<double>(t.size());
          // An embedding reads one row per token, not its table.
          if (c.kind == "embedding" && t.shape_size() > 0 && t.shape(0) > 0)
            b = b / static_cast<double>(t.shape(0)) * static_cast<double>(tokens);
          c.bytes += b;
        }
        break;
      case pb::ArgRef::kArenaOffset: {
        auto it = buffer_bytes.find(a.arena_offset());
        if (it != buffer_bytes.end()) c.bytes += static_cast<double>(it->second) / static_cast<double>(max_batch) * static_cast<double>(tokens);
        break;
      }
      case pb::ArgRef::kStateSlot:
        if (a.state_slot() < static_cast<uint32_t>(m.memory_plan().state_size()))
          c.bytes += static_cast<double>(m.memory_plan().state(int(a.state_slot())).bytes()) * static_cast<double>(past + tokens) /
                     static_cast<double>(max_context);
        break;
      default: break;
    }
  }
  if (call.symbol().empty()) c.bytes += 2.0 * static_cast<double>(call.row_bytes());
  // Token i of the call (1-based) attends to past + i positions.
  const double T = static_cast<double>(tokens), ctx_sum = T * static_cast<double>(past) + T * (T + 1) / 2;
  if (c.kind == "matmul") {
    c.ops = 2.0 * static_cast<double>(desc_value(c.desc, "N")) * static_cast<double>(desc_value(c.desc, "K")) * T;
    c.int8 = c.desc.find("act=q8") != std::string::npos;
  } else if (c.kind == "attention") {
    c.ops = 4.0 * static_cast<double>(desc_value(c.desc, "H")) * static_cast<double>(desc_value(c.desc, "D")) * ctx_sum;
  } else if (c.kind == "rms_norm" || c.kind == "embedding") {
    c.ops = 3.0 * static_cast<double>(desc_value(c.desc, "D")) * T;
  } else {
    c.ops = c.bytes / 4;  // element-wise: about one operation per f32 element moved
  }
  return c;
}

}  // namespace

Status run_profile(const Engine& engine, const std::string& bundle_path, const ProfileOptions& o, const std::string& out) {
  const pb::Manifest& m = engine.bundle().manifest();
  auto session_or = Session::create(engine, o.threads);
  if (!session_or.ok()) return session_or.status();
  std::unique_ptr<Session> session = std::move(*session_or);
  const int warmup = 4;
  int context = o.context;
  const int64_t need = static_cast<int64_t>(context) + warmup + 2 * static_cast<int64_t>(o.steps) + 1;
  if (o.prompt_tokens == 0 && need > engine.max_context()) {
    context = static_cast<int>(engine.max_context() - warmup - 2 * o.steps - 1);
    if (context < 1) return Status::Error(bundle_path + ": the context of " + std::to_string(engine.max_context()) +
                                          " tokens is too small to profile " + std::to_string(o.steps) + " steps");
  }
  std::mt19937 rng(4321);
  std::uniform_int_distribution<int32_t> d(0, static_cast<int32_t>(engine.vocab() - 1));
  const bool prompt_mode = o.prompt_tokens > 0;
  if (prompt_mode && o.prompt_tokens > engine.max_context())
    return Status::Error(bundle_path + ": a prompt of " + std::to_string(o.prompt_tokens) + " tokens is longer than the context of " +
                         std::to_string(engine.max_context()) + " tokens");
  std::vector<int32_t> prompt(static_cast<size_t>(prompt_mode ? o.prompt_tokens : context));
  for (auto& id : prompt) id = d(rng);
  INGOT_RETURN_IF_ERROR(session->prefill(prompt));
  if (!prompt_mode) {
    for (int i = 0; i < warmup; ++i) INGOT_RETURN_IF_ERROR(session->decode(d(rng)));
    // The positions the measured steps will write, once untimed, then forgotten: the first write
    // of a KV cache page costs a page fault (4-9 us a page on the AMD Zen 5 VMs), which would
    // land on whichever steps start a page rather than on the kernels.
    const int64_t start = session->position();
    for (int s = 0; s < 2 * o.steps; ++s) INGOT_RETURN_IF_ERROR(session->decode(d(rng)));
    INGOT_RETURN_IF_ERROR(session->truncate(start));
  }

  const auto& calls = engine.calls();
  // The observer's calls of one step, in the order they come: each call's time runs from the
  // previous one (a step observed twice, as a batched tail may be or a prompt longer than
  // max_batch is, accumulates; one never observed gets nothing).
  std::vector<std::pair<size_t, Clock::time_point>> marks;
  marks.reserve(2 * calls.size());
  std::vector<double> call_ms(calls.size(), 0.0);
  double plain_ms = 0, observed_ms = 0, sum_ms = 0;
  // Decode: the middle of the measured steps; a prompt starts from an empty context.
  const int64_t past_mid = prompt_mode ? 0 : static_cast<int64_t>(context) + warmup + o.steps;
  // Observed and plain steps alternate as O P P O O P P O ..., so that both see the same load and
  // as many even positions as odd ones.
  for (int s = 0; s < 2 * o.steps; ++s) {
    const bool observe = (s + s / 2) % 2 == 0;
    marks.clear();
    if (observe)
      session->set_step_observer([&](size_t step, const Engine::Call&, const uint8_t*, int64_t) { marks.emplace_back(step, Clock::now()); });
    else
      session->set_step_observer(nullptr);
    if (prompt_mode) INGOT_RETURN_IF_ERROR(session->truncate(0));
    const int32_t id = d(rng);
    const auto t0 = Clock::now();
    INGOT_RETURN_IF_ERROR(prompt_mode ? session->prefill(prompt) : session->decode(id));
    const auto t1 = Clock::now();
    const double ms = seconds(t0, t1) * 1e3;
    if (!observe) {
      plain_ms += ms;
      continue;
    }
    observed_ms += ms;
    auto prev = t0;  // the first call's time runs from the start of the step
    for (const auto& [step, t] : marks) {
      if (step < call_ms.size()) call_ms[step] += seconds(prev, t) * 1e3;
      prev = t;
    }
    sum_ms += seconds(t0, marks.empty() ? t0 : marks.back().second) * 1e3;
  }
  session->set_step_observer(nullptr);
  const double n = static_cast<double>(o.steps);
  plain_ms /= n;
  observed_ms /= n;
  sum_ms /= n;
  for (double& x : call_ms) x /= n;

  const HostLimits host = measure_host_limits(o.threads);
  std::map<int64_t, int64_t> buffer_bytes;  // the smallest buffer planned at each offset
  for (const auto& b : m.memory_plan().buffers()) {
    auto [it, added] = buffer_bytes.emplace(b.offset(), b.bytes());
    if (!added) it->second = std::min(it->second, b.bytes());
  }
  nlohmann::json jcalls = nlohmann::json::array();
  struct Agg {
    std::string kind, desc;
    int calls = 0;
    double ms = 0, bytes = 0, ops = 0;
    bool int8 = false;
  };
  std::map<std::string, Agg> by_symbol;
  std::vector<std::string> symbol_order;
  auto fraction = [](double x, double peak) { return peak > 0 ? x / peak : 0.0; };
  bool tail = false;  // from the last-row copy on, a prompt's calls run on the one row that gives logits
  for (size_t i = 0; i < calls.size(); ++i) {
    tail = tail || calls[i].copy_last_row;
    const int64_t step_tokens = prompt_mode && !tail ? o.prompt_tokens : 1;
    const CallCost c = call_cost(m, m.schedule().calls(static_cast<int>(i)), step_tokens, past_mid, buffer_bytes);
    const double secs = call_ms[i] / 1e3;
    const double gbps = secs > 0 ? c.bytes / secs / 1e9 : 0, gops = secs > 0 ? c.ops / secs / 1e9 : 0;
    const double peak_ops = c.int8 ? host.int8_gops : host.f32_gops;
    const bool memory_bound = c.bytes > 0 && c.ops / c.bytes * host.read_gbps < peak_ops;
    jcalls.push_back({{"step", i}, {"node", c.node}, {"symbol", c.symbol}, {"kind", c.kind}, {"desc", c.desc},
                      {"ms", call_ms[i]}, {"share", sum_ms > 0 ? call_ms[i] / sum_ms : 0}, {"bytes", c.bytes},
                      {"ops", c.ops}, {"int8", c.int8}, {"gbps", gbps}, {"gops", gops},
                      {"bw_fraction", fraction(gbps, host.read_gbps)}, {"ops_fraction", fraction(gops, peak_ops)},
                      {"bound", memory_bound ? "memory" : "compute"}});
    auto [it, added] = by_symbol.emplace(c.symbol, Agg{});
    if (added) symbol_order.push_back(c.symbol);
    Agg& a = it->second;
    a.kind = c.kind;
    a.desc = c.desc;
    a.calls++;
    a.ms += call_ms[i];
    a.bytes += c.bytes;
    a.ops += c.ops;
    a.int8 = c.int8;
  }
  nlohmann::json jkernels = nlohmann::json::array();
  std::sort(symbol_order.begin(), symbol_order.end(), [&](const std::string& x, const std::string& y) { return by_symbol[x].ms > by_symbol[y].ms; });
  if (o.print)
    std::printf("\nper-kernel profile: %s, %d thread(s), %s, %d steps; tier %s\n"
                "host limits (measured): read %.1f GB/s, f32 %.1f G ops/s (%s), int8 %.1f G ops/s (%s)\n\n"
                "| kernel | kind | calls | time ms | share | MB moved | M ops | GB/s | G ops/s | %% of bw | %% of ops | spec |\n"
                "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
                bundle_path.c_str(), o.threads,
                (prompt_mode ? "prompts of " + std::to_string(o.prompt_tokens) + " tokens from an empty context"
                             : "decode at " + std::to_string(past_mid) + " cached tokens").c_str(),
                o.steps, engine.tier().c_str(), host.read_gbps,
                host.f32_gops, host.f32_isa.c_str(), host.int8_gops, host.int8_isa.c_str());
  for (const std::string& sym : symbol_order) {
    const Agg& a = by_symbol[sym];
    const double secs = a.ms / 1e3;
    const double gbps = secs > 0 ? a.bytes / secs / 1e9 : 0, gops = secs > 0 ? a.ops / secs / 1e9 : 0;
    const double peak_ops = a.int8 ? host.int8_gops : host.f32_gops;
    jkernels.push_back({{"symbol", sym}, {"kind", a.kind}, {"desc", a.desc}, {"calls", a.calls}, {"ms", a.ms},
                        {"share", sum_ms > 0 ? a.ms / sum_ms : 0}, {"bytes", a.bytes}, {"ops", a.ops}, {"int8", a.int8},
                        {"gbps", gbps}, {"gops", gops}, {"bw_fraction", fraction(gbps, host.read_gbps)},
                        {"ops_fraction", fraction(gops, peak_ops)}});
    if (o.print)
      std::printf("| %s | %s | %d | %.3f | %.1f%% | %.2f | %.1f | %.2f | %.2f | %.0f%% | %.0f%% | %s |\n", sym.c_str(), a.kind.c_str(),
                  a.calls, a.ms, 100 * (sum_ms > 0 ? a.ms / sum_ms : 0), a.bytes / 1e6, a.ops / 1e6, gbps, gops,
                  100 * fraction(gbps, host.read_gbps), 100 * fraction(gops, peak_ops), a.desc.c_str());
  }
  const double ratio = plain_ms > 0 ? sum_ms / plain_ms : 0;
  if (o.print)
    std::printf("\nkernels sum to %.3f ms per step; the step takes %.3f ms without the observer (%.3f ms with it): "
                "sum / step = %.3f\n",
                sum_ms, plain_ms, observed_ms, ratio);
  nlohmann::json j;
  j["bundle"] = bundle_path;
  j["tier"] = engine.tier();
  j["threads"] = o.threads;
  j["context"] = past_mid;
  j["steps"] = o.steps;
  j["tokens_per_step"] = prompt_mode ? o.prompt_tokens : 1;
  j["mode"] = prompt_mode ? "prompt" : "decode";
  j["host"] = {{"cpu", cpu_model()}, {"read_gbps", host.read_gbps}, {"f32_gops", host.f32_gops}, {"int8_gops", host.int8_gops},
               {"f32_isa", host.f32_isa}, {"int8_isa", host.int8_isa}, {"threads", o.threads},
               {"bandwidth_probe_bytes", host.probe_bytes}};
  j["step_ms"] = plain_ms;
  j["step_ms_observed"] = observed_ms;
  j["kernel_sum_ms"] = sum_ms;
  j["sum_over_step"] = ratio;
  j["calls"] = jcalls;
  j["kernels"] = jkernels;
  return write_file_atomic(out, j.dump(1) + "\n", {bundle_path});
}

}  // namespace ingot
