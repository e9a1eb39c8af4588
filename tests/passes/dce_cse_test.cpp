// dce and cse: what goes, what stays, and that results do not change.
#include <gtest/gtest.h>

#include "ir/builder.h"
#include "ir/text.h"
#include "tests/passes/equivalence.h"

namespace ingot {
namespace {

using testing::expect_pipeline_keeps_results;
using testing::run_and_print;

using testing::f32;

int count_op(const Model& m, std::string_view op) {
  int n = 0;
  for (auto& node : m.nodes()) n += node->op_name() == op;
  return n;
}

// ---------------------------------------------------------------- dce

TEST(DcePass, RemovesUnusedNodesKeepsInterfaceAndState) {
  Model m("dead");
  ASSERT_TRUE(m.add_variable({"s", ElementType::f32, {8, 2}}).ok());
  GraphBuilder b(m);
  Value x = b.parameter("x", ElementType::f32, {Dim::symbol("tokens"), 2});
  b.parameter("unused", ElementType::f32, {2});
  Value old = b.read_value("s", ElementType::f32, {Dim::symbol("past"), 2}, "old");
  b.assign("s", b.concat({old, x}, 0), "save");
  b.op(Op::Exp, {b.op(Op::Sigmoid, {x}, {}, "dead1")}, {}, "dead2");
  b.result(b.op(Op::Tanh, {x}, {}, "live"), "out");
  ASSERT_TRUE(b.ok());
  std::string text = run_and_print(m, {"dce"});
  EXPECT_EQ(text.find("dead1"), std::string::npos) << text;
  EXPECT_EQ(text.find("dead2"), std::string::npos) << text;
  for (const char* kept : {"%x", "%unused", "%old", "%save", "%live", "%out"})
    EXPECT_NE(text.find(kept), std::string::npos) << kept << "\n" << text;
  // Nothing left to remove.
  auto again = create_pass("dce");
  ASSERT_TRUE(again.ok());
  auto r = (*again)->run(m);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(*r);
}

// ---------------------------------------------------------------- cse

TEST(CsePass, MergesIdenticalOpsAndWhatBecomesIdentical) {
  Model m("dup");
  GraphBuilder b(m);
  Value x = b.parameter("x", ElementType::f32, {4});
  Value y = b.parameter("y", ElementType::f32, {4});
  // Two identical chains; the second Add has its inputs swapped (commutative).
  Value s1 = b.op(Op::Sigmoid, {b.add(x, y)}, {}, "s1");
  Value s2 = b.op(Op::Sigmoid, {b.add(y, x)}, {}, "s2");
  // Same op and input, different attributes: kept apart.
  Value m0 = b.op(Op::Softmax, {x}, {{"axis", Attribute::Int(0)}}, "sm0");
  Value m1 = b.op(Op::Softmax, {x}, {{"axis", Attribute::Int(-1)}}, "sm1");
  // Subtract is not commutative: x - y and y - x stay.
  Value d1 = b.sub(x, y);
  Value d2 = b.sub(y, x);
  b.result(b.add(b.add(s1, s2), b.add(b.add(m0, m1), b.add(d1, d2))), "out");
  ASSERT_TRUE(b.ok());
  std::string text = run_and_print(m, {"cse"});
  EXPECT_EQ(count_op(m, "Sigmoid"), 1) << text;
  EXPECT_EQ(count_op(m, "Softmax"), 2) << text;
  EXPECT_EQ(count_op(m, "Subtract"), 2) << text;
  EXPECT_NE(text.find("%s1 = Sigmoid"), std::string::npos) << "the first one survives\n" << text;
}

TEST(CsePass, MergesConstantsByTypeShapeAndBytes) {
  Model m("consts");
  GraphBuilder b(m);
  Value x = b.parameter("x", ElementType::f32, {4});
  Value a = b.constant(f32({4}, {1, 2, 3, 4}), "a");
  Value same = b.constant(f32({4}, {1, 2, 3, 4}), "same");
  Value other_shape = b.constant(f32({2, 2}, {1, 2, 3, 4}), "other_shape");
  Value other_values = b.constant(f32({4}, {1, 2, 3, 5}), "other_values");
  // The bytes of f32 1.0f read as an i32: same bytes, other type.
  Value as_int = b.constant(std::make_shared<Tensor>(Tensor::from_values(ElementType::i32, {1}, {1065353216.0})), "as_int");
  Value one = b.constant(f32({1}, {1}), "one");
  b.result(b.add(b.add(x, a), b.add(x, same)), "r1");
  b.result(b.add(b.reshape(other_shape, {4}), other_values), "r2");
  b.result(b.convert(as_int, ElementType::f32), "r3");
  b.result(one, "r4");
  ASSERT_TRUE(b.ok());
  std::string text = run_and_print(m, {"cse"});
  EXPECT_EQ(m.find("same"), nullptr) << text;
  for (const char* kept : {"a", "other_shape", "other_values", "as_int", "one"})
    EXPECT_NE(m.find(kept), nullptr) << kept << "\n" << text;
  // With the constants merged, the two Adds are one as well.
  EXPECT_EQ(count_op(m, "Add"), 3) << text;
}

TEST(CsePass, LargeConstantsDifferingOutsideTheSampledBytes) {
  // 4096 floats: the cheap sample (start, middle, end) agrees, the full comparison does not.
  std::vector<float> v(4096, 0.5f);
  std::vector<float> w = v;
  w[600] = 0.75f;
  Model m("big");
  GraphBuilder b(m);
  Value x = b.parameter("x", ElementType::f32, {4096});
  b.result(b.add(x, b.constant(f32({4096}, v), "v1")), "r1");
  b.result(b.add(x, b.constant(f32({4096}, w), "w")), "r2");
  b.result(b.add(x, b.constant(f32({4096}, v), "v2")), "r3");
  ASSERT_TRUE(b.ok());
  run_and_print(m, {"cse"});
  EXPECT_NE(m.find("v1"), nullptr);
  EXPECT_NE(m.find("w"), nullptr);
  EXPECT_EQ(m.find("v2"), nullptr);
  EXPECT_EQ(count_op(m, "Add"), 2);
}

TEST(CsePass, NeverMergesStateInterfaceOrOpaqueConstants) {
  // Two ReadValues of one variable, two Parameters and two Results of one value, two opaque
  // constants with one hash: all stay.
  const char* text = R"(model "state" {
  state "s" : f32[8, 2]
  %a = Parameter() : f32[2]
  %b = Parameter() : f32[2]
  %r1 = ReadValue() {variable = "s"} : f32[past, 2]
  %r2 = ReadValue() {variable = "s"} : f32[past, 2]
  %w1 = Constant() : f32[32] = hash "0123456789abcdef"
  %w2 = Constant() : f32[32] = hash "0123456789abcdef"
  %c = Concat(%r1, %r2) {axis = 0} : f32[2*past, 2]
  %save = Assign(%c) {variable = "s"} : ()
  %o1 = Result(%a) : f32[2]
  %o2 = Result(%a) : f32[2]
  %o3 = Result(%b) : f32[2]
  %o4 = Result(%w1) : f32[32]
  %o5 = Result(%w2) : f32[32]
}
)";
  auto m = parse_model(text);
  ASSERT_TRUE(m.ok()) << m.message();
  auto pass = create_pass("cse");
  ASSERT_TRUE(pass.ok());
  auto r = (*pass)->run(**m);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(*r);
  EXPECT_EQ(print_model(**m), text);
}

