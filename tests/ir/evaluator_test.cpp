// The reference evaluator: state carried across calls, symbol binding, input checking.
#include <gtest/gtest.h>

#include "ir/builder.h"
#include "ir/evaluator.h"

namespace ingot {
namespace {

// Appends x [tokens, 2] to state "s" and returns the column sums of everything seen so far.
std::unique_ptr<Model> accumulator() {
  auto m = std::make_unique<Model>("acc");
  EXPECT_TRUE(m->add_variable({"s", ElementType::f32, {16, 2}}).ok());
  GraphBuilder b(*m);
  Value x = b.parameter("x", ElementType::f32, {Dim::symbol("tokens"), 2});
  Value r = b.read_value("s", ElementType::f32, {Dim::symbol("past"), 2}, "read");
  Value c = b.concat({r, x}, 0);
  b.assign("s", c, "write");
  b.result(b.op(Op::ReduceSum, {c}, {{"axes", Attribute::Ints({0})}}), "sum");
  b.result(b.op(Op::Range, {b.scalar_i64(0)}, {{"length", Attribute::Dims({Dim::symbol("past") + Dim::symbol("tokens")})}}), "positions");
  EXPECT_TRUE(b.ok()) << b.status().message();
  return m;
}

TEST(Evaluator, StateCarriesAcrossCalls) {
  auto m = accumulator();
  Evaluator ev(*m);
  auto r1 = ev.run({{"x", Tensor::from_f32({2, 2}, {1, 2, 3, 4})}});
  ASSERT_TRUE(r1.ok()) << r1.message();
  EXPECT_EQ((*r1)[0].to_f32_vector(), (std::vector<float>{4, 6}));
  EXPECT_EQ((*r1)[1].to_i64_vector(), (std::vector<int64_t>{0, 1}));
  auto r2 = ev.run({{"x", Tensor::from_f32({1, 2}, {10, 20})}});
  ASSERT_TRUE(r2.ok()) << r2.message();
  EXPECT_EQ((*r2)[0].to_f32_vector(), (std::vector<float>{14, 26}));
  EXPECT_EQ((*r2)[1].to_i64_vector(), (std::vector<int64_t>{0, 1, 2}));  // past=2 bound from the state
  EXPECT_EQ(ev.state().at("s").shape(), (std::vector<int64_t>{3, 2}));
  ev.reset_state();
  auto r3 = ev.run({{"x", Tensor::from_f32({1, 2}, {1, 1})}});
  ASSERT_TRUE(r3.ok());
  EXPECT_EQ((*r3)[0].to_f32_vector(), (std::vector<float>{1, 1}));
}

TEST(Evaluator, FailedCallLeavesStateUnchanged) {
  auto m = accumulator();
  Evaluator ev(*m);
  ASSERT_TRUE(ev.run({{"x", Tensor::from_f32({1, 2}, {1, 2})}}).ok());
  auto bad = ev.run({{"x", Tensor::from_f32({1, 3}, {1, 2, 3})}});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(ev.state().at("s").shape(), (std::vector<int64_t>{1, 2}));
}

TEST(Evaluator, InputErrors) {
  auto m = accumulator();
  Evaluator ev(*m);
  auto missing = ev.run({});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.message().find("no input given for parameter 'x'"), std::string::npos) << missing.message();
  auto wrong_type = ev.run({{"x", Tensor::from_i64({1, 2}, {1, 2})}});
  ASSERT_FALSE(wrong_type.ok());
  EXPECT_NE(wrong_type.message().find("must be f32"), std::string::npos) << wrong_type.message();
  auto wrong_dim = ev.run({{"x", Tensor::from_f32({1, 3}, {1, 2, 3})}});
  ASSERT_FALSE(wrong_dim.ok());
  EXPECT_NE(wrong_dim.message().find("dimension 1 is 3 but the type says 2"), std::string::npos) << wrong_dim.message();
  auto extra = ev.run({{"x", Tensor::from_f32({1, 2}, {1, 2})}, {"y", Tensor::from_f32({1}, {1})}});
  ASSERT_FALSE(extra.ok());
  EXPECT_NE(extra.message().find("'y' is not a parameter"), std::string::npos) << extra.message();
}

TEST(Evaluator, SymbolsMustAgreeAcrossInputs) {
  Model m;
  GraphBuilder b(m);
  Value a = b.parameter("a", ElementType::f32, {Dim::symbol("n")});
  Value c = b.parameter("c", ElementType::f32, {Dim::symbol("n")});
  b.result(b.add(a, c), "out");
  ASSERT_TRUE(b.ok());
  Evaluator ev(m);
  auto r = ev.run({{"a", Tensor::from_f32({2}, {1, 2})}, {"c", Tensor::from_f32({3}, {1, 2, 3})}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("type says n =2"), std::string::npos) << r.message();
}

TEST(Evaluator, OpaqueConstantCannotRun) {
  Model m;
  auto c = m.add_node({Op::Constant, {}, {}, "w", {{ElementType::f32, {2}}}, nullptr, "0123456789abcdef"});
  ASSERT_TRUE(c.ok()) << c.message();
  ASSERT_TRUE(m.add_node({Op::Result, {(*c)->out()}, {}, "out", {}, nullptr, ""}).ok());
  Evaluator ev(m);
  auto r = ev.run({});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("has no data"), std::string::npos) << r.message();
}

TEST(Evaluator, ObserverSeesEveryNode) {
  auto m = accumulator();
  Evaluator ev(*m);
  int seen = 0;
  ev.set_observer([&](const Node&, const std::vector<Tensor>&) { ++seen; });
  ASSERT_TRUE(ev.run({{"x", Tensor::from_f32({1, 2}, {1, 2})}}).ok());
  EXPECT_EQ(seen, static_cast<int>(m->nodes().size()));
}

TEST(Evaluator, ConstantsPointingIntoForeignMemoryAreNotCopied) {
  // A constant viewing caller-owned bytes (as a mapped GGUF would be) is read in place.
  static const float data[3] = {1, 2, 3};
  auto keep = std::make_shared<int>(0);
  auto buf = Buffer::view(reinterpret_cast<const uint8_t*>(data), sizeof(data), keep);
  auto t = Tensor::from_buffer(ElementType::f32, {3}, buf);
  ASSERT_TRUE(t.ok());
  Model m;
  GraphBuilder b(m);
  Value c = b.constant(std::make_shared<Tensor>(*t), "w");
  b.result(c, "out");
  Evaluator ev(m);
  auto r = ev.run({});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0].raw(), reinterpret_cast<const uint8_t*>(data));
  EXPECT_EQ(Tensor::from_buffer(ElementType::f32, {4}, buf).ok(), false);  // size is checked
}

}  // namespace
}  // namespace ingot

