// Generated kernels against the reference evaluator (see harness.h): every weight type, both
// activation modes, every epilogue, odd sizes, 1..3 threads, sentinels around every output.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <set>

#include "codegen/kernels.h"
#include "ir/quant.h"
#include "runtime/cpu_features.h"
#include "tests/codegen/harness.h"

namespace ingot::cgtest {
namespace {

// Error bounds (normalized MSE against the double-precision reference).
// - Float activations (f32, f16, q8_0/q4_0 dequantized in registers): the kernels dequantize
//   exactly as the reference does ((q - 8) * d rounded once), so the only difference is f32 FMA
//   accumulation versus double sums: a relative error of about eps_f32 * sqrt(K) per output, an
//   NMSE near 1e-13 for these K. 1e-9 leaves room yet catches any single wrong weight or
//   activation (one of K terms wrong gives about 1 / (K * N) >= 1e-5).
// - 8-bit activations: the quantized activations and the integer block dots are bit-identical
//   to the reference's (same rounding, same f16 scales), so again only f32 versus double
//   accumulation remains: 1e-9. One activation off by one quantum would give about
//   (1/127)^2 / K ~ 1e-6, well above the bound.
// - Epilogues: bias, residual, SwiGLU (with float_spec::expf) and RoPE compute the reference's f32
//   operations in its order.
// - Exact modes: where the reference specifies the f32 order (ir/float_spec.h and q8_row_dot),
//   the kernels must match it bit for bit, NMSE 0: 8-bit activations with q8_0/q4_0/q5_0/q4_1/
//   q5_1/iq4_nl/q2_k..q6_k/iq4_xs weights (block values added in block order) and f16 and bf16
//   weights in the q8 mode (one FMA chain in k order).
//   With 8-bit activations a last-bit difference can cross a quantization step downstream, so
//   anything but exact would let generated text drift from the reference.
constexpr double kMatMulBound = 1e-9;
// q5_0, q4_1, q5_1, iq4_nl: 32-element blocks like q8_0/q4_0 (matmul/int_dots_b32.cpp).
bool is_block32(ElementType t) {
  return t == ElementType::q5_0 || t == ElementType::q4_1 || t == ElementType::q5_1 || t == ElementType::iq4_nl;
}
double matmul_bound(const MatMulCase& c) {
  const bool exact = c.act_q8 && (c.weight == ElementType::q8_0 || c.weight == ElementType::q4_0 || c.weight == ElementType::q4_k ||
                                  c.weight == ElementType::q6_k || c.weight == ElementType::f16 || c.weight == ElementType::bf16 ||
                                  is_block32(c.weight) || c.weight == ElementType::q5_k || c.weight == ElementType::q3_k ||
                                  c.weight == ElementType::q2_k || c.weight == ElementType::iq4_xs);
  return exact ? 0.0 : kMatMulBound;
}
// RMSNorm follows llama.cpp's order (f32 squares summed in double, f32 mean and scale): the
// kernel's reassociated double sum rounds to the same f32 mean, so the rows are bitwise equal.
constexpr double kNormBound = 0.0;

constexpr int kTokens[] = {1, 3, 17, 33};

struct Shape2 {
  int64_t N, K;
};

// Kernel configurations for one weight type: two shapes with every token count, then each
// epilogue. N is never a multiple of 8 in the first shape, nor the SwiGLU output width; float
// weights also get a K that is no multiple of the unroll factor.
std::vector<MatMulCase> cases_for(ElementType t) {
  const bool kq = t == ElementType::q4_k || t == ElementType::q6_k;
  const bool q = t == ElementType::q8_0 || t == ElementType::q4_0 || is_block32(t);
  const Shape2 shapes[] = {{33, kq ? 256 : q ? 64 : 37}, {72, kq ? 512 : q ? 96 : 64}};
  std::vector<MatMulCase> out;
  for (bool aq : {false, true}) {
    MatMulCase base;
    base.weight = t;
    base.act_q8 = aq;
    for (auto s : shapes) {
      MatMulCase c = base;
      c.N = s.N;
      c.K = s.K;
      out.push_back(c);
    }
    const int64_t K = kq ? 256 : q ? 64 : 40;
    auto with = [&](auto f) {
      MatMulCase c = base;
      c.K = K;
      f(c);
      out.push_back(c);
    };
    with([](MatMulCase& c) { c.N = 2 * 24; c.swiglu = true; c.bias = true; c.residual = true; });
    // Several token blocks (8 tokens, rounded up to whole tiles), each ending in a partial tile.
    with([](MatMulCase& c) { c.N = 20; c.block_tokens = 8; c.residual = true; });
    with([](MatMulCase& c) { c.N = 3 * 16 + 5; c.bias = true; c.rope = RopeLayout::interleaved; c.rope_heads = 2; c.head_dim = 16; });
    // The epilogue code does not depend on the weight type: the k-quants (whose kernels are the
    // largest to compile) check two epilogues only.
    if (kq) continue;
    with([](MatMulCase& c) { c.N = 41; c.bias = true; });
    with([](MatMulCase& c) { c.N = 35; c.residual = true; });
    with([](MatMulCase& c) { c.N = 2 * 21; c.swiglu = true; });
    with([](MatMulCase& c) { c.N = 3 * 16; c.rope = RopeLayout::rotate_half; c.rope_heads = 3; c.head_dim = 16; });
    with([](MatMulCase& c) { c.N = 60; c.rope = RopeLayout::rotate_half; c.rope_heads = 2; c.head_dim = 24; });
  }
  return out;
}

// Compiles every distinct kernel of `cases` into one shared object and checks each case at every
// token count with 1, 2 and 3 threads (8: the 8-token tile of q8_0/q4_0 at 512 bits alone, the
// batched step of 8 streams; 33 = 12 + 12 + 8 + 1).
// Every case at every token count (255 tokens: the many-block cases only), its data and the
// distinct kernel specs to compile, with seeds counted up from `seed`.
struct MatMulCaseSet {
  std::vector<KernelSpec> specs;
  std::vector<std::unique_ptr<CaseData>> data;
  std::vector<MatMulCase> cases;  // data[i]'s case
};
void make_case_set(const std::vector<MatMulCase>& cases, const std::vector<int>& tokens, uint64_t seed, MatMulCaseSet* set) {
  std::set<std::string> seen;
  for (const MatMulCase& base : cases)
    for (int m : tokens) {
      if (m == 255 && base.block_tokens == 0) continue;
      MatMulCase c = base;
      c.M = m;
      auto d = make_case(c, seed++);
      ASSERT_TRUE(d.ok()) << c.name() << ": " << d.message();
      if (seen.insert((*d)->spec.name).second) set->specs.push_back((*d)->spec);
      set->data.push_back(std::move(*d));
      set->cases.push_back(c);
    }
}

void check_matmul_cases(const std::vector<MatMulCase>& cases, const CodegenOptions& options = CodegenOptions{},
                        const std::vector<int>& tokens = {1, 3, 8, 17, 33, 255}) {
  MatMulCaseSet set;
  ASSERT_NO_FATAL_FAILURE(make_case_set(cases, tokens, 1, &set));
  const std::vector<KernelSpec>& specs = set.specs;
  const std::vector<std::unique_ptr<CaseData>>& data = set.data;
  const std::vector<MatMulCase>& cases_run = set.cases;
  auto lib = compile_and_open(specs, options);
  ASSERT_TRUE(lib.ok()) << lib.message();
  for (size_t i = 0; i < data.size(); ++i) {
    KernelFn fn = (*lib)->find(data[i]->spec.name);
    ASSERT_NE(fn, nullptr) << data[i]->spec.name;
    // With the runtime's work counter (chunks of panels taken in turn) on 1-3 threads, and split
    // by thread index (a caller without a counter) on 2-3.
    for (int threads = 1; threads <= 3; ++threads)
      for (bool counter : {true, false}) {
        if (!counter && threads == 1) continue;
        RunResult r = run_case(fn, *data[i], threads, counter);
        EXPECT_TRUE(r.sentinels_ok && r.nmse <= matmul_bound(cases_run[i]))
            << cases_run[i].name() << " threads=" << threads << (counter ? " (work counter)" : " (by thread index)") << ": nmse " << r.nmse
            << " (bound " << matmul_bound(cases_run[i]) << ") " << r.problem;
      }
  }
}

// Under the sanitizers one weight type of each inner loop (float, 8-bit block dots, k-quant
// super-blocks, 8-bit-only k-quants) runs every epilogue here: the epilogue code does not depend
// on the type, and every type's own code runs there too, in CodegenTiers and CodegenQ8OnlyTiers
// on the host's best tier. The kernels themselves are not instrumented (CI's time: 10-25 s a type).
#ifdef INGOT_SANITIZER_BUILD
#define SKIP_UNDER_SANITIZERS() GTEST_SKIP() << "sanitizer build: another type of the same inner loop runs the epilogues here"
#else
#define SKIP_UNDER_SANITIZERS() (void)0
#endif

TEST(CodegenMatMul, F32) { check_matmul_cases(cases_for(ElementType::f32)); }
TEST(CodegenMatMul, F16) { SKIP_UNDER_SANITIZERS(); check_matmul_cases(cases_for(ElementType::f16)); }
TEST(CodegenMatMul, Q8_0) { check_matmul_cases(cases_for(ElementType::q8_0)); }
TEST(CodegenMatMul, Q4_0) { SKIP_UNDER_SANITIZERS(); check_matmul_cases(cases_for(ElementType::q4_0)); }
TEST(CodegenMatMul, Q4_K) { check_matmul_cases(cases_for(ElementType::q4_k)); }
TEST(CodegenMatMul, Q6_K) { SKIP_UNDER_SANITIZERS(); check_matmul_cases(cases_for(ElementType::q6_k)); }
TEST(CodegenMatMul, BF16) { SKIP_UNDER_SANITIZERS(); check_matmul_cases(cases_for(ElementType::bf16)); }
TEST(CodegenMatMul, Q5_0) { SKIP_UNDER_SANITIZERS(); check_matmul_cases(cases_for(ElementType::q5_0)); }
TEST(CodegenMatMul, Q4_1) { SKIP_UNDER_SANITIZERS(); check_matmul_cases(cases_for(ElementType::q4_1)); }
TEST(CodegenMatMul, Q5_1) { SKIP_UNDER_SANITIZERS(); check_matmul_cases(cases_for(ElementType::q5_1)); }
TEST(CodegenMatMul, IQ4_NL) { SKIP_UNDER_SANITIZERS(); check_matmul_cases(cases_for(ElementType::iq4_nl)); }

// Weight types with kernels for 8-bit activations only (exact, NMSE 0 against q8_row_dot).
constexpr ElementType kQ8OnlyTypes[] = {ElementType::q5_k, ElementType::q3_k, ElementType::q2_k, ElementType::iq4_xs};
// 40 tokens: whole tiles of 3 and 6 plus a remainder, and on the amx tier (where these types stay
// on the register tiles) more than two 16-token steps.
const std::vector<int> kQ8OnlyTokens = {1, 3, 17, 40, 255};

// Odd N (never a multiple of 8, nor of the 16-row panel), one to three super-blocks, and the
// epilogues that read the accumulators differently (SwiGLU pairs, token blocks, RoPE heads).
std::vector<MatMulCase> q8_only_cases(ElementType t) {
  std::vector<MatMulCase> out;
  MatMulCase base;
  base.weight = t;
  base.act_q8 = true;
  for (Shape2 s : {Shape2{33, 256}, Shape2{71, 768}, Shape2{5, 512}}) {
    MatMulCase c = base;
    c.N = s.N;
    c.K = s.K;
    out.push_back(c);
  }
  auto with = [&](auto f) {
    MatMulCase c = base;
    c.K = 256;
    f(c);
    out.push_back(c);
  };
  with([](MatMulCase& c) { c.N = 2 * 24; c.swiglu = true; c.bias = true; c.residual = true; });
  with([](MatMulCase& c) { c.N = 20; c.block_tokens = 8; c.residual = true; });
  with([](MatMulCase& c) { c.N = 3 * 16 + 5; c.bias = true; c.rope = RopeLayout::interleaved; c.rope_heads = 2; c.head_dim = 16; });
  return out;
}

TEST(CodegenMatMul, Q5_K) { check_matmul_cases(q8_only_cases(ElementType::q5_k), CodegenOptions{}, kQ8OnlyTokens); }
TEST(CodegenMatMul, Q3_K) { SKIP_UNDER_SANITIZERS(); check_matmul_cases(q8_only_cases(ElementType::q3_k), CodegenOptions{}, kQ8OnlyTokens); }
TEST(CodegenMatMul, Q2_K) { SKIP_UNDER_SANITIZERS(); check_matmul_cases(q8_only_cases(ElementType::q2_k), CodegenOptions{}, kQ8OnlyTokens); }
TEST(CodegenMatMul, IQ4_XS) { SKIP_UNDER_SANITIZERS(); check_matmul_cases(q8_only_cases(ElementType::iq4_xs), CodegenOptions{}, kQ8OnlyTokens); }

// An 8-bit-activation case of weight type t: odd N (37, never whole panels), several blocks or
// super-blocks, a residual epilogue.
MatMulCase odd_q8_case(ElementType t) {
  MatMulCase c;
  c.weight = t;
  c.act_q8 = true;
  c.N = 37;
  c.K = type_info(t).block_elems == kQK_K ? 512 : 96;
  c.residual = true;
  return c;
}

// The VNNI branches of every 8-bit inner loop (i32 sums straight from each 4-byte group, scales
// applied by a multiply), which only the avx512 and amx tiers take, on any host: x86-64-v3
// kernels with those branches and the VNNI instruction emulated (CodegenOptions::emulate_vnni).
// A host with AVX-512 VNNI also runs them natively (CodegenTiers, CodegenQ8OnlyTiers).
TEST(CodegenMatMul, VnniBranchesMatchTheReferenceEmulated) {
#ifdef INGOT_SANITIZER_BUILD
  GTEST_SKIP() << "release build only (CI time; tests/CMakeLists.txt)";
#endif
  if (std::string lacks = host_lacks_tier("x86-64-v3"); !lacks.empty()) GTEST_SKIP() << "this host cannot run x86-64-v3: " << lacks;
  std::vector<MatMulCase> cases;
  for (ElementType t : {ElementType::q8_0, ElementType::q4_0, ElementType::q4_k, ElementType::q6_k, ElementType::q5_k,
                        ElementType::q3_k, ElementType::q2_k, ElementType::iq4_xs, ElementType::q5_0, ElementType::q4_1,
                        ElementType::q5_1, ElementType::iq4_nl})
    cases.push_back(odd_q8_case(t));
  CodegenOptions options;
  options.cpu = "x86-64-v3";
  options.emulate_vnni = true;
  check_matmul_cases(cases, options, {1, 3, 17, 40});
}

// The unoptimized LLVM IR of case c's kernel for tier `cpu` (compiled only: any host can check it).
std::string case_llvm_ir(const MatMulCase& c, const std::string& cpu) {
  auto d = make_case(c, 1);
  EXPECT_TRUE(d.ok()) << d.message();
  if (!d.ok()) return "";
  CodegenOptions options;
  options.cpu = cpu;
  auto ir = kernels_llvm_ir({(*d)->spec}, options, false);
  EXPECT_TRUE(ir.ok()) << ir.message();
  return ir.ok() ? *ir : "";
}

// The avx512 tier's q8_0, q4_0, q4_k and q6_k dots are 512-bit (a whole 16-row panel per
// vpdpbusd); the other 8-bit types keep the 256-bit form. Compiled only: any host checks this.
TEST(CodegenMatMul, WideVnniDotsOnTheAvx512Tier) {
  for (ElementType t : {ElementType::q8_0, ElementType::q4_0, ElementType::q4_k, ElementType::q6_k, ElementType::q5_k,
                        ElementType::q5_0}) {
    MatMulCase c = odd_q8_case(t);
    c.M = 6;
    const std::string ir = case_llvm_ir(c, "avx512");
    ASSERT_FALSE(ir.empty()) << c.name();
    const bool wide = t == ElementType::q8_0 || t == ElementType::q4_0 || t == ElementType::q4_k || t == ElementType::q6_k;
    EXPECT_EQ(ir.find("vpdpbusd.512") != std::string::npos, wide) << c.name();
    EXPECT_EQ(ir.find("vpdpbusd.256") != std::string::npos, !wide) << c.name();
  }
}

// Tiles of several tokens prefetch the next panel's lines into L2 (prefetcht1: locality 2), one
// token tiles 1 KiB ahead into L1 (locality 3), in every inner loop of the 8-bit mode and the
// float weights (MatMulEmitter::prefetch_weights_part). Compiled only: any host checks this.
TEST(CodegenMatMul, MultiTokenTilesPrefetchTheNextPanel) {
  for (const char* cpu : {"x86-64-v3", "avx512"})
    for (ElementType t : {ElementType::f16, ElementType::q8_0, ElementType::q4_0, ElementType::q5_0, ElementType::iq4_nl,
                          ElementType::q2_k, ElementType::q3_k, ElementType::q4_k, ElementType::q5_k, ElementType::q6_k,
                          ElementType::iq4_xs}) {
      MatMulCase c = odd_q8_case(t);
      c.M = 8;
      const std::string ir = case_llvm_ir(c, cpu);
      ASSERT_FALSE(ir.empty()) << c.name();
      EXPECT_NE(ir.find("i32 0, i32 2, i32 1)"), std::string::npos) << cpu << " " << c.name() << ": no next-panel prefetch";
      EXPECT_NE(ir.find("i32 0, i32 3, i32 1)"), std::string::npos) << cpu << " " << c.name() << ": no decode prefetch";
    }
}

// A step of 2 to 8 tokens with q8_0/q4_0 weights at 512 bits runs panels in pairs, one tile of all
// the tokens (MatMulEmitter::emit_few_token_pairs); an odd panel goes through the usual tiles.
// 3 and 8 tokens run in CodegenMatMul.Q8_0/Q4_0; here the other counts, on 1, 3 and 5 panels and
// each epilogue, with 1 to 3 threads (a thread with one panel has no pair). On the amx tier
// (emulated here when the host has none) the 2 and 3 token steps pair, the others take its tile
// step.
TEST(CodegenMatMul, FewTokenStepsPairPanels) {
#ifdef INGOT_SANITIZER_BUILD
  // One weight type: the pairing and its epilogues do not depend on it (CI's time, 15 s a type).
  const std::vector<ElementType> types = {ElementType::q4_0};
#else
  const std::vector<ElementType> types = {ElementType::q8_0, ElementType::q4_0};
#endif
  for (ElementType t : types) {
    std::vector<MatMulCase> cases;
    MatMulCase base;
    base.weight = t;
    base.act_q8 = true;
    base.K = 96;
    for (int64_t n : {int64_t{9}, int64_t{33}, int64_t{72}}) {
      MatMulCase c = base;
      c.N = n;
      cases.push_back(c);
    }
    auto with = [&](auto f) {
      MatMulCase c = base;
      f(c);
      cases.push_back(c);
    };
    with([](MatMulCase& c) { c.N = 2 * 40; c.swiglu = true; c.bias = true; c.residual = true; });
    with([](MatMulCase& c) { c.N = 5 * 16 + 5; c.bias = true; c.rope = RopeLayout::interleaved; c.rope_heads = 5; c.head_dim = 16; });
    with([](MatMulCase& c) { c.N = 60; c.rope = RopeLayout::rotate_half; c.rope_heads = 2; c.head_dim = 24; });
    check_matmul_cases(cases, CodegenOptions{}, {2, 4, 5, 6, 7});
    CodegenOptions amx;
    amx.emulate_amx = true;
    check_matmul_cases(cases, amx, {2, 3, 4});
  }
  // The avx512 tier has the paired step for 2-8 tokens, the amx tier for 2-3 (from 4 tokens its
  // tile step), x86-64-v3 (8-lane dots) none.
  MatMulCase c = odd_q8_case(ElementType::q4_0);
  c.M = 4;
  const std::string avx512 = case_llvm_ir(c, "avx512"), amx = case_llvm_ir(c, "amx");
  EXPECT_NE(avx512.find("pairs8"), std::string::npos);
  EXPECT_NE(amx.find("pairs3"), std::string::npos);
  EXPECT_EQ(amx.find("pairs4"), std::string::npos);
  EXPECT_EQ(case_llvm_ir(c, "x86-64-v3").find("panel.pairs"), std::string::npos);
}

// With the work counter the last quarter of the panels goes to whichever thread asks first: thread
// 0 of 3 running alone (the others not started) writes its own part and all of that quarter, so
// it leaves fewer outputs unwritten than split by thread index (two thirds of the panels), and
// threads that start later still complete the output. Every matmul path: the one-token pairs, the
// few-token pairs, the tiles of a prefill, float and 8-bit dots, fused RoPE (chunks of whole
// heads).
TEST(CodegenMatMul, WorkCounterLetsAnyThreadTakeTheRest) {
  std::vector<MatMulCase> cases;
  for (ElementType t : {ElementType::q4_0, ElementType::q8_0, ElementType::f16, ElementType::q4_k}) {
    MatMulCase c;
    c.weight = t;
    c.act_q8 = t != ElementType::f16;
    c.K = t == ElementType::q4_k ? 256 : 96;
    c.N = 16 * 23 + 5;
    cases.push_back(c);
  }
  MatMulCase rope = cases[0];
  rope.N = 9 * 16;
  rope.rope = RopeLayout::rotate_half;
  rope.rope_heads = 9;
  rope.head_dim = 16;
  cases.push_back(rope);
  MatMulCaseSet set;
  ASSERT_NO_FATAL_FAILURE(make_case_set(cases, {1, 5, 8, 21}, 7, &set));
  const std::vector<KernelSpec>& specs = set.specs;
  const std::vector<std::unique_ptr<CaseData>>& data = set.data;
  const std::vector<MatMulCase>& run = set.cases;
  auto lib = compile_and_open(specs, CodegenOptions{});
  ASSERT_TRUE(lib.ok()) << lib.message();
  for (size_t i = 0; i < data.size(); ++i) {
    KernelFn fn = (*lib)->find(data[i]->spec.name);
    ASSERT_NE(fn, nullptr);
    for (int t : {0, 2}) {
      RunResult alone = run_case(fn, *data[i], 3, true, t);
      RunResult by_index = run_case(fn, *data[i], 3, false, t);
      EXPECT_TRUE(alone.sentinels_ok && by_index.sentinels_ok) << run[i].name();
      EXPECT_GT(by_index.unwritten, alone.unwritten) << run[i].name() << ": thread " << t << " alone took no chunk of the last quarter";
      EXPECT_GT(alone.unwritten, 0) << run[i].name() << ": thread " << t << " alone wrote the other threads' own parts";
    }
    RunResult all = run_case(fn, *data[i], 3, true);
    EXPECT_TRUE(all.sentinels_ok && all.nmse <= matmul_bound(run[i])) << run[i].name() << ": " << all.nmse << " " << all.problem;
  }
}

// Without 8-bit activations these types have no kernel: the layout says so (the compiler then
// reports the node as having no kernel).
TEST(CodegenMatMul, Q8OnlyTypesRefuseFloatActivations) {
  for (ElementType t : kQ8OnlyTypes) {
    MatMulSpec s;
    s.weight = t;
    s.N = 16;
    s.K = 256;
    auto refused = matmul_layout(s);
    ASSERT_FALSE(refused.ok()) << type_name(t);
    EXPECT_NE(refused.message().find("8-bit activations only"), std::string::npos) << refused.message();
    s.act_q8 = true;
    EXPECT_TRUE(matmul_layout(s).ok()) << type_name(t);
  }
}

// Every CPU tier the host runs, for the types above: two shapes (one with several super-blocks
// and token blocks that end in partial tiles), bitwise equal to the reference.
class CodegenQ8OnlyTiers : public ::testing::TestWithParam<std::string> {};

TEST_P(CodegenQ8OnlyTiers, MatchTheReferenceBitwise) {
  ASSERT_NE(find_cpu_tier(GetParam()), nullptr);
  if (std::string skip = tier_skip_reason(GetParam()); !skip.empty()) GTEST_SKIP() << skip;
  std::vector<MatMulCase> cases;
  for (ElementType t : kQ8OnlyTypes) {
    MatMulCase c;
    c.weight = t;
    c.act_q8 = true;
    c.N = 33;
    c.K = 256;
    cases.push_back(c);
    c.N = 37;
    c.K = 512;
    c.block_tokens = 40;
    c.residual = true;
    cases.push_back(c);
  }
  CodegenOptions options;
  options.cpu = GetParam();
  check_matmul_cases(cases, options, kQ8OnlyTokens);
}

INSTANTIATE_TEST_SUITE_P(, CodegenQ8OnlyTiers, ::testing::ValuesIn(tier_names()),
                         [](const ::testing::TestParamInfo<std::string>& p) { return tier_test_name(p.param); });

// Every CPU tier the host runs: each weight type in both activation modes, with and without an
// epilogue, and RMSNorm, against the reference (bitwise where it is exact). Without AVX2
// (x86-64-v2) the 8-bit kernels use SSSE3/SSE2 on vector halves and FMA in software; with AVX-512
// (x86-64-v4) 16-lane float tiles, with VNNI vpdpbusd, with AMX tile steps: same results.
class CodegenTiers : public ::testing::TestWithParam<std::string> {};

TEST_P(CodegenTiers, EveryKernelFamilyMatchesTheReference) {
  ASSERT_NE(find_cpu_tier(GetParam()), nullptr);
  if (std::string skip = tier_skip_reason(GetParam()); !skip.empty()) GTEST_SKIP() << skip;
  std::vector<MatMulCase> cases;
  for (ElementType t : {ElementType::f32, ElementType::f16, ElementType::q8_0, ElementType::q4_0, ElementType::q4_k,
                        ElementType::q6_k, ElementType::bf16, ElementType::q5_0, ElementType::q4_1, ElementType::q5_1,
                        ElementType::iq4_nl})
    for (bool aq : {false, true}) {
      if (t == ElementType::f32 && aq) continue;
      const bool kq = t == ElementType::q4_k || t == ElementType::q6_k;
      MatMulCase c;
      c.weight = t;
      c.act_q8 = aq;
      c.N = 33;
      c.K = kq ? 256 : t == ElementType::f32 ? 37 : 64;
      cases.push_back(c);
      if (t != ElementType::f32 && t != ElementType::f16 && t != ElementType::bf16 && aq) {
        // The amx tier's 16-token steps: an odd number of blocks (its block pairs plus one) or two
        // super-blocks, and token blocks of 42 that end in steps of 16 and register tiles (255 tokens).
        MatMulCase odd = c;
        odd.N = 37;
        odd.K = kq ? 512 : 96;
        odd.block_tokens = 40;
        odd.residual = true;
        cases.push_back(odd);
      }
      // The epilogues do not depend on the weight type (and k-quant kernels are slow to compile).
      if (t != ElementType::q4_0) continue;
      c.N = 2 * 21;
      c.swiglu = true;
      c.bias = true;
      cases.push_back(c);
    }
  CodegenOptions options;
  options.cpu = GetParam();
  check_matmul_cases(cases, options);

  std::vector<std::unique_ptr<CaseData>> norms;
  std::vector<KernelSpec> specs;
  for (int64_t D : {7, 333}) {
    RMSNormCase c;
    c.M = 17;
    c.D = D;
    auto d = make_case(c, static_cast<uint64_t>(D));
    ASSERT_TRUE(d.ok()) << d.message();
    specs.push_back((*d)->spec);
    norms.push_back(std::move(*d));
  }
  auto lib = compile_and_open(specs, options);
  ASSERT_TRUE(lib.ok()) << lib.message();
  for (auto& d : norms) {
    RunResult r = run_case((*lib)->find(d->spec.name), *d, 2);
    EXPECT_TRUE(r.sentinels_ok && r.nmse <= kNormBound) << d->spec.name << ": nmse " << r.nmse << " " << r.problem;
  }
}

INSTANTIATE_TEST_SUITE_P(, CodegenTiers, ::testing::ValuesIn(tier_names()),
                         [](const ::testing::TestParamInfo<std::string>& p) { return tier_test_name(p.param); });

TEST(CodegenRMSNorm, OddSizesAndThreads) {
  std::vector<std::unique_ptr<CaseData>> data;
  std::vector<KernelSpec> specs;
  std::set<std::string> seen;
  for (int64_t D : {1, 7, 64, 333})
    for (int m : kTokens) {
      RMSNormCase c;
      c.M = m;
      c.D = D;
      auto d = make_case(c, static_cast<uint64_t>(D * 100 + m));
      ASSERT_TRUE(d.ok()) << d.message();
      if (seen.insert((*d)->spec.name).second) specs.push_back((*d)->spec);
      data.push_back(std::move(*d));
    }
  auto lib = compile_and_open(specs, CodegenOptions{});
  ASSERT_TRUE(lib.ok()) << lib.message();
  for (auto& d : data)
    for (int threads = 1; threads <= 3; ++threads) {
      RunResult r = run_case((*lib)->find(d->spec.name), *d, threads);
      EXPECT_TRUE(r.sentinels_ok && r.nmse <= kNormBound)
          << d->spec.name << " rows=" << d->rows << " threads=" << threads << ": nmse " << r.nmse << " " << r.problem;
    }
}

// The harness must be able to fail: a kernel generated with an off-by-one in its tail store
// (one lane past the last column of the partial panel) is caught, for every weight type.
TEST(CodegenHarness, CatchesAnOffByOneInTheTail) {
  CodegenOptions broken;
  broken.debug_tail_overrun = true;
  std::vector<std::unique_ptr<CaseData>> data;
  std::vector<KernelSpec> specs;
  for (ElementType t : {ElementType::f32, ElementType::q4_0})
    for (bool aq : {false, true}) {
      MatMulCase c;
      c.weight = t;
      c.act_q8 = aq;
      c.M = 3;
      c.N = 33;
      c.K = 64;
      auto d = make_case(c, 7);
      ASSERT_TRUE(d.ok()) << d.message();
      specs.push_back((*d)->spec);
      data.push_back(std::move(*d));
    }
  auto good = compile_and_open(specs, CodegenOptions{});
  auto bad = compile_and_open(specs, broken);
  ASSERT_TRUE(good.ok() && bad.ok());
  for (auto& d : data) {
    RunResult ok = run_case((*good)->find(d->spec.name), *d, 2);
    EXPECT_TRUE(ok.sentinels_ok && ok.nmse <= kMatMulBound) << d->spec.name << ": " << ok.problem;
    RunResult r = run_case((*bad)->find(d->spec.name), *d, 2);
    EXPECT_FALSE(r.sentinels_ok && r.nmse <= kMatMulBound) << d->spec.name << ": the broken kernel passed";
    EXPECT_FALSE(r.problem.empty());
  }
}

TEST(CodegenLayout, PacksPanelsAndPadsTheTail) {
  // f32, 9 rows x 3: two panels of 16 rows, [k][lane]; rows 9..31 are zero.
  MatMulSpec s;
  s.N = 9;
  s.K = 3;
  std::vector<float> w(27);
  for (int i = 0; i < 27; ++i) w[static_cast<size_t>(i)] = static_cast<float>(i + 1);
  auto p = pack_matmul_weights(s, w.data(), w.size() * 4);
  ASSERT_TRUE(p.ok()) << p.message();
  ASSERT_EQ(p->size(), 16u * 3 * 4);
  auto at = [&](int k, int lane) {
    float f;
    std::memcpy(&f, p->data() + (k * 16 + lane) * 4, 4);
    return f;
  };
  EXPECT_EQ(at(0, 0), 1.0f);
  EXPECT_EQ(at(2, 0), 3.0f);
  EXPECT_EQ(at(1, 8), w[8 * 3 + 1]);
  EXPECT_EQ(at(1, 9), 0.0f);

  // q4_0 with int8 dots: panels of 16 rows (the amx tier's B tiles) on every tier; per block 16
  // f16 scales, then [group][lane][4 bytes] = qs[4g + i]; rows 8..15 pad (scale 0, quants 8).
  MatMulSpec q;
  q.weight = ElementType::q4_0;
  q.act_q8 = true;
  q.N = 8;
  q.K = 32;
  std::vector<BlockQ4_0> blocks(8);
  for (int r = 0; r < 8; ++r) {
    blocks[static_cast<size_t>(r)].d = static_cast<uint16_t>(0x3C00 + r);
    for (int j = 0; j < 16; ++j) blocks[static_cast<size_t>(r)].qs[j] = static_cast<uint8_t>(r * 16 + j);
  }
  auto pq = pack_matmul_weights(q, blocks.data(), blocks.size() * sizeof(BlockQ4_0));
  ASSERT_TRUE(pq.ok()) << pq.message();
  ASSERT_EQ(pq->size(), 16u * 18);
  uint16_t d3, d12;
  std::memcpy(&d3, pq->data() + 2 * 3, 2);
  std::memcpy(&d12, pq->data() + 2 * 12, 2);
  EXPECT_EQ(d3, 0x3C03);
  EXPECT_EQ(d12, 0);
  // group 2, lane 5, byte 1: row 5's qs[9]; lane 12 is padding.
  EXPECT_EQ((*pq)[32 + (2 * 16 + 5) * 4 + 1], 5 * 16 + 9);
  EXPECT_EQ((*pq)[32 + (2 * 16 + 12) * 4 + 1], 0x88);
}

TEST(CodegenCompile, ReportsUnsupportedInput) {
  MatMulSpec s;
  s.weight = ElementType::q5_k;
  s.N = 8;
  s.K = 256;
  EXPECT_FALSE(matmul_layout(s).ok());
  s.weight = ElementType::q4_k;
  s.act_q8 = true;
  EXPECT_TRUE(matmul_layout(s).ok());
  s.K = 128;  // not whole super-blocks
  EXPECT_FALSE(matmul_layout(s).ok());
  s.act_q8 = false;
  EXPECT_FALSE(matmul_layout(s).ok());
  KernelSpec k;
  k.name = "k";
  k.kind = "matmul";
  k.matmul.N = 8;
  k.matmul.K = 8;
  CodegenOptions o;
  o.cpu = "znver3";  // an LLVM CPU name, not a tier
  auto refused = compile_and_open({k}, o);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.message().find("unknown target 'znver3'"), std::string::npos) << refused.message();
}


// The amx tier's tile code is checked without executing it (so on hosts without AMX too): only
// amx kernels of 8-bit-activation matmuls (q8_0, q4_0, q4_k, q6_k weights) configure, use and
// release tiles; other tiers and float modes have no tile instruction.
TEST(CodegenAmx, TileCodeOnlyWhereTheTierAndWeightsCallForIt) {
  struct Want {
    ElementType weight;
    bool act_q8;
    const char* tier;
    bool tiles;
  };
  for (const Want& w : {Want{ElementType::q8_0, true, "amx", true}, Want{ElementType::q4_0, true, "amx", true},
                        Want{ElementType::q4_k, true, "amx", true}, Want{ElementType::q8_0, true, "avx512", false},
                        Want{ElementType::q4_k, true, "x86-64-v3", false}, Want{ElementType::q6_k, true, "amx", true},
                        Want{ElementType::f16, false, "amx", false}, Want{ElementType::q8_0, false, "amx", false},
                        Want{ElementType::q5_0, true, "amx", false}, Want{ElementType::q4_1, true, "amx", false},
                        Want{ElementType::q5_1, true, "amx", false}, Want{ElementType::iq4_nl, true, "amx", false}}) {
    MatMulCase c;
    c.weight = w.weight;
    c.act_q8 = w.act_q8;
    c.N = 32;
    c.K = w.weight == ElementType::q4_k || w.weight == ElementType::q6_k ? 256 : 64;
    c.M = 16;
    auto d = make_case(c, 1);
    ASSERT_TRUE(d.ok()) << d.message();
    CodegenOptions options;
    options.cpu = w.tier;
    auto ir = kernels_llvm_ir({(*d)->spec}, options, false);
    ASSERT_TRUE(ir.ok()) << ir.message();
    const std::string what = c.name() + " on " + w.tier;
    for (const char* intrinsic : {"@llvm.x86.ldtilecfg(", "@llvm.x86.tdpbssd(", "@llvm.x86.tilestored64(", "@llvm.x86.tilerelease("})
      EXPECT_EQ(ir->find(intrinsic) != std::string::npos, w.tiles) << what << ": " << intrinsic;
  }
}

// The amx tier's tile steps on any host (CodegenOptions::emulate_amx: the tile unit's arithmetic in
// plain IR, with the VNNI branches of the register tiles emulated too): q8_0, q4_0 (per block),
// q4_k, q6_k (per super-block, q8_K activations), token counts that give whole 16-token steps,
// partial steps (fewer rows), steps plus register tiles, and several token blocks; bitwise equal
// to the reference. A host with AMX runs the same steps natively (CodegenTiers/amx).
TEST(CodegenAmx, TileStepsMatchTheReferenceEmulated) {
#ifdef INGOT_SANITIZER_BUILD
  GTEST_SKIP() << "release build only (CI time; tests/CMakeLists.txt)";
#endif
  if (std::string lacks = host_lacks_tier("x86-64-v3"); !lacks.empty()) GTEST_SKIP() << "this host cannot run x86-64-v3: " << lacks;
  std::vector<MatMulCase> cases;
  for (ElementType t : {ElementType::q8_0, ElementType::q4_0, ElementType::q4_k, ElementType::q6_k}) {
    MatMulCase c = odd_q8_case(t);
    cases.push_back(c);
    c.N = 16;
    c.K = type_info(t).block_elems == kQK_K ? 256 : 64;
    c.residual = false;
    c.block_tokens = 40;
    cases.push_back(c);
  }
  CodegenOptions options;
  options.cpu = "x86-64-v3";
  options.emulate_vnni = true;
  options.emulate_amx = true;
  // 4, 8, 15: one partial step (tiles of fewer rows); 21 = 16 + 5: a whole step and a partial one;
  // 3 and 35 = 32 + 3: a rest below kAmxMinPartialTokens on the register tiles.
  check_matmul_cases(cases, options, {3, 4, 8, 15, 16, 17, 21, 35, 40, 100});
}

// q2_k, q3_k, q5_k and iq4_xs have no tile step: their amx kernels are the avx512 register tiles.
TEST(CodegenAmx, NoTileCodeForQ8OnlyTypes) {
  for (ElementType t : kQ8OnlyTypes) {
    MatMulCase c;
    c.weight = t;
    c.act_q8 = true;
    c.N = 32;
    c.K = 256;
    c.M = 16;
    const std::string ir = case_llvm_ir(c, "amx");
    ASSERT_FALSE(ir.empty()) << c.name();
    EXPECT_EQ(ir.find("@llvm.x86.tdpbssd("), std::string::npos) << c.name();
    EXPECT_EQ(ir.find("@llvm.x86.ldtilecfg("), std::string::npos) << c.name();
  }
}

}  // namespace
}  // namespace ingot::cgtest
