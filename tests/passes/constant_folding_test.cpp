// constant-folding: what folds (chains in one walk, shape arithmetic), what does not (big results,
// run-time shapes, state, failing evaluations, opaque constants), and that results do not change.
#include <gtest/gtest.h>

#include "ir/builder.h"
#include "ir/text.h"
#include "tests/passes/equivalence.h"

namespace ingot {
namespace {

using testing::expect_pipeline_keeps_results;
using testing::run_and_print;

using testing::f32;

bool is_constant(const Model& m, const std::string& name) {
  Node* n = m.find(name);
  return n && n->is(Op::Constant);
}

TEST(ConstantFoldingPass, FoldsChainsInOneWalkAndKeepsNames) {
  Model m("chain");
  GraphBuilder b(m);
  Value x = b.parameter("x", ElementType::f32, {2});
  Value sum = b.op(Op::Add, {b.constant(f32({2}, {1, 2})), b.constant(f32({2}, {3, 4}))}, {}, "sum");
  Value scaled = b.op(Op::Multiply, {sum, b.scalar_f32(0.5f)}, {}, "scaled");
  b.result(b.mul(x, scaled), "out");
  ASSERT_TRUE(b.ok());
  auto pass = create_pass("constant-folding");
  ASSERT_TRUE(pass.ok());
  auto r = (*pass)->run(m);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_TRUE(*r);
  EXPECT_TRUE(is_constant(m, "scaled")) << print_model(m);
  EXPECT_EQ(m.find("scaled")->constant->to_f32_vector(), (std::vector<float>{2, 3}));
  EXPECT_EQ(m.find("sum"), nullptr) << "folded into 'scaled' and removed";
  EXPECT_EQ(m.nodes().size(), 4u) << print_model(m);
  auto again = (*pass)->run(m);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
}

TEST(ConstantFoldingPass, ShapeArithmeticOnIntegersAlwaysFolds) {
  // An i64 shape computation: Concat of constants, Gather, Range with a static length.
  Model m("shapes");
  GraphBuilder b(m);
  Value x = b.parameter("x", ElementType::i64, {3});
  Value dims = b.concat({b.constant(std::make_shared<Tensor>(Tensor::from_i64({2}, {4, 8}))),
                         b.constant(std::make_shared<Tensor>(Tensor::from_i64({1}, {16})))}, 0);
  Value picked = b.op(Op::Gather, {dims, b.constant(std::make_shared<Tensor>(Tensor::from_i64({3}, {2, 0, 1})))}, {}, "picked");
  Value range = b.op(Op::Range, {b.scalar_i64(10)}, {{"length", Attribute::Dims({3})}, {"step", Attribute::Float(2)}}, "range");
  b.result(b.add(b.add(x, picked), range), "out");
  ASSERT_TRUE(b.ok());
  run_and_print(m, {"constant-folding"});
  ASSERT_TRUE(is_constant(m, "picked"));
  EXPECT_EQ(m.find("picked")->constant->to_i64_vector(), (std::vector<int64_t>{16, 4, 8}));
  ASSERT_TRUE(is_constant(m, "range"));
  EXPECT_EQ(m.find("range")->constant->to_i64_vector(), (std::vector<int64_t>{10, 12, 14}));
}

TEST(ConstantFoldingPass, DoesNotFoldWhatItMustNot) {
  Model m("dont");
  ASSERT_TRUE(m.add_variable({"s", ElementType::f32, {8, 4}}).ok());
  GraphBuilder b(m);
  const Dim tokens = Dim::symbol("tokens");
  Value x = b.parameter("x", ElementType::f32, {64, 64});
  // A scalar broadcast to 16 KiB: the result is far bigger than its input.
  Value big = b.op(Op::Broadcast, {b.scalar_f32(3.0f)}, {{"shape", Attribute::Dims({64, 64})}}, "big");
  // A 256-byte broadcast is small enough to fold.
  Value small = b.op(Op::Broadcast, {b.scalar_f32(1.0f)}, {{"shape", Attribute::Dims({64})}}, "small");
  // An f16 weight converted to f32 doubles in size: left for generated code.
  auto w16 = std::make_shared<Tensor>(Tensor::from_values(ElementType::f16, {64, 64}, std::vector<double>(4096, 0.5)));
  Value widened = b.op(Op::Convert, {b.constant(w16, "w16")}, {{"to", Attribute::Type(ElementType::f32)}}, "widened");
  // A transpose of a weight keeps its size: folded.
  Value wt = b.op(Op::Transpose, {b.constant(f32({64, 64}, std::vector<float>(4096, 0.25f)))}, {{"perm", Attribute::Ints({1, 0})}}, "wt");
  // Run-time lengths, state and failing evaluations stay.
  Value positions = b.op(Op::Range, {b.scalar_i64(0)}, {{"length", Attribute::Dims({tokens})}}, "positions");
  Value old = b.read_value("s", ElementType::f32, {Dim::symbol("past"), 4}, "old");
  b.assign("s", old, "save");
  Value div0 = b.op(Op::Divide, {b.scalar_i64(7), b.scalar_i64(0)}, {}, "div0");
  b.result(b.add(b.add(x, big), b.add(widened, wt)), "r1");
  b.result(small, "r2");
  b.result(positions, "r3");
  b.result(div0, "r4");
  ASSERT_TRUE(b.ok()) << b.status().message();
  std::string text = run_and_print(m, {"constant-folding"});
  EXPECT_TRUE(m.find("big")->is(Op::Broadcast)) << text;
  EXPECT_TRUE(m.find("widened")->is(Op::Convert)) << text;
  EXPECT_TRUE(m.find("positions")->is(Op::Range)) << text;
  EXPECT_TRUE(m.find("old")->is(Op::ReadValue)) << text;
  EXPECT_TRUE(m.find("div0")->is(Op::Divide)) << text;
  EXPECT_TRUE(is_constant(m, "small")) << text;
  EXPECT_TRUE(is_constant(m, "wt")) << text;
}

TEST(ConstantFoldingPass, OpaqueConstantsCannotBeFolded) {
  auto m = parse_model(R"(model "opaque" {
  %w = Constant() : f32[32] = hash "0123456789abcdef"
  %e = Exp(%w) : f32[32]
  %out = Result(%e) : f32[32]
})");
  ASSERT_TRUE(m.ok()) << m.message();
  auto pass = create_pass("constant-folding");
  ASSERT_TRUE(pass.ok());
  auto r = (*pass)->run(**m);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(*r);
}

TEST(ConstantFoldingPass, KeepsResults) {
  Model m("numeric");
  ASSERT_TRUE(m.add_variable({"s", ElementType::f32, {16, 3}}).ok());
  GraphBuilder b(m);
  const Dim tokens = Dim::symbol("tokens");
  Value x = b.parameter("x", ElementType::f32, {tokens, 3});
  Value w = b.constant(f32({3, 3}, {0.1f, 0.2f, 0.3f, -0.4f, 0.5f, 0.6f, 0.7f, -0.8f, 0.9f}));
  Value wn = b.op(Op::Softmax, {b.op(Op::Exp, {b.transpose(w, {1, 0})})}, {{"axis", Attribute::Int(-1)}});
  Value inv = b.op(Op::Sqrt, {b.op(Op::Range, {b.scalar_f32(1.0f)}, {{"length", Attribute::Dims({3})}, {"step", Attribute::Float(0.5)}})});
  Value old = b.read_value("s", ElementType::f32, {Dim::symbol("past"), 3});
  Value all = b.concat({old, b.mul(b.matmul(x, wn), inv)}, 0);
  b.assign("s", all);
  b.result(b.op(Op::ReduceSum, {all}, {{"axes", Attribute::Ints({0})}}), "out");
  ASSERT_TRUE(b.ok()) << b.status().message();
  EXPECT_TRUE(expect_pipeline_keeps_results(m, {"constant-folding"}, {{{"tokens", 3}}, {{"tokens", 5}}}));
  EXPECT_EQ(m.nodes().size(), 10u) << print_model(m);  // the weights and the scale are one Constant each
}

}  // namespace
}  // namespace ingot