TEST(CsePass, KeepsResultsOfAStatefulGraph) {
  Model m("kv");
  ASSERT_TRUE(m.add_variable({"k", ElementType::f32, {16, 2}}).ok());
  GraphBuilder b(m);
  const Dim tokens = Dim::symbol("tokens");
  Value x = b.parameter("x", ElementType::f32, {tokens, 2});
  Value old = b.read_value("k", ElementType::f32, {Dim::symbol("past"), 2});
  Value all = b.concat({old, b.op(Op::Tanh, {x})}, 0);
  b.assign("k", all);
  Value e1 = b.op(Op::Exp, {all});
  Value e2 = b.op(Op::Exp, {all});
  b.result(b.op(Op::ReduceSum, {b.mul(e1, b.op(Op::Tanh, {e2}))}, {{"axes", Attribute::Ints({0})}}), "out");
  b.result(b.op(Op::Tanh, {x}), "tx");
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(expect_pipeline_keeps_results(m, {"cse"}, {{{"tokens", 3}}, {{"tokens", 5}}}));
  EXPECT_EQ(count_op(m, "Exp"), 1);
  EXPECT_EQ(count_op(m, "Tanh"), 2);  // Tanh(x) merged; Tanh(e) is another value
}

}  // namespace
}  // namespace ingot