namespace ingot {
namespace {

TEST(Evaluator, StateCannotOutgrowItsMaximum) {
  auto m = accumulator();  // "s" holds at most 16 rows
  Evaluator ev(*m);
  std::vector<float> ten(20, 1.0f);
  ASSERT_TRUE(ev.run({{"x", Tensor::from_f32({10, 2}, ten)}}).ok());
  auto full = ev.run({{"x", Tensor::from_f32({10, 2}, ten)}});
  ASSERT_FALSE(full.ok());
  EXPECT_NE(full.message().find("more than its maximum [16, 2]"), std::string::npos) << full.message();
  EXPECT_EQ(ev.state().at("s").shape(), (std::vector<int64_t>{10, 2}));  // unchanged
}

}  // namespace
}  // namespace ingot

namespace ingot {
namespace {

// A Result created first but computed from a node created later must still come back first.
TEST(Evaluator, ResultsComeBackInModelOrderNotExecutionOrder) {
  Model m;
  GraphBuilder b(m);
  Value x = b.parameter("x", ElementType::f32, static_shape({2}));
  Value first = b.result(x, "first");
  b.result(b.mul(x, x), "second");
  ASSERT_TRUE(b.status().ok());
  // Rewire "first" to a node created after "second": it now executes last.
  Value late = b.op(Op::Negative, {x});
  ASSERT_TRUE(b.status().ok()) << b.status().message();
  first.node->inputs[0] = late;
  Evaluator ev(m);
  auto r = ev.run({{"x", Tensor::from_f32({2}, {2, 3})}});
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ((*r)[0].to_f32_vector(), (std::vector<float>{-2, -3}));
  EXPECT_EQ((*r)[1].to_f32_vector(), (std::vector<float>{4, 9}));
}

}  // namespace
}  // namespace ingot
