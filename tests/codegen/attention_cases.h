// Cases for the attention, embedding and RopeTable kernels, in the style of harness.h: a small
// struct per configuration, random inputs, a one-node reference model run by the Evaluator, and a
// runner that calls the kernel on 1..3 real threads with sentinels around every buffer it may
// write (the output, the scratch, and the KV caches beyond the fresh rows). Header-only so that
// the test (attention_test.cpp) and the benchmark (bench/attention_bench.cpp) share it.
#pragma once

#include <barrier>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "codegen/kernels.h"
#include "ir/builder.h"
#include "ir/evaluator.h"
#include "ir/quant.h"
#include "ir/tensor.h"

namespace ingot::cgtest {

constexpr size_t kAttnGuard = 256;
constexpr uint8_t kAttnSentinel = 0xA5;

// 64-byte aligned bytes with `guard` sentinel bytes on both sides.
class GuardedBytes {
 public:
  explicit GuardedBytes(size_t bytes, size_t guard = kAttnGuard) : bytes_(bytes), guard_(guard) {
    const size_t total = (bytes + 2 * guard + 63) / 64 * 64;
    mem_ = static_cast<uint8_t*>(std::aligned_alloc(64, total));
    std::memset(mem_, kAttnSentinel, total);
  }
  ~GuardedBytes() { std::free(mem_); }
  GuardedBytes(const GuardedBytes&) = delete;
  GuardedBytes& operator=(const GuardedBytes&) = delete;
  uint8_t* data() { return mem_ + guard_; }
  const uint8_t* data() const { return mem_ + guard_; }
  size_t size() const { return bytes_; }
  bool intact() const {
    for (size_t i = 0; i < guard_; ++i)
      if (mem_[i] != kAttnSentinel || mem_[guard_ + bytes_ + i] != kAttnSentinel) return false;
    return true;
  }

 private:
  uint8_t* mem_;
  size_t bytes_, guard_;
};

inline std::vector<float> uniform_floats(std::mt19937_64& rng, int64_t n, float lo, float hi) {
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& f : v) f = u(rng);
  return v;
}

// Runs fn(args, dims, t, threads) on `threads` real threads and joins.
inline void run_threads(KernelFn fn, const void* const* args, const int64_t* dims, int threads) {
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back([=] { fn(args, dims, t, threads); });
  for (auto& th : pool) th.join();
}

inline double nmse(const float* y, const std::vector<float>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double e = ref[i];
    num += (y[i] - e) * (y[i] - e);
    den += e * e;
  }
  return den > 0 ? num / den : num;
}

// ---------------------------------------------------------------- attention
struct AttentionCase {
  int64_t T = 1, past = 0, H = 8, KV = 4, D = 64;
  bool f16 = false;    // f16 KV cache (else f32)
  bool packed = true;  // one qkv input (else q, k, v)
  int64_t window = 0;  // > 0: sliding-window attention over the last `window` keys
  float softcap = 0;   // > 0: soft-capped scores
  std::string kernel_name() const {
    return "attn_h" + std::to_string(H) + "_kv" + std::to_string(KV) + "_d" + std::to_string(D) + (f16 ? "_f16" : "_f32") +
           (packed ? "_packed" : "_qkv") + (window > 0 ? "_w" + std::to_string(window) : "") +
           (softcap > 0 ? "_cap" + std::to_string(static_cast<int>(softcap)) : "");
  }
  std::string name() const { return kernel_name() + "_t" + std::to_string(T) + "_past" + std::to_string(past); }
};

struct AttentionData {
  AttentionCase c;
  KernelSpec spec;
  int64_t max_ctx = 0, row_bytes = 0;  // cache rows (positions) and bytes of one position
  std::vector<float> q, k, v;          // packed: q holds qkv [T, (H + 2KV) D]
  std::vector<uint8_t> cache[2];       // initial K, V caches: rows < past random, the rest sentinel bytes
  std::vector<float> expected;         // reference output [T, H*D]
  std::vector<uint8_t> expected_cache[2];  // reference state: rows < past + T (the rest stays sentinel)
};

