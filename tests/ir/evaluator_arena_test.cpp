// Memory plans without the planner: check_memory_plan on hand-made plans (each rule broken once),
// and the reference evaluator running on a plan's arena (bitwise the normal results when the plan
// is right; wrong results or an error when it is not).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "ir/builder.h"
#include "ir/evaluator.h"
#include "ir/memory_plan.h"

namespace ingot {
namespace {

const Dim kTokens = Dim::symbol("tokens");
const Dim kPast = Dim::symbol("past");

// x, h (state cache [8, 3]) -> all = Concat(old, x) -> Assign; y = Tanh(x) * w; out = Result(y),
// mean = Result(ReduceMean(all)).
std::unique_ptr<Model> small_model() {
  auto m = std::make_unique<Model>("small");
  EXPECT_TRUE(m->add_variable({"cache", ElementType::f32, {8, 3}}).ok());
  GraphBuilder b(*m);
  Value x = b.parameter("x", ElementType::f32, {kTokens, 3});
  Value old = b.read_value("cache", ElementType::f32, {kPast, 3}, "old");
  Value all = b.op(Op::Concat, {old, x}, {{"axis", Attribute::Int(0)}}, "all");
  b.assign("cache", all, "save");
  Value w = b.constant(std::make_shared<Tensor>(Tensor::from_f32({3}, {0.5f, -2.0f, 1.5f})), "w");
  Value t = b.op(Op::Tanh, {x}, {}, "t");
  Value y = b.op(Op::Multiply, {t, w}, {}, "y");
  b.result(y, "out");
  b.result(b.op(Op::ReduceMean, {all}, {{"axes", Attribute::Ints({0})}}, "mean"), "mean_out");
  EXPECT_TRUE(b.ok()) << b.status().message();
  return m;
}

// Every value in a region of its own, live over the whole call: wasteful and valid.
MemoryPlan separate_plan(const Model& m, int64_t max_batch) {
  MemoryPlan p;
  p.max_batch = max_batch;
  p.max_context = model_max_context(m);
  auto order = m.topological_order();
  EXPECT_TRUE(order.ok());
  for (Node* n : *order) p.order.push_back(n->name);
  const int last = static_cast<int>(p.order.size()) - 1;
  for (Node* n : *order) {
    if (n->is(Op::Constant)) continue;
    for (size_t i = 0; i < n->outputs.size(); ++i) {
      auto bytes = max_storage_bytes(n->outputs[i], p.max_batch, p.max_context);
      EXPECT_TRUE(bytes.ok()) << bytes.message();
      MemoryPlan::Buffer b;
      b.node = n->name;
      b.output = static_cast<int>(i);
      b.offset = p.arena_bytes;
      b.bytes = (*bytes + 63) / 64 * 64;
      b.first_step = 0;
      b.last_step = last;
      p.arena_bytes += b.bytes;
      p.buffers.push_back(b);
    }
  }
  for (const StateVariable& v : m.variables()) {
    p.state.push_back({v.name, p.state_bytes, 128});
    p.state_bytes += 128;
  }
  return p;
}

MemoryPlan::Buffer& buf(MemoryPlan& p, const std::string& node) {
  for (auto& b : p.buffers)
    if (b.node == node) return b;
  ADD_FAILURE() << "no buffer " << node;
  return p.buffers.front();
}

void expect_rejected(const Model& m, const MemoryPlan& p, const std::string& fragment) {
  Status st = check_memory_plan(m, p);
  ASSERT_FALSE(st.ok()) << "expected: " << fragment;
  EXPECT_NE(st.message().find(fragment), std::string::npos) << st.message();
}

TEST(CheckMemoryPlan, AcceptsAValidPlanAndRejectsEachBrokenRule) {
  auto m = small_model();
  const MemoryPlan good = separate_plan(*m, 4);
  ASSERT_TRUE(check_memory_plan(*m, good).ok()) << check_memory_plan(*m, good).message();

  MemoryPlan p = good;
  buf(p, "t").offset += 32;
  expect_rejected(*m, p, "'t:0' (bytes");
  expect_rejected(*m, p, "is not aligned to 64 bytes");

  p = good;
  p.arena_bytes -= 64;
  expect_rejected(*m, p, "ends past the arena");

  p = good;
  buf(p, "all").bytes = 64;  // [past+tokens, 3] f32 needs 8 * 3 * 4 = 96
  expect_rejected(*m, p, "holds 64 bytes, f32[past+tokens, 3] needs up to 96");

  p = good;
  p.buffers.erase(p.buffers.begin() + 2);
  expect_rejected(*m, p, "has no buffer");

  p = good;
  p.buffers.push_back(p.buffers.back());
  expect_rejected(*m, p, "has two buffers");

  p = good;
  p.buffers.push_back({"w", 0, 0, 64, 0, 1, "", false});
  expect_rejected(*m, p, "Constants stay outside the arena");

  p = good;
  std::swap(p.order.front(), p.order.back());
  expect_rejected(*m, p, "before its input");

  p = good;
  p.order.pop_back();
  expect_rejected(*m, p, "the order misses node");

  p = good;
  p.max_context = 4;
  expect_rejected(*m, p, "bounds the context by 4 tokens, the state variables by 8");

  p = good;
  buf(p, "y").first_step = buf(p, "y").last_step = 0;
  expect_rejected(*m, p, "'y:0'");
  expect_rejected(*m, p, "must be live from step");

  p = good;
  buf(p, "t").offset = buf(p, "x").offset;
  expect_rejected(*m, p, "are live at the same time and share bytes");

  // t in place of x: fine only where x dies.
  p = good;
  const int step_t = static_cast<int>(std::find(p.order.begin(), p.order.end(), "t") - p.order.begin());
  buf(p, "t").offset = buf(p, "x").offset;
  buf(p, "t").in_place_of = "x:0";
  expect_rejected(*m, p, "is written over 'x:0'");  // x is concatenated later
  buf(p, "t").in_place_of = "all:0";
  expect_rejected(*m, p, "which its node does not read");
  buf(p, "t").in_place_of = "nothing:0";
  expect_rejected(*m, p, "which has no buffer");
  // Views write nothing: they may share while both live.
  buf(p, "t").in_place_of = "x:0";
  buf(p, "t").view = true;
  EXPECT_TRUE(check_memory_plan(*m, p).ok()) << check_memory_plan(*m, p).message();
  buf(p, "t").first_step = step_t;
  EXPECT_TRUE(check_memory_plan(*m, p).ok());

  p = good;
  p.state[0].bytes = 64;
  expect_rejected(*m, p, "state slot 'cache'");
  p = good;
  p.state[0].variable = "other";
  expect_rejected(*m, p, "names no state variable");
  p = good;
  p.state.clear();
  expect_rejected(*m, p, "0 state slots for 1 state variables");

  p = good;
  p.alignment = 48;
  expect_rejected(*m, p, "power of two");
}

// An in-place chain checked at the step of the hand-over: t overwrites x where x dies.
TEST(CheckMemoryPlan, AcceptsAnInPlaceHandOverAtTheStepWhereTheInputDies) {
  Model m("chain");
  GraphBuilder b(m);
  Value x = b.parameter("x", ElementType::f32, {kTokens, 16});
  Value t = b.op(Op::Tanh, {x}, {}, "t");
  b.result(b.op(Op::Exp, {t}, {}, "e"), "out");
  ASSERT_TRUE(b.ok());
  MemoryPlan p;
  p.max_batch = 2;
  p.order = {"x", "t", "e", "out"};
  p.buffers = {{"x", 0, 0, 128, 0, 1, "", false},
               {"t", 0, 0, 128, 1, 2, "x:0", false},
               {"e", 0, 0, 128, 2, 3, "t:0", false},
               {"out", 0, 0, 128, 3, 3, "e:0", true}};
  p.arena_bytes = 128;
  EXPECT_TRUE(check_memory_plan(m, p).ok()) << check_memory_plan(m, p).message();
  p.buffers[0].last_step = 2;  // x claimed live after t overwrote it
  expect_rejected(m, p, "is written over 'x:0'");
  p.buffers[0].last_step = 1;
  p.buffers[1].bytes = 192;
  p.arena_bytes = 192;
  expect_rejected(m, p, "does not sit within it");
}

// ---------------------------------------------------------------- the evaluator on an arena

::testing::AssertionResult same_bits(const Tensor& a, const Tensor& b) {
  if (a.type() != b.type() || a.shape() != b.shape()) return ::testing::AssertionFailure() << "types or shapes differ";
  if (a.nbytes() != b.nbytes() || (a.nbytes() && std::memcmp(a.raw(), b.raw(), a.nbytes()) != 0))
    return ::testing::AssertionFailure() << "bytes differ";
  return ::testing::AssertionSuccess();
}

std::map<std::string, Tensor> input(int64_t tokens, float base) {
  std::vector<float> v;
  for (int64_t i = 0; i < tokens * 3; ++i) v.push_back(base + 0.25f * static_cast<float>(i));
  return {{"x", Tensor::from_f32({tokens, 3}, v)}};
}

TEST(EvaluatorArena, ARightPlanGivesBitwiseTheNormalResultsOverCallsWithState) {
  auto m = small_model();
  Evaluator normal(*m), planned(*m);
  planned.set_memory_plan(std::make_shared<const MemoryPlan>(separate_plan(*m, 4)));
  std::vector<std::string> seen;
  planned.set_observer([&](const Node& n, const std::vector<Tensor>&) { seen.push_back(n.name); });
  for (auto [tokens, base] : {std::pair<int64_t, float>{4, 0.5f}, {1, -1.0f}, {3, 2.0f}}) {
    auto a = normal.run(input(tokens, base));
    auto b = planned.run(input(tokens, base));
    ASSERT_TRUE(a.ok()) << a.message();
    ASSERT_TRUE(b.ok()) << b.message();
    ASSERT_EQ(a->size(), 2u);
    ASSERT_EQ(b->size(), 2u);
    for (size_t i = 0; i < a->size(); ++i) EXPECT_TRUE(same_bits((*a)[i], (*b)[i])) << "result " << i;
    EXPECT_TRUE(same_bits(normal.state().at("cache"), planned.state().at("cache")));
  }
  EXPECT_EQ(seen.size(), 3 * m->nodes().size()) << "the observer sees every node";
  // The context holds 8: a fourth call of 3 overflows, in both, and leaves the state alone. The
  // arena run fails first on the concatenation, which outgrows its buffer.
  EXPECT_FALSE(normal.run(input(3, 0)).ok());
  auto full = planned.run(input(3, 0));
  ASSERT_FALSE(full.ok());
  EXPECT_NE(full.message().find("Concat 'all' output 0 has 132 bytes, its buffer 128"), std::string::npos) << full.message();
  EXPECT_EQ(planned.state().at("cache").shape(), (std::vector<int64_t>{8, 3}));
  // Back to separate tensors.
  planned.set_memory_plan(nullptr);
  planned.reset_state();
  EXPECT_TRUE(planned.run(input(2, 0)).ok());
}

TEST(EvaluatorArena, AWrongPlanCorruptsTheResultsOrFails) {
  auto m = small_model();
  Evaluator normal(*m);
  auto want = normal.run(input(4, 0.5f));
  ASSERT_TRUE(want.ok());

  // t and y in one place while t is still to be read by y: y's kernel reads its input before
  // the output is written, so this particular overlap is harmless...
  MemoryPlan p = separate_plan(*m, 4);
  buf(p, "y").offset = buf(p, "t").offset;
  Evaluator a(*m);
  a.set_memory_plan(std::make_shared<const MemoryPlan>(p));
  auto got = a.run(input(4, 0.5f));
  ASSERT_TRUE(got.ok()) << got.message();
  EXPECT_TRUE(same_bits((*want)[0], (*got)[0]));
  // ...but t over the concatenation is not: the mean reads the concatenation after t ran.
  p = separate_plan(*m, 4);
  buf(p, "t").offset = buf(p, "all").offset;
  Evaluator b(*m);
  b.set_memory_plan(std::make_shared<const MemoryPlan>(p));
  got = b.run(input(4, 0.5f));
  ASSERT_TRUE(got.ok()) << got.message();
  EXPECT_TRUE(same_bits((*want)[0], (*got)[0]));
  EXPECT_FALSE(same_bits((*want)[1], (*got)[1]));

  // A live range that ends before the last reader: garbage reaches the result.
  p = separate_plan(*m, 4);
  buf(p, "t").last_step = buf(p, "t").first_step = static_cast<int>(std::find(p.order.begin(), p.order.end(), "t") - p.order.begin());
  Evaluator c(*m);
  c.set_memory_plan(std::make_shared<const MemoryPlan>(p));
  got = c.run(input(4, 0.5f));
  ASSERT_TRUE(got.ok()) << got.message();
  EXPECT_FALSE(same_bits((*want)[0], (*got)[0]));
  EXPECT_TRUE(std::isnan((*got)[0].get_f(0))) << "0xFF bytes read as NaN";
  // The same plan without garbage: the bytes happen to survive.
  c.set_memory_plan(std::make_shared<const MemoryPlan>(p), /*garbage=*/false);
  c.reset_state();
  got = c.run(input(4, 0.5f));
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(same_bits((*want)[0], (*got)[0]));

  // Too small for the value at run time, or missing: errors, not corruption.
  p = separate_plan(*m, 2);  // sized for 2 tokens: x takes 24 bytes, 64 with the alignment
  Evaluator d(*m);
  d.set_memory_plan(std::make_shared<const MemoryPlan>(p));
  auto small = d.run(input(6, 0.5f));
  ASSERT_FALSE(small.ok());
  EXPECT_NE(small.message().find("Parameter 'x' output 0 has 72 bytes, its buffer 64"), std::string::npos) << small.message();
  p = separate_plan(*m, 4);
  p.buffers.erase(p.buffers.begin() + 3);
  d.set_memory_plan(std::make_shared<const MemoryPlan>(p));
  auto missing = d.run(input(4, 0.5f));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.message().find("has no buffer"), std::string::npos) << missing.message();
  p = separate_plan(*m, 4);
  p.order.push_back("ghost");
  d.set_memory_plan(std::make_shared<const MemoryPlan>(p));
  auto ghost = d.run(input(4, 0.5f));
  ASSERT_FALSE(ghost.ok());
  EXPECT_NE(ghost.message().find("'ghost'"), std::string::npos) << ghost.message();
}

TEST(MemoryPlanText, PrintsBuffersAndStateSlots) {
  auto m = small_model();
  MemoryPlan p = separate_plan(*m, 4);
  const std::string s = print_memory_plan(*m, p);
  EXPECT_NE(s.find("memory plan: max batch 4 tokens, max context 8 tokens, alignment 64"), std::string::npos) << s;
  EXPECT_NE(s.find("%x:0 Parameter f32[tokens, 3] @0 +64 live 0.."), std::string::npos) << s;
  EXPECT_NE(s.find("state slots (1):\n  \"cache\" @0 +128"), std::string::npos) << s;
}

}  // namespace
}  // namespace ingot
