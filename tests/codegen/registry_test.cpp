// Every kernel family of the registry against the reference evaluator, through the family's own
// spec, argument bindings and emitter (the ones the scheduler and compiler use): each case is a
// one-node model with random inputs, run on 1..3 threads on every CPU tier this host runs, with
// sentinel bytes around every output. The generic MLIR family is additionally asked to compile
// every node the hand-written families take, so both paths are checked on the same cases.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <cstring>
#include <random>
#include <thread>

#include "codegen/kernel_registry.h"
#include "ir/builder.h"
#include "ir/evaluator.h"
#include "tests/codegen/harness.h"

namespace ingot {
namespace {

using cgtest::compile_and_open;

constexpr size_t kGuard = 4096;  // wide: a loop that runs past its output shows as a sentinel, not heap damage
constexpr uint8_t kSentinel = 0xA5;

// A 64-byte aligned copy with sentinels on both sides.
struct Buffer64 {
  explicit Buffer64(size_t n) : bytes(n), mem(static_cast<uint8_t*>(std::aligned_alloc(64, (n + 2 * kGuard + 63) / 64 * 64))) {
    std::memset(mem, kSentinel, (n + 2 * kGuard + 63) / 64 * 64);
  }
  ~Buffer64() { std::free(mem); }
  Buffer64(const Buffer64&) = delete;
  uint8_t* data() { return mem + kGuard; }
  bool intact() const {
    for (size_t i = 0; i < kGuard; ++i)
      if (mem[i] != kSentinel || mem[kGuard + bytes + i] != kSentinel) return false;
    return true;
  }
  size_t bytes;
  uint8_t* mem;
};

// Random data for a parameter: floats in [-2, 2], integers in [-20, 20] (positive for Sqrt, Log
// and Power's base, and for Embedding's ids: [0.05, 2] and [0, 40]), booleans.
Tensor random_input(const TensorType& t, const std::vector<int64_t>& shape, bool positive, std::mt19937_64& rng) {
  Tensor r = Tensor::zeros(t.type, shape);
  std::uniform_real_distribution<double> u(positive ? 0.05 : -2.0, 2.0);
  for (int64_t i = 0; i < r.numel(); ++i) {
    if (t.type == ElementType::f32) r.set_f(i, static_cast<float>(u(rng)));
    else if (t.type == ElementType::boolean) r.set_i(i, static_cast<int64_t>(rng() % 2));
    else r.set_i(i, static_cast<int64_t>(rng() % 41) - (positive ? 0 : 20));
  }
  return r;
}

struct Outcome {
  std::string problem;  // empty when the kernel matched
};

// Runs `c` through family `f` (already compiled into `fn`), on `threads` threads.
// State buffers (the caches of a stateful kernel), by variable name: they persist across calls.
using StateBuffers = std::map<std::string, std::unique_ptr<Buffer64>>;

std::string check_case(const KernelFamily& f, const KernelCase& c, KernelFn fn, const Model& m, Node* n,
                       const std::map<std::string, Tensor>& inputs, const std::vector<Tensor>& expected, const KernelSpec& spec,
                       int threads, StateBuffers* state = nullptr, int64_t past = 0) {
  auto args = f.args(*n, spec);
  if (!args.ok()) return args.message();
  std::vector<std::unique_ptr<Buffer64>> owned;
  std::vector<const void*> slots;
  std::vector<std::pair<Buffer64*, int>> outputs;
  auto tensor_of = [&](const Value& v) -> const Tensor* {
    if (v.node->is(Op::Constant)) return v.node->constant.get();
    auto it = inputs.find(v.node->name);
    return it == inputs.end() ? nullptr : &it->second;
  };
  for (const KernelArg& a : *args) {
    switch (a.kind) {
      case KernelArg::Kind::null: slots.push_back(nullptr); break;
      case KernelArg::Kind::output: {
        auto b = std::make_unique<Buffer64>(expected[static_cast<size_t>(a.index)].nbytes());
        outputs.push_back({b.get(), a.index});
        slots.push_back(b->data());
        owned.push_back(std::move(b));
        break;
      }
      case KernelArg::Kind::input: {
        const Tensor* t = tensor_of(n->inputs[static_cast<size_t>(a.index)]);
        if (!t) return "input " + std::to_string(a.index) + " has no data";
        auto b = std::make_unique<Buffer64>(t->nbytes());
        std::memcpy(b->data(), t->raw(), t->nbytes());
        slots.push_back(b->data());
        owned.push_back(std::move(b));
        break;
      }
      case KernelArg::Kind::packed_input: {
        const Tensor* t = tensor_of(n->inputs[static_cast<size_t>(a.index)]);
        auto pw = f.packed_input(spec, a.index);
        if (!t || !pw) return "packed input " + std::to_string(a.index) + " has no data or layout";
        auto bytes = pw->pack(t->raw(), t->nbytes());
        if (!bytes.ok()) return bytes.message();
        auto b = std::make_unique<Buffer64>(bytes->size());
        std::memcpy(b->data(), bytes->data(), bytes->size());
        slots.push_back(b->data());
        owned.push_back(std::move(b));
        break;
      }
      case KernelArg::Kind::scratch: {
        const int64_t per = scratch_bytes_per_thread(spec, c.rows);
        auto b = std::make_unique<Buffer64>(static_cast<size_t>(per * threads));
        slots.push_back(per > 0 ? b->data() : nullptr);
        owned.push_back(std::move(b));
        break;
      }
      case KernelArg::Kind::state: {
        if (!state) return "state arguments need state buffers";
        const StateVariable* v = m.find_variable(a.variable);
        if (!v) return "no state variable " + a.variable;
        auto& b = (*state)[a.variable];
        if (!b) {
          int64_t elems = 1;
          for (int64_t d : v->max_shape) elems *= d;
          b = std::make_unique<Buffer64>(static_cast<size_t>(elems * type_info(v->type).block_bytes));
          std::memset(b->data(), 0, b->bytes);
        }
        slots.push_back(b->data());
        break;
      }
    }
  }
  const int64_t dims[kDimWords] = {c.rows, past};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back([&, t] { fn(slots.data(), dims, t, threads); });
  for (auto& t : pool) t.join();
  if (state)
    for (const auto& [name, b] : *state)
      if (!b->intact()) return "wrote outside state " + name;
  for (auto [b, index] : outputs) {
    if (!b->intact()) return "wrote outside output " + std::to_string(index);
    const Tensor& ref = expected[static_cast<size_t>(index)];
    Tensor got = Tensor::zeros(ref.type(), ref.shape());
    std::memcpy(got.mutable_raw(), b->data(), ref.nbytes());
    double err = 0, norm = 0;
    for (int64_t i = 0; i < ref.numel(); ++i) {
      const double r = ref.get_f(i), g = got.get_f(i);
      if (std::isnan(r) || std::isnan(g)) {
        if (std::isnan(r) != std::isnan(g)) return "element " + std::to_string(i) + ": NaN where the other is not";
        continue;
      }
      err += (g - r) * (g - r);
      norm += r * r;
    }
    const double nmse = norm > 0 ? err / norm : err;
    if (nmse > c.max_nmse) {
      char buf[96];
      std::snprintf(buf, sizeof(buf), ": NMSE %.3g > %.3g", nmse, c.max_nmse);
      return "output " + std::to_string(index) + buf;
    }
  }
  return "";
}

struct Prepared {
  Model model;
  Node* node = nullptr;
  std::map<std::string, Tensor> inputs;
  std::vector<Tensor> expected;
  std::vector<Tensor> expected_again;  // stateful models: a second call with the same inputs
};

StatusOr<std::unique_ptr<Prepared>> prepare(const KernelCase& c, uint64_t seed) {
  auto p = std::make_unique<Prepared>();
  INGOT_ASSIGN_OR_RETURN(p->node, c.build(p->model));
  GraphBuilder b(p->model);
  for (size_t o = 0; o < p->node->outputs.size(); ++o) b.result(p->node->out(static_cast<int>(o)), "y" + std::to_string(o));
  INGOT_RETURN_IF_ERROR(b.status());
  std::mt19937_64 rng(seed);
  const bool positive = p->node->is(Op::Sqrt) || p->node->is(Op::Log) || p->node->is(Op::Power) || p->node->is(Op::Embedding);
  for (Node* prm : p->model.parameters()) {
    std::vector<int64_t> shape;
    for (const Dim& d : prm->outputs[0].shape) shape.push_back(d.is_static() ? d.value() : c.rows);
    p->inputs[prm->name] = random_input(prm->outputs[0], shape, positive, rng);
  }
  Evaluator ev(p->model);
  INGOT_ASSIGN_OR_RETURN(p->expected, ev.run(p->inputs));
  if (!p->model.variables().empty()) {
    INGOT_ASSIGN_OR_RETURN(p->expected_again, ev.run(p->inputs));
  }
  return p;
}

// Every family's cases, through that family; then the same cases through the generic family
// (`cases`: those it lowers; all of f's when empty).
void check_family(const KernelFamily& f, const KernelFamily& runner, const std::string& tier, std::vector<KernelCase> cases = {}) {
  if (!f.cases) GTEST_SKIP() << f.kind << ": cases live in the family's own test";
  std::vector<std::unique_ptr<Prepared>> prepared;
  std::vector<KernelSpec> specs;
  if (cases.empty()) cases = f.cases();
  for (size_t i = 0; i < cases.size(); ++i) {
    auto p = prepare(cases[i], 1000 + i);
    ASSERT_TRUE(p.ok()) << cases[i].name << ": " << p.message();
    auto spec = runner.spec_for(*(*p)->node, &(*p)->model);
    ASSERT_TRUE(spec.ok()) << cases[i].name << " via " << runner.kind << ": " << spec.message();
    spec->kind = runner.kind;
    spec->name = "case" + std::to_string(i);
    specs.push_back(*spec);
    prepared.push_back(std::move(*p));
  }
  CodegenOptions o;
  o.cpu = tier;
  auto lib = compile_and_open(specs, o);
  ASSERT_TRUE(lib.ok()) << lib.message();
  for (size_t i = 0; i < cases.size(); ++i) {
    KernelFn fn = (*lib)->find(specs[i].name);
    ASSERT_NE(fn, nullptr) << cases[i].name;
    for (int threads : {1, 2, 3}) {
      const Prepared& p = *prepared[i];
      StateBuffers state;
      const std::string problem = check_case(runner, cases[i], fn, p.model, p.node, p.inputs, p.expected, specs[i], threads, &state);
      EXPECT_EQ(problem, "") << cases[i].name << " via " << runner.kind << " on " << tier << ", " << threads << " thread(s)";
      if (!p.expected_again.empty()) {  // the same inputs again, after the first call's rows
        const std::string again = check_case(runner, cases[i], fn, p.model, p.node, p.inputs, p.expected_again, specs[i], threads,
                                             &state, cases[i].rows);
        EXPECT_EQ(again, "") << cases[i].name << " (second call) via " << runner.kind << " on " << tier << ", " << threads << " thread(s)";
      }
    }
  }
}

class FamilyCases : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(FamilyCases, MatchTheReference) {
  const auto& [kind, tier] = GetParam();
  if (std::string skip = cgtest::tier_skip_reason(tier); !skip.empty()) GTEST_SKIP() << skip;
  const KernelFamily* f = find_kernel_family(kind);
  ASSERT_NE(f, nullptr);
  check_family(*f, *f, tier);
}

// Before a node gets a hand-written kernel it runs through MLIR: the generic family must compute
// every case of the hand-written families it can express, exactly as well.
class HandWrittenFamilyCases : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(HandWrittenFamilyCases, GenericPathMatchesTheReferenceToo) {
  const auto& [kind, tier] = GetParam();
  if (std::string skip = cgtest::tier_skip_reason(tier); !skip.empty()) GTEST_SKIP() << skip;
  const KernelFamily* f = find_kernel_family(kind);
  const KernelFamily* generic = find_kernel_family("generic");
  ASSERT_NE(f, nullptr);
  ASSERT_NE(generic, nullptr);
  // Cases of a form only the hand-written kernel computes (GeGLU with llama.cpp's table) are left
  // out; a family none of whose cases the generic path lowers is skipped.
  std::vector<KernelCase> lowered;
  std::string left_out;
  for (const KernelCase& c : f->cases()) {
    Model m;
    auto n = c.build(m);
    ASSERT_TRUE(n.ok()) << n.message();
    if (generic->computes(**n)) lowered.push_back(c);
    else left_out = (*n)->op_name();
  }
  if (lowered.empty()) GTEST_SKIP() << kind << ": the generic path does not lower " << left_out << " yet";
  check_family(*f, *generic, tier, lowered);
}

// Families with registry cases (the others name the test that covers them, next to their entry).
std::vector<std::string> family_kinds() {
  std::vector<std::string> out;
  for (const KernelFamily* f : kernel_families())
    if (f->cases) out.push_back(f->kind);
  return out;
}

// The hand-written families with registry cases.
std::vector<std::string> hand_written_kinds() {
  std::vector<std::string> out;
  for (const std::string& k : family_kinds())
    if (k != "generic") out.push_back(k);
  return out;
}

INSTANTIATE_TEST_SUITE_P(Registry, HandWrittenFamilyCases,
                         ::testing::Combine(::testing::ValuesIn(hand_written_kinds()), ::testing::ValuesIn(cgtest::tier_names())),
                         [](const auto& info) {
                           return std::get<0>(info.param) + "_" + cgtest::tier_test_name(std::get<1>(info.param));
                         });

INSTANTIATE_TEST_SUITE_P(Registry, FamilyCases, ::testing::Combine(::testing::ValuesIn(family_kinds()), ::testing::ValuesIn(cgtest::tier_names())),
                         [](const auto& info) {
                           return std::get<0>(info.param) + "_" + cgtest::tier_test_name(std::get<1>(info.param));
                         });

// A composite op (OpDef::decompose) with no hand-written kernel compiles through the generic path
// as one fused element-wise chain, bitwise equal to the reference: GeGLU = Gelu_tanh(gate) * up,
// on odd sizes, one row and many, on every tier this host runs.
TEST(GenericFamily, CompositeOpGeGLUMatchesTheReference) {
  const KernelFamily& generic = *find_kernel_family("generic");
  int checked = 0;
  for (const std::string& tier : cgtest::tier_names()) {
    if (!cgtest::host_lacks_tier(tier).empty()) continue;
    for (int64_t width : {1, 45, 256}) {
      for (int64_t rows : {1, 7}) {
        KernelCase c{"geglu_" + std::to_string(width), rows, [width](Model& m) -> StatusOr<Node*> {
                       GraphBuilder b(m);
                       const Shape s{Dim::symbol("tokens"), Dim(width)};
                       Node* n = b.node(Op::GeGLU, {b.parameter("gate", ElementType::f32, s), b.parameter("up", ElementType::f32, s)}, {}, "ffn");
                       INGOT_RETURN_IF_ERROR(b.status());
                       return n;
                     }, 0.0};
        auto p = prepare(c, 7 + static_cast<uint64_t>(width));
        ASSERT_TRUE(p.ok()) << p.message();
        auto spec = generic.spec_for(*(*p)->node, &(*p)->model);
        ASSERT_TRUE(spec.ok()) << spec.message();
        spec->kind = "generic";
        spec->name = "geglu";
        CodegenOptions o;
        o.cpu = tier;
        auto lib = compile_and_open({*spec}, o);
        ASSERT_TRUE(lib.ok()) << lib.message();
        for (int threads : {1, 3}) {
          EXPECT_EQ(check_case(generic, c, (*lib)->find("geglu"), (*p)->model, (*p)->node, (*p)->inputs, (*p)->expected, *spec, threads), "")
              << c.name << " rows " << rows << " on " << tier;
          ++checked;
        }
      }
    }
  }
  EXPECT_GT(checked, 0);
}

// A case the generic family cannot express is refused at planning with the reason.
TEST(GenericFamily, RefusesWhatItCannotLowerWithAReason) {
  Model m;
  GraphBuilder b(m);
  Node* n = b.node(Op::Add, {b.parameter("a", ElementType::bf16, static_shape({4, 8})), b.parameter("b", ElementType::bf16, static_shape({4, 8}))},
                   {}, "half_add");
  ASSERT_TRUE(b.ok());
  auto spec = find_kernel_family("generic")->spec_for(*n, &m);
  ASSERT_FALSE(spec.ok());
  EXPECT_NE(spec.message().find("half_add (Add): the generic path does not handle bf16 values"), std::string::npos) << spec.message();
}

// A family's key must name every field of its spec that the emitter reads: identical keys share
// one symbol in a bundle, and the kernel cache (codegen/kernel_cache.h) serves one compiled set for
// equal keys across bundles, so a field missing from the key would hand one kernel's code to
// another. Each field is changed alone and must change the key. The size checks fail when a
// spec gains a field: add it to its key and here.
TEST(FamilyKeys, EveryFieldOfASpecChangesTheKey) {
  static_assert(sizeof(MatMulSpec) == 64 && sizeof(AttentionSpec) == 48 && sizeof(RMSNormSpec) == 32 &&
                    sizeof(EmbeddingSpec) == 32 && sizeof(RopeTableSpec) == 16,
                "a kernel spec changed: give the new field a place in its family's key and in this test");
  auto check = [](const char* kind, const KernelSpec& base, const std::vector<std::pair<const char*, std::function<void(KernelSpec&)>>>& edits) {
    KernelSpec b = base;
    b.kind = kind;
    const std::string key = family_of(b).key(b);
    for (const auto& [field, edit] : edits) {
      KernelSpec k = b;
      edit(k);
      EXPECT_NE(family_of(k).key(k), key) << kind << "." << field << " is not in the key";
    }
  };
  KernelSpec m;
  m.matmul = MatMulSpec{ElementType::q8_0, 64, 128, true, false, RopeLayout::none, 0, 0, false, false, 0};
  check("matmul", m, {{"weight", [](KernelSpec& k) { k.matmul.weight = ElementType::q4_0; }},
                      {"N", [](KernelSpec& k) { k.matmul.N = 72; }},
                      {"K", [](KernelSpec& k) { k.matmul.K = 256; }},
                      {"act_q8", [](KernelSpec& k) { k.matmul.act_q8 = false; }},
                      {"bias", [](KernelSpec& k) { k.matmul.bias = true; }},
                      {"rope", [](KernelSpec& k) { k.matmul.rope = RopeLayout::rotate_half; k.matmul.rope_heads = 2; k.matmul.head_dim = 32; }},
                      {"swiglu", [](KernelSpec& k) { k.matmul.swiglu = true; }},
                      {"residual", [](KernelSpec& k) { k.matmul.residual = true; }},
                      {"block_tokens", [](KernelSpec& k) { k.matmul.block_tokens = 40; }}});
  KernelSpec r = m;
  r.matmul.rope = RopeLayout::interleaved;
  r.matmul.rope_heads = 2;
  r.matmul.head_dim = 32;
  check("matmul", r, {{"rope layout", [](KernelSpec& k) { k.matmul.rope = RopeLayout::rotate_half; }},
                      {"rope_heads", [](KernelSpec& k) { k.matmul.rope_heads = 3; }},
                      {"head_dim", [](KernelSpec& k) { k.matmul.head_dim = 16; }}});
  KernelSpec a;
  a.attention = AttentionSpec{8, 4, 64, false, ElementType::f32, 0.125f, 0.0f, 0};
  check("attention", a, {{"H", [](KernelSpec& k) { k.attention.H = 16; }},
                         {"KV", [](KernelSpec& k) { k.attention.KV = 2; }},
                         {"D", [](KernelSpec& k) { k.attention.D = 128; }},
                         {"packed", [](KernelSpec& k) { k.attention.packed = true; }},
                         {"cache", [](KernelSpec& k) { k.attention.cache = ElementType::f16; }},
                         {"scale", [](KernelSpec& k) { k.attention.scale = std::nextafter(0.125f, 1.0f); }},
                         {"softcap", [](KernelSpec& k) { k.attention.softcap = 50.0f; }},
                         {"window", [](KernelSpec& k) { k.attention.window = 4096; }}});
  KernelSpec n;
  n.rms_norm = RMSNormSpec{64, 1e-5f, 1, 0};
  check("rms_norm", n, {{"D", [](KernelSpec& k) { k.rms_norm.D = 128; }},
                        {"eps", [](KernelSpec& k) { k.rms_norm.eps = std::nextafter(1e-5f, 1.0f); }},
                        {"rows_per_dim0", [](KernelSpec& k) { k.rms_norm.rows_per_dim0 = 4; }},
                        {"static_rows", [](KernelSpec& k) { k.rms_norm.static_rows = 8; }}});
  KernelSpec e;
  e.embedding = EmbeddingSpec{ElementType::q8_0, 512, 64, false};
  check("embedding", e, {{"table", [](KernelSpec& k) { k.embedding.table = ElementType::f16; }},
                         {"V", [](KernelSpec& k) { k.embedding.V = 513; }},
                         {"D", [](KernelSpec& k) { k.embedding.D = 96; }},
                         {"ids_i32", [](KernelSpec& k) { k.embedding.ids_i32 = true; }}});
  KernelSpec t;
  t.rope_table = RopeTableSpec{32, false};
  check("rope_table", t, {{"H", [](KernelSpec& k) { k.rope_table.H = 64; }},
                          {"pos_i32", [](KernelSpec& k) { k.rope_table.pos_i32 = true; }}});
}

}  // namespace
}  // namespace ingot