// The reference model, inputs and (optionally) the evaluator's results for one case. The caches
// hold max_ctx = past + T + 7 positions, so that the rows after the fresh ones can be checked.
inline StatusOr<std::unique_ptr<AttentionData>> make_attention(const AttentionCase& c, uint64_t seed, bool with_reference = true) {
  auto d = std::make_unique<AttentionData>();
  d->c = c;
  std::mt19937_64 rng(seed);
  const ElementType ct = c.f16 ? ElementType::f16 : ElementType::f32;
  const int64_t es = c.f16 ? 2 : 4;
  d->max_ctx = c.past + c.T + 7;
  d->row_bytes = c.KV * c.D * es;
  Model m;
  INGOT_RETURN_IF_ERROR(m.add_variable({"k", ct, {d->max_ctx, c.KV, c.D}}));
  INGOT_RETURN_IF_ERROR(m.add_variable({"v", ct, {d->max_ctx, c.KV, c.D}}));
  GraphBuilder b(m);
  AttrMap attrs = {{"k_variable", Attribute::String("k")}, {"v_variable", Attribute::String("v")},
                   {"scale", Attribute::Float(1.0 / std::sqrt(static_cast<double>(c.D)))}};
  if (c.window > 0) attrs["window"] = Attribute::Int(c.window);
  if (c.softcap > 0) attrs["softcap"] = Attribute::Float(c.softcap);
  std::map<std::string, Tensor> inputs;
  Node* n = nullptr;
  // Queries in [-4, 4] give scores of several units: the max-subtraction matters.
  if (c.packed) {
    const int64_t W = (c.H + 2 * c.KV) * c.D;
    d->q = uniform_floats(rng, c.T * W, -1, 1);
    for (int64_t t = 0; t < c.T; ++t)
      for (int64_t i = 0; i < c.H * c.D; ++i) d->q[static_cast<size_t>(t * W + i)] *= 4;
    attrs["q_heads"] = Attribute::Int(c.H);
    attrs["kv_heads"] = Attribute::Int(c.KV);
    attrs["head_dim"] = Attribute::Int(c.D);
    n = b.node(Op::Attention, {b.parameter("qkv", ElementType::f32, static_shape({c.T, W}))}, attrs, "attn");
    inputs["qkv"] = Tensor::from_f32({c.T, W}, d->q);
  } else {
    d->q = uniform_floats(rng, c.T * c.H * c.D, -4, 4);
    d->k = uniform_floats(rng, c.T * c.KV * c.D, -1, 1);
    d->v = uniform_floats(rng, c.T * c.KV * c.D, -1, 1);
    n = b.node(Op::Attention,
               {b.parameter("q", ElementType::f32, static_shape({c.T, c.H, c.D})),
                b.parameter("k_new", ElementType::f32, static_shape({c.T, c.KV, c.D})),
                b.parameter("v_new", ElementType::f32, static_shape({c.T, c.KV, c.D}))},
               attrs, "attn");
    inputs["q"] = Tensor::from_f32({c.T, c.H, c.D}, d->q);
    inputs["k_new"] = Tensor::from_f32({c.T, c.KV, c.D}, d->k);
    inputs["v_new"] = Tensor::from_f32({c.T, c.KV, c.D}, d->v);
  }
  INGOT_RETURN_IF_ERROR(b.status());
  b.result(n->out(0), "y");
  INGOT_RETURN_IF_ERROR(b.status());
  INGOT_ASSIGN_OR_RETURN(d->spec, kernel_spec_for(*n, c.kernel_name(), &m));
  // The cache before the call: `past` random rows (as the cache type holds them), sentinels after.
  std::map<std::string, Tensor> state;
  for (int i = 0; i < 2; ++i) {
    Tensor old = Tensor::zeros(ct, {c.past, c.KV, c.D});
    const auto vals = uniform_floats(rng, c.past * c.KV * c.D, -1, 1);
    for (size_t j = 0; j < vals.size(); ++j) old.set_f(static_cast<int64_t>(j), vals[j]);
    d->cache[i].assign(static_cast<size_t>(d->max_ctx * d->row_bytes), kAttnSentinel);
    if (old.nbytes()) std::memcpy(d->cache[i].data(), old.raw(), old.nbytes());
    if (c.past > 0) state[i == 0 ? "k" : "v"] = old;
  }
  if (!with_reference) return d;
  Evaluator ev(m);
  ev.set_state(state);
  INGOT_ASSIGN_OR_RETURN(auto r, ev.run(inputs));
  d->expected = r[0].to_f32_vector();
  for (int i = 0; i < 2; ++i) {
    auto it = ev.state().find(i == 0 ? "k" : "v");
    if (it == ev.state().end()) return Status::Error("the reference left no cache state");
    d->expected_cache[i] = d->cache[i];
    std::memcpy(d->expected_cache[i].data(), it->second.raw(), it->second.nbytes());
  }
  return d;
}

