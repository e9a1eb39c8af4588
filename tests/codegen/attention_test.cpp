// The attention, embedding and RopeTable kernels against the reference evaluator (see
// attention_cases.h): decode and prefill over a KV cache with past rows, grouped-query head
// ratios, f32 and f16 caches, packed and separate q/k/v, 1..3 threads; every table type of the
// embedding; odd sizes and positions for the rotary tables.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>

#include "codegen/kernel_registry.h"
#include "codegen/kernels.h"
#include "ir/builder.h"
#include "ir/quant.h"
#include "runtime/cpu_features.h"
#include "tests/codegen/attention_cases.h"
#include "tests/codegen/harness.h"

namespace ingot::cgtest {
namespace {

// Attention is exact: the reference (attention_row in ir/ops.cpp) specifies the kernel's f32
// algorithm (chunks of 32 keys, 8-lane dot products summed by the same tree, float_spec::expf,
// the same sums and FMA chains) and the kernel reads exactly its operands (f16 caches: the same
// round-to-nearest-even values, fresh rows included). So every output must be bitwise equal,
// NMSE 0; a query that sees one key too many or too few gives an NMSE above 1e-6.
constexpr double kAttentionBound = 0.0;

struct HeadConfig {
  int64_t H, KV;
};

// Compiles the distinct kernels of `cases` once and runs each case on 1, 2 and 3 threads.
void check_attention(const std::vector<AttentionCase>& cases, const CodegenOptions& options = CodegenOptions{}) {
  std::vector<KernelSpec> specs;
  std::set<std::string> seen;
  std::vector<std::unique_ptr<AttentionData>> data;
  uint64_t seed = 100;
  for (const AttentionCase& c : cases) {
    auto d = make_attention(c, seed++);
    ASSERT_TRUE(d.ok()) << c.name() << ": " << d.message();
    if (seen.insert((*d)->spec.name).second) specs.push_back((*d)->spec);
    data.push_back(std::move(*d));
  }
  auto lib = compile_and_open(specs, options);
  ASSERT_TRUE(lib.ok()) << lib.message();
  double worst = 0;
  for (const auto& d : data) {
    KernelFn fn = (*lib)->find(d->spec.name);
    ASSERT_NE(fn, nullptr) << d->spec.name;
    for (int threads = 1; threads <= 3; ++threads) {
      KernelCheck r = run_attention(fn, *d, threads);
      EXPECT_TRUE(r.problem.empty() && r.nmse <= kAttentionBound)
          << d->c.name() << " threads=" << threads << ": nmse " << r.nmse << " " << r.problem;
      worst = std::max(worst, r.nmse);
    }
  }
  std::printf("largest attention nmse: %.3g (bound %.0e)\n", worst, kAttentionBound);
}

AttentionCase attention_case(int64_t T, int64_t past, bool f16, bool packed, HeadConfig hc, int64_t D) {
  AttentionCase c;
  c.T = T;
  c.past = past;
  c.H = hc.H;
  c.KV = hc.KV;
  c.D = D;
  c.f16 = f16;
  c.packed = packed;
  return c;
}

// Every token count with every past length for one kernel configuration per cache type: decode (1
// and 3 tokens, one token block) and prefill (17 and 33 tokens: two and three blocks of 16, the
// last partial), on an empty cache, one row, a partial key chunk (31) and many chunks (200).
std::vector<AttentionCase> full_grid(bool f16, bool packed, HeadConfig hc, int64_t D) {
  std::vector<AttentionCase> out;
  for (int64_t T : {1, 3, 17, 33})
    for (int64_t past : {0, 1, 31, 200}) out.push_back(attention_case(T, past, f16, packed, hc, D));
  return out;
}

// The other configurations at fewer (T, past) points: one decode and one prefill with a cache.
std::vector<AttentionCase> sparse_grid(bool f16, bool packed, HeadConfig hc, int64_t D) {
  std::vector<AttentionCase> out;
  for (auto [T, past] : {std::pair<int64_t, int64_t>{1, 200}, {3, 31}, {33, 1}, {17, 200}})
    out.push_back(attention_case(T, past, f16, packed, hc, D));
  return out;
}

TEST(CodegenAttention, F32CacheAllTokenCountsAndPastLengths) {
  check_attention(full_grid(false, true, {8, 4}, 64));
}

TEST(CodegenAttention, F16CacheAllTokenCountsAndPastLengths) {
  check_attention(full_grid(true, true, {8, 4}, 64));
}

TEST(CodegenAttention, HeadRatiosHeadDimsAndInputForms) {
  std::vector<AttentionCase> cases;
  for (HeadConfig hc : {HeadConfig{8, 4}, HeadConfig{4, 4}, HeadConfig{6, 2}})
    for (int64_t D : {8, 64})
      for (bool f16 : {false, true})
        for (bool packed : {true, false}) {
          if (hc.H == 8 && D == 64 && packed) continue;  // the full grids above
          auto g = sparse_grid(f16, packed, hc, D);
          cases.insert(cases.end(), g.begin(), g.end());
        }
  check_attention(cases);
}

// Sliding windows (Gemma 2 and 3's local layers) and soft-capped scores (Gemma 2): windows shorter
// than a key chunk, across chunk boundaries and longer than the context; caps that bite (queries
// in [-4, 4] give scores of several units) and loose ones; with and without an f16 cache.
TEST(CodegenAttention, SlidingWindowsAndSoftCaps) {
  std::vector<AttentionCase> cases;
  for (int64_t window : {1, 3, 40, 500})
    for (float cap : {0.0f, 2.0f, 50.0f})
      for (auto [T, past] : {std::pair<int64_t, int64_t>{1, 0}, {1, 200}, {3, 31}, {17, 70}, {33, 1}}) {
        if (window == 500 && cap == 0.0f) continue;  // a window beyond the context is plain causal attention: above
        // One kernel per (window, cap): the cache type and input form vary between them.
        AttentionCase c = attention_case(T, past, window == 3 || window == 500, cap != 2.0f, {8, 4}, 64);
        c.window = window;
        c.softcap = cap;
        cases.push_back(c);
      }
  for (float cap : {0.0f, 30.0f}) {  // head_dim 8: short rows
    AttentionCase c = attention_case(5, 40, false, false, {6, 2}, 8);
    c.window = 7;
    c.softcap = cap;
    cases.push_back(c);
  }
  check_attention(cases);
}

// The window and the cap change the result (the checks above would see a kernel that ignored them).
TEST(CodegenAttention, WindowAndCapMatter) {
  AttentionCase plain = attention_case(3, 70, false, true, {8, 4}, 64);
  AttentionCase windowed = plain, capped = plain;
  windowed.window = 5;
  capped.softcap = 2.0f;
  auto a = make_attention(plain, 9), b = make_attention(windowed, 9), c = make_attention(capped, 9);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_GT(nmse((*b)->expected.data(), (*a)->expected), 1e-3);
  EXPECT_GT(nmse((*c)->expected.data(), (*a)->expected), 1e-3);
}

// Every CPU tier the host runs gives the same bits (both cache types, GQA, decode and prefill).
class CodegenAttentionTiers : public ::testing::TestWithParam<std::string> {};

TEST_P(CodegenAttentionTiers, BitwiseOnEveryTier) {
  ASSERT_NE(find_cpu_tier(GetParam()), nullptr);
  if (std::string skip = tier_skip_reason(GetParam()); !skip.empty()) GTEST_SKIP() << skip;
  CodegenOptions options;
  options.cpu = GetParam();
  auto cases = sparse_grid(false, true, {8, 4}, 64);
  auto f16 = sparse_grid(true, false, {6, 2}, 8);
  cases.insert(cases.end(), f16.begin(), f16.end());
  // head_dim 128 and 96 (two passes of the 16-lane V accumulation on AVX-512 tiers, the second
  // partial for 96) and 40 (an odd count of 8-lane vectors: the 8-lane form).
  for (int64_t D : {128, 96, 40}) {
    auto g = sparse_grid(D != 96, true, {8, 2}, D);
    cases.insert(cases.end(), g.begin(), g.end());
  }
  for (AttentionCase c : sparse_grid(false, true, {8, 4}, 64)) {  // the vector tanh and the window masks
    c.window = 9;
    c.softcap = 3.0f;
    cases.push_back(c);
  }
  check_attention(cases, options);
}

INSTANTIATE_TEST_SUITE_P(, CodegenAttentionTiers, ::testing::ValuesIn(tier_names()),
                         [](const ::testing::TestParamInfo<std::string>& p) { return tier_test_name(p.param); });

// The checks can fail: the right kernel told a wrong past (one row less) writes its fresh rows one
// position early, over an old row, and lets every query see one key too few.
TEST(CodegenAttention, CheckerCatchesAWrongPast) {
  AttentionCase c;
  c.T = 3;
  c.past = 31;
  auto d = make_attention(c, 3);
  ASSERT_TRUE(d.ok()) << d.message();
  auto lib = compile_and_open({(*d)->spec}, CodegenOptions{});
  ASSERT_TRUE(lib.ok()) << lib.message();
  KernelFn fn = (*lib)->find((*d)->spec.name);
  ASSERT_TRUE(run_attention(fn, **d, 2).problem.empty());
  AttentionData wrong = **d;
  wrong.c.past = 30;
  KernelCheck r = run_attention(fn, wrong, 2);
  EXPECT_NE(r.problem.find("cache position 30"), std::string::npos) << r.problem;
  EXPECT_GT(r.nmse, 1e-6);
}

// The spec comes from the graph: packed or not, the cache variables' type, head_dim a multiple of 8.
TEST(CodegenAttention, SpecFromTheGraph) {
  AttentionCase c;
  c.f16 = true;
  c.packed = false;
  c.H = 6;
  c.KV = 2;
  c.D = 8;
  auto d = make_attention(c, 1, false);
  ASSERT_TRUE(d.ok()) << d.message();
  const AttentionSpec& a = (*d)->spec.attention;
  EXPECT_EQ((*d)->spec.kind, "attention");
  EXPECT_EQ(a.H, 6);
  EXPECT_EQ(a.KV, 2);
  EXPECT_EQ(a.D, 8);
  EXPECT_FALSE(a.packed);
  EXPECT_EQ(a.cache, ElementType::f16);
  EXPECT_FLOAT_EQ(a.scale, 1.0f / std::sqrt(8.0f));
  // head_dim 6: the hand-written family declines and says why; the generic path takes the node.
  c.D = 6;
  auto odd = make_attention(c, 1, false);
  ASSERT_TRUE(odd.ok()) << odd.message();
  EXPECT_EQ((*odd)->spec.kind, "generic");
  Model m;
  ASSERT_TRUE(m.add_variable({"kc", ElementType::f16, {16, 2, 6}}).ok());
  ASSERT_TRUE(m.add_variable({"vc", ElementType::f16, {16, 2, 6}}).ok());
  GraphBuilder b(m);
  const Shape kv{Dim::symbol("tokens"), Dim(2), Dim(6)};
  Node* attention = b.node(Op::Attention, {b.parameter("q", ElementType::f32, Shape{Dim::symbol("tokens"), Dim(6), Dim(6)}),
                                           b.parameter("k", ElementType::f32, kv), b.parameter("v", ElementType::f32, kv)},
                           {{"k_variable", Attribute::String("kc")}, {"v_variable", Attribute::String("vc")}, {"scale", Attribute::Float(0.4)}});
  ASSERT_TRUE(b.ok()) << b.status().message();
  auto refused = find_kernel_family("attention")->spec_for(*attention, &m);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.message().find("head_dim a multiple of 8"), std::string::npos) << refused.message();
}

// ---------------------------------------------------------------- embedding
struct EmbeddingCase {
  ElementType type;
  int64_t V, D, T;
};

// A [V, D] table of type t: reference quantizers for q8_0/q4_0, random blocks with sane f16
// scales for the k-quants (every byte pattern of their quants is valid).
Tensor random_table(ElementType t, int64_t V, int64_t D, std::mt19937_64& rng) {
  Tensor w = Tensor::zeros(t, {V, D});
  uint8_t* p = w.mutable_raw();
  const auto f = uniform_floats(rng, V * D, -1, 1);
  switch (t) {
    case ElementType::f32: std::memcpy(p, f.data(), f.size() * 4); break;
    case ElementType::f16:
      for (size_t i = 0; i < f.size(); ++i) {
        const uint16_t h = f32_to_f16(f[i]);
        std::memcpy(p + 2 * i, &h, 2);
      }
      break;
    case ElementType::q8_0: quantize_row_q8_0(f.data(), reinterpret_cast<BlockQ8_0*>(p), V * D); break;
    case ElementType::q4_0: quantize_row_q4_0(f.data(), reinterpret_cast<BlockQ4_0*>(p), V * D); break;
    case ElementType::bf16:
      for (size_t i = 0; i < f.size(); ++i) {
        const uint16_t h = f32_to_bf16(f[i]);
        std::memcpy(p + 2 * i, &h, 2);
      }
      break;
    case ElementType::q5_0:
    case ElementType::q4_1:
    case ElementType::q5_1:
    case ElementType::iq4_nl: {
      // Random blocks (every quant pattern is valid) with sane f16 scales (and minimums).
      for (size_t i = 0; i < w.nbytes(); ++i) p[i] = static_cast<uint8_t>(rng());
      std::uniform_real_distribution<float> u(0.5f, 1.0f);
      const int64_t bb = type_info(t).block_bytes;
      for (int64_t b = 0; b < V * D / kQK; ++b) {
        const uint16_t d = f32_to_f16(u(rng) / 16), m = f32_to_f16(-u(rng));
        std::memcpy(p + b * bb, &d, 2);
        if (t == ElementType::q4_1 || t == ElementType::q5_1) std::memcpy(p + b * bb + 2, &m, 2);
      }
      break;
    }
    case ElementType::q4_k:
    case ElementType::q6_k: {
      for (size_t i = 0; i < w.nbytes(); ++i) p[i] = static_cast<uint8_t>(rng());
      std::uniform_real_distribution<float> u(0.5f, 1.0f);
      for (int64_t b = 0; b < V * D / kQK_K; ++b) {
        if (t == ElementType::q4_k) {
          auto* blk = reinterpret_cast<BlockQ4_K*>(p) + b;
          blk->d = f32_to_f16(u(rng) / 63 / 15);
          blk->dmin = f32_to_f16(u(rng) / 63 / 2);
        } else {
          reinterpret_cast<BlockQ6_K*>(p)[b].d = f32_to_f16(u(rng) / 127 / 32);
        }
      }
      break;
    }
    case ElementType::q5_k:
    case ElementType::q3_k:
    case ElementType::q2_k:
    case ElementType::iq4_xs: {
      for (size_t i = 0; i < w.nbytes(); ++i) p[i] = static_cast<uint8_t>(rng());
      std::uniform_real_distribution<float> u(0.5f, 1.0f);
      for (int64_t b = 0; b < V * D / kQK_K; ++b) {
        if (t == ElementType::q5_k) {
          auto* blk = reinterpret_cast<BlockQ5_K*>(p) + b;
          blk->d = f32_to_f16(u(rng) / 63 / 31);
          blk->dmin = f32_to_f16(u(rng) / 63 / 2);
        } else if (t == ElementType::q3_k) {
          reinterpret_cast<BlockQ3_K*>(p)[b].d = f32_to_f16(u(rng) / 32 / 4);
        } else if (t == ElementType::q2_k) {
          auto* blk = reinterpret_cast<BlockQ2_K*>(p) + b;
          blk->d = f32_to_f16(u(rng) / 15 / 3);
          blk->dmin = f32_to_f16(u(rng) / 15 / 2);
        } else {
          reinterpret_cast<BlockIQ4_XS*>(p)[b].d = f32_to_f16(u(rng) / 32 / 127);
        }
      }
      break;
    }
    default: break;
  }
  return w;
}

// Dequantization is exact arithmetic with the reference's rounding: the rows must be bitwise equal.
TEST(CodegenEmbedding, EveryTableTypeBitwise) {
  std::vector<EmbeddingCase> cases;
  for (int64_t T : {1, 3, 17, 33}) {
    cases.push_back({ElementType::f32, 37, 13, T});
    cases.push_back({ElementType::f32, 37, 64, T});
    cases.push_back({ElementType::f16, 37, 13, T});
    cases.push_back({ElementType::f16, 37, 72, T});
    cases.push_back({ElementType::q8_0, 37, 96, T});
    cases.push_back({ElementType::q4_0, 37, 96, T});
    cases.push_back({ElementType::bf16, 37, 13, T});
    cases.push_back({ElementType::bf16, 37, 72, T});
    cases.push_back({ElementType::q5_0, 37, 96, T});
    cases.push_back({ElementType::q4_1, 37, 96, T});
    cases.push_back({ElementType::q5_1, 37, 96, T});
    cases.push_back({ElementType::iq4_nl, 37, 96, T});
    cases.push_back({ElementType::q4_k, 19, 512, T});
    cases.push_back({ElementType::q6_k, 19, 512, T});
    cases.push_back({ElementType::q5_k, 19, 512, T});
    cases.push_back({ElementType::q3_k, 19, 512, T});
    cases.push_back({ElementType::q2_k, 19, 512, T});
    cases.push_back({ElementType::iq4_xs, 19, 512, T});
  }
  struct Data {
    EmbeddingCase c;
    KernelSpec spec;
    std::shared_ptr<Tensor> table;
    std::vector<int64_t> ids;
    std::vector<float> expected;
  };
  std::vector<Data> data;
  std::vector<KernelSpec> specs;
  std::set<std::string> seen;
  std::mt19937_64 rng(7);
  for (const auto& c : cases) {
    Data d{c, {}, std::make_shared<Tensor>(random_table(c.type, c.V, c.D, rng)), {}, {}};
    // The first and last rows, then random ones.
    for (int64_t t = 0; t < c.T; ++t) d.ids.push_back(t == 0 ? c.V - 1 : t == 1 ? 0 : static_cast<int64_t>(rng() % c.V));
    Model m;
    GraphBuilder b(m);
    Node* n = b.node(Op::Embedding, {b.constant(d.table, "table"), b.parameter("ids", ElementType::i64, static_shape({c.T}))}, {}, "embed");
    ASSERT_TRUE(b.ok()) << b.status().message();
    b.result(n->out(0), "y");
    const std::string name = "embed_" + std::string(type_name(c.type)) + "_v" + std::to_string(c.V) + "_d" + std::to_string(c.D);
    auto spec = kernel_spec_for(*n, name);
    ASSERT_TRUE(spec.ok()) << spec.message();
    d.spec = *spec;
    Evaluator ev(m);
    auto r = ev.run({{"ids", Tensor::from_i64({c.T}, d.ids)}});
    ASSERT_TRUE(r.ok()) << r.message();
    d.expected = (*r)[0].to_f32_vector();
    if (seen.insert(name).second) specs.push_back(d.spec);
    data.push_back(std::move(d));
  }
  auto lib = compile_and_open(specs, CodegenOptions{});
  ASSERT_TRUE(lib.ok()) << lib.message();
  for (const auto& d : data)
    for (int threads = 1; threads <= 3; ++threads) {
      KernelFn fn = (*lib)->find(d.spec.name);
      ASSERT_NE(fn, nullptr);
      GuardedBytes y(static_cast<size_t>(d.c.T * d.c.D) * 4);
      const float nan = std::nanf("");
      for (size_t i = 0; i < y.size() / 4; ++i) std::memcpy(y.data() + 4 * i, &nan, 4);
      auto ids = guarded_copy(d.ids.data(), d.ids.size() * 8);
      auto table = guarded_copy(d.table->raw(), d.table->nbytes());
      const void* args[kEmbedArgCount] = {y.data(), ids->data(), table->data()};
      const int64_t dims[kDimWords] = {d.c.T, 5};
      run_threads(fn, args, dims, threads);
      EXPECT_TRUE(y.intact()) << d.spec.name << " T=" << d.c.T << " threads=" << threads;
      int64_t wrong = 0;
      for (size_t i = 0; i < d.expected.size(); ++i) {
        float v;
        std::memcpy(&v, y.data() + 4 * i, 4);
        if (std::memcmp(&v, &d.expected[i], 4) != 0) ++wrong;
      }
      EXPECT_EQ(wrong, 0) << d.spec.name << " T=" << d.c.T << " threads=" << threads;
    }
}

// ---------------------------------------------------------------- RopeTable
// The kernel computes the reference's angle (an f32 product) and rounds libm's double cos and sin
// to f32, as the reference does: bitwise equal tables.
TEST(CodegenRopeTable, OddSizesAndPositionsBitwise) {
  struct Case {
    int64_t H, T, pos;
    bool i32;
  };
  std::vector<Case> cases;
  for (int64_t H : {1, 5, 32})
    for (int64_t T : {1, 3, 17, 33})
      for (int64_t pos : {0, 7, 1001, 123457}) cases.push_back({H, T, pos, false});
  cases.push_back({5, 3, 99, true});
  cases.push_back({32, 17, 4093, true});
  std::vector<KernelSpec> specs;
  std::set<std::string> seen;
  struct Data {
    Case c;
    KernelSpec spec;
    std::vector<float> inv, cos, sin;
  };
  std::vector<Data> data;
  for (const auto& c : cases) {
    Data d{c, {}, {}, {}, {}};
    // Inverse frequencies of a LLaMA-style base plus one unusual value (an odd, large one).
    for (int64_t j = 0; j < c.H; ++j)
      d.inv.push_back(j == c.H - 1 && c.H > 1 ? 3.3f : static_cast<float>(std::pow(10000.0, -2.0 * j / (2.0 * c.H))));
    Model m;
    GraphBuilder b(m);
    const ElementType pt = c.i32 ? ElementType::i32 : ElementType::i64;
    Node* n = b.node(Op::RopeTable, {b.parameter("pos", pt, {}), b.parameter("inv", ElementType::f32, static_shape({c.H}))},
                     {{"length", Attribute::Dims({Dim(c.T)})}}, "rope");
    ASSERT_TRUE(b.ok()) << b.status().message();
    b.result(n->out(0), "cos");
    b.result(n->out(1), "sin");
    const std::string name = "rope_h" + std::to_string(c.H) + (c.i32 ? "_i32" : "");
    auto spec = kernel_spec_for(*n, name);
    ASSERT_TRUE(spec.ok()) << spec.message();
    d.spec = *spec;
    Tensor pos = Tensor::zeros(pt, {});
    std::memcpy(pos.mutable_raw(), &c.pos, c.i32 ? 4 : 8);  // little-endian: the low half
    Evaluator ev(m);
    auto r = ev.run({{"pos", pos}, {"inv", Tensor::from_f32({c.H}, d.inv)}});
    ASSERT_TRUE(r.ok()) << r.message();
    d.cos = (*r)[0].to_f32_vector();
    d.sin = (*r)[1].to_f32_vector();
    if (seen.insert(name).second) specs.push_back(d.spec);
    data.push_back(std::move(d));
  }
  auto lib = compile_and_open(specs, CodegenOptions{});
  ASSERT_TRUE(lib.ok()) << lib.message();
  for (const auto& d : data)
    for (int threads = 1; threads <= 3; ++threads) {
      KernelFn fn = (*lib)->find(d.spec.name);
      ASSERT_NE(fn, nullptr);
      const size_t n = static_cast<size_t>(d.c.T * d.c.H);
      GuardedBytes cs(n * 4), sn(n * 4);
      const float nan = std::nanf("");
      for (size_t i = 0; i < n; ++i) {
        std::memcpy(cs.data() + 4 * i, &nan, 4);
        std::memcpy(sn.data() + 4 * i, &nan, 4);
      }
      int64_t pos = d.c.pos;
      auto inv = guarded_copy(d.inv.data(), d.inv.size() * 4);
      const void* args[kRopeTableArgCount] = {cs.data(), sn.data(), &pos, inv->data()};
      const int64_t dims[kDimWords] = {d.c.T, 0};
      run_threads(fn, args, dims, threads);
      EXPECT_TRUE(cs.intact() && sn.intact()) << d.spec.name;
      EXPECT_EQ(std::memcmp(cs.data(), d.cos.data(), n * 4), 0) << d.spec.name << " T=" << d.c.T << " pos=" << d.c.pos;
      EXPECT_EQ(std::memcmp(sn.data(), d.sin.data(), n * 4), 0) << d.spec.name << " T=" << d.c.T << " pos=" << d.c.pos;
    }
}

}  // namespace
}  // namespace ingot::cgtest