struct AttentionBuffers {
  std::unique_ptr<GuardedBytes> y, q, k, v, cache[2], scratch;
  const void* args[kAttnArgCount] = {};
  int64_t dims[kDimWords] = {};
};

inline std::unique_ptr<GuardedBytes> guarded_copy(const void* src, size_t bytes) {
  auto g = std::make_unique<GuardedBytes>(bytes);
  if (bytes) std::memcpy(g->data(), src, bytes);
  return g;
}

inline std::unique_ptr<AttentionBuffers> attention_buffers(const AttentionData& d, int threads) {
  auto a = std::make_unique<AttentionBuffers>();
  const AttentionCase& c = d.c;
  a->y = std::make_unique<GuardedBytes>(static_cast<size_t>(c.T * c.H * c.D) * 4);
  const float nan = std::nanf("");
  for (size_t i = 0; i < a->y->size() / 4; ++i) std::memcpy(a->y->data() + 4 * i, &nan, 4);
  a->q = guarded_copy(d.q.data(), d.q.size() * 4);
  a->args[kAttnY] = a->y->data();
  a->args[kAttnQ] = a->q->data();
  if (!c.packed) {
    a->k = guarded_copy(d.k.data(), d.k.size() * 4);
    a->v = guarded_copy(d.v.data(), d.v.size() * 4);
    a->args[kAttnK] = a->k->data();
    a->args[kAttnV] = a->v->data();
  }
  for (int i = 0; i < 2; ++i) {
    a->cache[i] = guarded_copy(d.cache[i].data(), d.cache[i].size());
    a->args[kAttnKCache + i] = a->cache[i]->data();
  }
  a->scratch = std::make_unique<GuardedBytes>(static_cast<size_t>(scratch_bytes_per_thread(d.spec, c.T) * threads));
  a->args[kAttnScratch] = a->scratch->data();
  a->dims[0] = c.T;
  a->dims[1] = c.past;
  return a;
}

struct KernelCheck {
  double nmse = 0;
  std::string problem;  // empty when everything is right (nmse is judged by the caller)
};

// Runs the attention kernel and checks the output's error, every byte of both caches (rows below
// past untouched, fresh rows equal to the reference's, rows after them still sentinel bytes) and
// the sentinels around every buffer.
inline KernelCheck run_attention(KernelFn fn, const AttentionData& d, int threads) {
  KernelCheck r;
  auto a = attention_buffers(d, threads);
  run_threads(fn, a->args, a->dims, threads);
  r.nmse = nmse(reinterpret_cast<const float*>(a->y->data()), d.expected);
  if (!(r.nmse == r.nmse)) r.problem = "NaN in the output (an element left unwritten?)";
  if (!a->y->intact()) r.problem = "a sentinel around the output was overwritten";
  if (!a->scratch->intact()) r.problem = "a sentinel around the scratch was overwritten";
  if (!a->q->intact() || (a->k && !a->k->intact()) || (a->v && !a->v->intact())) r.problem = "an input's sentinel changed";
  for (int i = 0; i < 2; ++i) {
    if (!a->cache[i]->intact()) r.problem = std::string(i ? "V" : "K") + " cache: a sentinel around it was overwritten";
    const uint8_t* got = a->cache[i]->data();
    const auto& want = d.expected_cache[i];
    for (size_t b = 0; b < want.size(); ++b)
      if (got[b] != want[b]) {
        const int64_t pos = static_cast<int64_t>(b) / d.row_bytes;
        const char* where = pos < d.c.past ? "an old row changed" : pos < d.c.past + d.c.T ? "a fresh row differs" : "written past the fresh rows";
        r.problem = std::string(i ? "V" : "K") + " cache position " + std::to_string(pos) + ": " + where;
        break;
      }
  }
  return r;
}

// Seconds per call on `threads` threads (started once, a barrier after every call). Each call
// writes the same fresh rows again, so the cache stays as it was.
inline double time_attention(KernelFn fn, const AttentionData& d, int threads, int iterations) {
  auto a = attention_buffers(d, threads);
  fn(a->args, a->dims, 0, 1);  // warm-up
  std::barrier sync(threads);
  std::vector<std::thread> pool;
  const auto start = std::chrono::steady_clock::now();
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      for (int i = 0; i < iterations; ++i) {
        fn(a->args, a->dims, t, threads);
        sync.arrive_and_wait();
      }
    });
  for (auto& th : pool) th.join();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / iterations;
}

}  // namespace ingot::cgtest
