// The pattern matcher (captures, predicates, commutativity, backtracking, failure reasons) and the
// greedy rewrite driver.
#include "ir/ops.h"
#include "passes/pattern.h"

#include <gtest/gtest.h>

#include <sstream>

#include "frontend/demo_model.h"
#include "ir/builder.h"
#include "ir/verifier.h"
#include "passes/pattern_pass.h"

namespace ingot {
namespace {

Value f32_const(GraphBuilder& b, std::vector<int64_t> shape, std::vector<float> v, const std::string& name = "") {
  return b.constant(std::make_shared<Tensor>(Tensor::from_f32(std::move(shape), v)), name);
}

TEST(Pattern, CapturesBindValuesAndNodes) {
  Model m;
  GraphBuilder b(m);
  Value x = b.parameter("x", ElementType::f32, {4});
  Value one = b.scalar_f32(1.0f, "one");
  Value y = b.op(Op::Multiply, {x, one}, {}, "mul_3");
  ASSERT_TRUE(b.ok());
  Captures c(m);
  ASSERT_TRUE(match(op(Op::Multiply, {any("x"), constant_scalar(1.0, "c")}, "root"), y, c));
  EXPECT_EQ(c.value("x"), x);
  EXPECT_EQ(c.node("c"), one.node);
  EXPECT_EQ(c.value("root"), y);
  EXPECT_EQ(c.values().size(), 3u);
  EXPECT_FALSE(c.has("y"));
}

TEST(Pattern, OpWithoutInputsIgnoresThem) {
  Model m;
  GraphBuilder b(m);
  Value x = b.parameter("x", ElementType::f32, {4});
  Value y = b.op(Op::Sigmoid, {x});
  Captures c;
  EXPECT_TRUE(match(op(Op::Sigmoid), y, c));
  EXPECT_TRUE(match(op(Op::Sigmoid).capture("s"), y, c));
  EXPECT_EQ(c.value("s"), y);
  std::string why;
  EXPECT_FALSE(match(op(Op::Sigmoid, {any(), any()}), y, c, &why));
  EXPECT_EQ(why, "expected Sigmoid with 2 inputs, got Sigmoid 'sigmoid_0' with 1");
}

TEST(Pattern, CommutativeOpsTryBothOrders) {
  Model m;
  GraphBuilder b(m);
  Value x = b.parameter("x", ElementType::f32, {4});
  Value one = b.scalar_f32(1.0f);
  Value zero = b.scalar_f32(0.0f);
  Value mul = b.mul(one, x);
  Value add = b.add(zero, x);
  Value sub = b.sub(zero, x);
  ASSERT_TRUE(b.ok());
  Captures c;
  EXPECT_TRUE(match(op(Op::Multiply, {any("x"), constant_scalar(1.0)}), mul, c));
  EXPECT_EQ(c.value("x"), x);
  Captures c2;
  EXPECT_TRUE(match(op(Op::Add, {any("x"), constant_scalar(0.0)}), add, c2));
  EXPECT_EQ(c2.value("x"), x);
  // Subtract is not commutative: 0 - x is not x - 0.
  Captures c3;
  std::string why;
  EXPECT_FALSE(match(op(Op::Subtract, {any("x"), constant_scalar(0.0)}), sub, c3, &why));
  EXPECT_TRUE(c3.values().empty());
  EXPECT_NE(why.find("input 1: expected a constant equal to 0, got Parameter 'x'"), std::string::npos) << why;
  EXPECT_TRUE(op_def(Op::Add).has(kCommutative));
  EXPECT_TRUE(op_def(Op::Maximum).has(kCommutative));
  EXPECT_FALSE(op_def(Op::Divide).has(kCommutative));
}

TEST(Pattern, RepeatedCaptureNamesMustBindTheSameValue) {
  Model m;
  GraphBuilder b(m);
  Value x = b.parameter("x", ElementType::f32, {4});
  Value y = b.parameter("y", ElementType::f32, {4});
  Value xx = b.add(x, x);
  Value xy = b.op(Op::Add, {x, y}, {}, "xy");
  ASSERT_TRUE(b.ok());
  Pattern twice = op(Op::Add, {any("a"), any("a")});
  Captures c;
  EXPECT_TRUE(match(twice, xx, c));
  EXPECT_EQ(c.value("a"), x);
  Captures c2;
  std::string why;
  EXPECT_FALSE(match(twice, xy, c2, &why));
  EXPECT_EQ(why, "Add 'xy' input 1: expected the value captured as 'a' (Parameter 'x'), got Parameter 'y'");
}

TEST(Pattern, BacktracksIntoCommutativeSubpatterns) {
  // (p * q) + p against (a * b) + b: the first order of the Multiply binds b = q, which the outer
  // second input then contradicts; the matcher must go back and try the Multiply swapped.
  Model m;
  GraphBuilder b(m);
  Value p = b.parameter("p", ElementType::f32, {4});
  Value q = b.parameter("q", ElementType::f32, {4});
  Value y = b.add(b.mul(p, q), p);
  ASSERT_TRUE(b.ok());
  Captures c;
  ASSERT_TRUE(match(op(Op::Add, {op(Op::Multiply, {any("a"), any("b")}), any("b")}), y, c));
  EXPECT_EQ(c.value("a"), q);
  EXPECT_EQ(c.value("b"), p);
}

TEST(Pattern, FailureReasonNamesNodeInputAndWhatWasFound) {
  Model m;
  GraphBuilder b(m);
  Value y = b.parameter("y", ElementType::f32, {4});
  Value x = b.parameter("x", ElementType::f32, {4});
  Value mul = b.op(Op::Multiply, {y, x}, {}, "mul_3");
  Value add = b.op(Op::Add, {y, x}, {}, "a");
  ASSERT_TRUE(b.ok());
  Pattern p = op(Op::Multiply, {any("x"), constant_scalar(1.0)});
  Captures c;
  std::string why;
  EXPECT_FALSE(match(p, mul, c, &why));
  EXPECT_EQ(why, "Multiply 'mul_3' input 1: expected a constant equal to 1, got Parameter 'x'");
  EXPECT_TRUE(c.values().empty()) << "a failed match leaves the captures as they were";
  EXPECT_FALSE(match(p, add, c, &why));
  EXPECT_EQ(why, "expected Multiply, got Add 'a'");
}

TEST(Pattern, ConstantScalarNeedsOneEqualElement) {
  Model m;
  GraphBuilder b(m);
  Value x = b.parameter("x", ElementType::f32, {2});
  Value two = f32_const(b, {1, 1}, {2.0f}, "two");
  Value ones = f32_const(b, {2}, {1.0f, 1.0f}, "ones");
  Value y1 = b.op(Op::Multiply, {x, two}, {}, "m1");
  Value y2 = b.op(Op::Multiply, {x, ones}, {}, "m2");
  ASSERT_TRUE(b.ok());
  Captures c;
  std::string why;
  EXPECT_TRUE(match(op(Op::Multiply, {any(), constant_scalar(2.0)}), y1, c)) << "any rank with one element";
  EXPECT_FALSE(match(op(Op::Multiply, {any(), constant_scalar(1.0)}), y1, c, &why));
  EXPECT_EQ(why, "Multiply 'm1' input 1: expected a constant equal to 1, got Constant 'two' = 2");
  EXPECT_FALSE(match(op(Op::Multiply, {any(), constant_scalar(1.0)}), y2, c, &why));
  EXPECT_EQ(why, "Multiply 'm2' input 1: expected a constant equal to 1, got Constant 'ones' : f32[2]");
  // constant_value checks every element, whatever the shape.
  EXPECT_TRUE(match(op(Op::Multiply, {any(), constant().where(constant_value(1.0))}), y2, c));
}

TEST(Pattern, Predicates) {
  Model m;
  GraphBuilder b(m);
  Value x = b.parameter("x", ElementType::f16, {Dim::symbol("tokens"), 4});
  Value s = b.op(Op::Softmax, {x}, {{"axis", Attribute::Int(-1)}}, "sm");
  Value t = b.op(Op::Exp, {s}, {}, "e1");
  Value u = b.op(Op::Exp, {s}, {}, "e2");
  Value mixed = f32_const(b, {2}, {1.0f, 3.0f}, "mixed");
  ASSERT_TRUE(b.ok());
  (void)t;
  (void)u;
  Captures c(m);
  std::string why;
  EXPECT_TRUE(match(any().where(element_type(ElementType::f16)), x, c));
  EXPECT_FALSE(match(any().where(element_type(ElementType::f32)), x, c, &why));
  EXPECT_EQ(why, "expected element type f32, got Parameter 'x' : f16[tokens, 4]");
  EXPECT_TRUE(match(any().where(rank(2)), x, c));
  EXPECT_FALSE(match(any().where(rank(3)), x, c, &why));
  EXPECT_EQ(why, "expected rank 3, got Parameter 'x' : f16[tokens, 4]");
  EXPECT_TRUE(match(any().where(has_type({ElementType::f16, {Dim::symbol("tokens"), 4}})), x, c));
  EXPECT_TRUE(match(op(Op::Softmax).where(attr_equals("axis", Attribute::Int(-1))), s, c));
  EXPECT_FALSE(match(op(Op::Softmax).where(attr_equals("axis", Attribute::Int(0))), s, c, &why));
  EXPECT_EQ(why, "expected axis = 0, got Softmax 'sm' with axis = -1");
  EXPECT_TRUE(match(any().where(single_use()), x, c));
  EXPECT_FALSE(match(any().where(single_use()), s, c, &why));
  EXPECT_EQ(why, "expected a single use, got Softmax 'sm' with 2 uses");
  EXPECT_FALSE(match(constant().where(constant_value(1.0)), mixed, c, &why));
  EXPECT_EQ(why, "expected a constant equal to 1, got Constant 'mixed' : f32[2] with element 1 = 3");
  // Without the model there is nothing to count uses with: the match fails and says so.
  Captures no_model;
  EXPECT_FALSE(match(any().where(single_use()), x, no_model, &why));
  EXPECT_NE(why.find("no model given"), std::string::npos) << why;
  // Custom predicates.
  Pattern even_rank = any().where(predicate("an even rank", [](Value v) { return v.type().shape.size() % 2 == 0; }));
  EXPECT_TRUE(match(even_rank, x, c));
  EXPECT_EQ(even_rank.str(), "_ [an even rank]");
}

TEST(Pattern, DeepestFailureIsReported) {
  // Reshape(Reshape(x)) where the inner one has two users: the reason is the predicate, not the op.
  Model m;
  GraphBuilder b(m);
  Value x = b.parameter("x", ElementType::f32, {8});
  Value r1 = b.op(Op::Reshape, {x}, {{"shape", Attribute::Dims({2, 4})}}, "r1");
  Value r2 = b.op(Op::Reshape, {r1}, {{"shape", Attribute::Dims({4, 2})}}, "r2");
  b.result(r1, "keep");
  ASSERT_TRUE(b.ok());
  Captures c(m);
  std::string why;
  EXPECT_FALSE(match(op(Op::Reshape, {op(Op::Reshape, {any("x")}).where(single_use())}), r2, c, &why));
  EXPECT_EQ(why, "Reshape 'r2' input 0: expected a single use, got Reshape 'r1' with 2 uses");
}

TEST(Pattern, PrintsAsText) {
  Pattern p = op(Op::Multiply, {any("x"), constant_scalar(1.0)}, "m").where(single_use());
  EXPECT_EQ(p.str(), "Multiply(x, <constant 1>)@m [a single use]");
  EXPECT_EQ(p.root_op(), Op::Multiply);
  EXPECT_EQ(any("x").root_op(), std::nullopt);
}

// The shape of a fusion pattern: the demo's RMS norms, x / sqrt(mean(x^2) + eps) * w.
TEST(Pattern, FindsEveryRmsNormOfTheDemo) {
  auto m = build_demo_model();
  ASSERT_TRUE(m.ok());
  Pattern mean_square = op(Op::ReduceMean, {op(Op::Power, {any("x"), constant_scalar(2.0)})})
                            .where(attr_equals("axes", Attribute::Ints({-1})))
                            .where(attr_equals("keep_dims", Attribute::Bool(true)));
  Pattern rms_norm = op(Op::Multiply, {op(Op::Divide, {any("x"), op(Op::Sqrt, {op(Op::Add, {mean_square, constant("eps")})})}),
                                     constant("w")});
  int found = 0;
  for (auto& n : (*m)->nodes()) {
    Captures c(**m);
    if (!n->is(Op::Multiply) || !match(rms_norm, n->out(), c)) continue;
    ++found;
    EXPECT_EQ(scalar_constant(c.value("eps")), static_cast<double>(static_cast<float>(demo_config().rms_eps)));
    EXPECT_EQ(c.value("w").type().str(), "f32[32]");
    EXPECT_EQ(c.value("x").type().str(), "f32[tokens, 32]");
  }
  EXPECT_EQ(found, 2 * 2 + 1);  // two per layer, and the output norm
}

// ---------------------------------------------------------------- rewrite helpers

TEST(PatternRewriteHelpers, UseCountsCountInputSlots) {
  Model m;
  GraphBuilder b(m);
  Value x = b.parameter("x", ElementType::f32, {4});
  Value y = b.parameter("y", ElementType::f32, {4});
  Value sq = b.op(Op::Multiply, {x, x}, {}, "sq");  // x is read twice by one node
  b.result(b.op(Op::Add, {sq, y}, {}, "sum"), "out");
  b.result(sq, "also");
  ASSERT_TRUE(b.ok());
  // Enough nodes that the table grows past its first size.
  Value chain = y;
  for (int i = 0; i < 40; ++i) chain = b.op(Op::Negative, {chain});
  b.result(chain, "chain");
  ASSERT_TRUE(b.ok());
  UseCounts uses(m);
  EXPECT_EQ(uses.count(x), 2);
  EXPECT_EQ(uses.count(y), 2);
  EXPECT_EQ(uses.count(sq), 2);
  EXPECT_EQ(uses.total(m.find("sum")), 1);
  EXPECT_EQ(uses.total(m.find("out")), 0);
  EXPECT_EQ(uses.count(chain), 1);
  for (auto& n : m.nodes()) EXPECT_EQ(uses.total(n.get()), static_cast<int>(m.users(n->out()).size())) << n->name;
  // Not a node of the model, or not one of its outputs: no uses.
  EXPECT_EQ(uses.count(Value{x.node, 1}), 0);
  EXPECT_EQ(uses.total(nullptr), 0);
  Model other;
  GraphBuilder ob(other);
  Value z = ob.parameter("z", ElementType::f32, {4});
  EXPECT_EQ(uses.count(z), 0);
}

TEST(PatternRewriteHelpers, ReplaceValueChecksTypes) {
  Model m;
  GraphBuilder b(m);
  Value x = b.parameter("x", ElementType::f32, {4});
  Value y = b.parameter("y", ElementType::f32, {2, 4});
  Value e = b.op(Op::Exp, {x});
  b.result(e, "out");
  ASSERT_TRUE(b.ok());
  Status st = replace_value(m, e, y);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("the types differ"), std::string::npos) << st.message();
  EXPECT_TRUE(replace_value(m, e, x).ok());
  EXPECT_EQ(m.find("out")->inputs[0], x);
}

TEST(PatternRewriteHelpers, UpdateNodeRestoresOnTypeChange) {
  Model m;
  GraphBuilder b(m);
  Value x = b.parameter("x", ElementType::f32, {8});
  Value z = b.parameter("z", ElementType::f32, {2, 4});
  Value r = b.op(Op::Reshape, {x}, {{"shape", Attribute::Dims({2, 4})}});
  ASSERT_TRUE(b.ok());
  // Reading z with shape [4, 2] would change the type: refused, node untouched.
  AttrMap other = {{"shape", Attribute::Dims({4, 2})}};
  EXPECT_FALSE(update_node(m, r.node, {z}, other));
  EXPECT_EQ(r.node->inputs[0], x);
  EXPECT_EQ(r.node->attr("shape").as_dims(), (Shape{2, 4}));
  EXPECT_TRUE(update_node(m, r.node, {z}, r.node->attrs));
  EXPECT_EQ(r.node->inputs[0], z);
}

TEST(PatternRewriteHelpers, TakeNameSwapsNames) {
  Model m;
  GraphBuilder b(m);
  Value x = b.parameter("x", ElementType::f32, {8});
  Value a = b.op(Op::Exp, {x}, {}, "a");
  Value c = b.op(Op::Exp, {x}, {}, "c");
  take_name(a.node, c.node);
  EXPECT_EQ(a.node->name, "c");
  EXPECT_EQ(c.node->name, "a");
  EXPECT_EQ(scalar_constant(b.scalar_f32(2.5f)), 2.5);
  EXPECT_EQ(scalar_constant(x), std::nullopt);
}

// ---------------------------------------------------------------- the greedy driver

// -(-(-(-(-x)))) -> -x: pairs fold from the inside out, then a second walk finds nothing.
TEST(PatternGreedyDriver, RewritesToAFixedPoint) {
  Model m;
  GraphBuilder b(m);
  Value x = b.parameter("x", ElementType::f32, {4});
  Value v = x;
  for (int i = 0; i < 5; ++i) v = b.op(Op::Negative, {v});
  b.result(v, "out");
  ASSERT_TRUE(b.ok());
  std::vector<RewritePattern> ps = {{"neg-neg", op(Op::Negative, {op(Op::Negative, {any("x")})}), replace_with("x")}};
  auto r = apply_patterns_greedily(m, ps);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_TRUE(*r);
  EXPECT_TRUE(verify(m).ok());
  // One Negative is left: five is odd.
  ASSERT_EQ(m.nodes().size(), 3u);
  EXPECT_TRUE(m.find("out")->inputs[0].node->is(Op::Negative));
  EXPECT_EQ(m.find("out")->inputs[0].node->inputs[0], x);
  auto again = apply_patterns_greedily(m, ps);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
}

TEST(PatternGreedyDriver, RewriteErrorsNameThePattern) {
  Model m;
  GraphBuilder b(m);
  Value x = b.parameter("x", ElementType::f32, {4});
  b.result(b.op(Op::Exp, {x}, {}, "e"), "out");
  std::vector<RewritePattern> ps = {
      {"broken", op(Op::Exp), [](Model&, const Captures&, Node*) -> StatusOr<bool> { return Status::Error("boom"); }}};
  auto r = apply_patterns_greedily(m, ps);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.message(), "pattern 'broken' at Exp 'e': boom");
}

TEST(PatternGreedyDriver, StopsAfterMaxIterations) {
  // A rewrite that always claims a change: the driver stops instead of looping forever.
  Model m;
  GraphBuilder b(m);
  Value x = b.parameter("x", ElementType::f32, {4});
  b.result(b.op(Op::Exp, {x}), "out");
  int calls = 0;
  std::vector<RewritePattern> ps = {
      {"liar", op(Op::Exp), [&](Model&, const Captures&, Node*) -> StatusOr<bool> { ++calls; return true; }}};
  auto r = apply_patterns_greedily(m, ps, 3);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(*r);
  EXPECT_EQ(calls, 3);
}

TEST(PatternGreedyDriver, DebugOutputExplainsMatches) {
  Model m;
  GraphBuilder b(m);
  Value y = b.parameter("y", ElementType::f32, {4});
  Value x = b.parameter("x", ElementType::f32, {4});
  Value p = b.op(Op::Multiply, {y, x}, {}, "mul_3");
  b.result(b.op(Op::Multiply, {p, b.scalar_f32(1.0f, "one")}, {}, "mul_4"), "out");
  ASSERT_TRUE(b.ok());
  std::vector<RewritePattern> ps = {{"mul-one", op(Op::Multiply, {any("x"), constant_scalar(1.0)}), replace_with("x")}};
  std::ostringstream log;
  {
    ScopedMatchDebug debug(&log);
    EXPECT_EQ(match_debug_stream(), &log);
    auto r = apply_patterns_greedily(m, ps);
    ASSERT_TRUE(r.ok());
  }
  EXPECT_NE(match_debug_stream(), &log);
  EXPECT_NE(log.str().find("[match] mul-one at Multiply 'mul_3': Multiply 'mul_3' input 1: expected a constant equal "
                           "to 1, got Parameter 'x'\n"),
            std::string::npos)
      << log.str();
  EXPECT_NE(log.str().find("[match] mul-one at Multiply 'mul_4': matched, rewritten\n"), std::string::npos) << log.str();
  EXPECT_EQ(m.find("out")->inputs[0], p);
}

TEST(PatternGreedyDriver, DeclinedRewritesSayWhy) {
  Model m;
  GraphBuilder b(m);
  Value x = b.parameter("x", ElementType::f32, {4});
  b.result(b.op(Op::Exp, {x}, {}, "e"), "out");
  std::vector<RewritePattern> ps = {
      {"picky", op(Op::Exp), [](Model&, const Captures&, Node*) { return decline("the fused node does not fit"); }},
      {"shy", op(Op::Exp), [](Model&, const Captures&, Node*) -> StatusOr<bool> { return false; }}};
  std::ostringstream log;
  {
    ScopedMatchDebug debug(&log);
    auto r = apply_patterns_greedily(m, ps);
    ASSERT_TRUE(r.ok());
    EXPECT_FALSE(*r);
  }
  EXPECT_NE(log.str().find("[match] picky at Exp 'e': matched, rewrite declined: the fused node does not fit\n"),
            std::string::npos)
      << log.str();
  // A rewrite that declines without a reason does not inherit the previous one.
  EXPECT_NE(log.str().find("[match] shy at Exp 'e': matched, rewrite declined\n"), std::string::npos) << log.str();
  // Without debug output decline is just false.
  auto quiet = decline("unused");
  ASSERT_TRUE(quiet.ok());
  EXPECT_FALSE(*quiet);
}

TEST(PatternGreedyDriver, FirstPatternThatRewritesWins) {
  // x*1 -> x rewrites the Multiply; the later pattern never sees it, then or in the next walk.
  Model m;
  GraphBuilder b(m);
  Value x = b.parameter("x", ElementType::f32, {4});
  b.result(b.mul(x, b.scalar_f32(1.0f)), "out");
  int seen = 0;
  std::vector<RewritePattern> ps = {
      {"mul-one", op(Op::Multiply, {any("x"), constant_scalar(1.0)}), replace_with("x")},
      {"count", op(Op::Multiply), [&](Model&, const Captures&, Node*) -> StatusOr<bool> { ++seen; return false; }}};
  auto r = apply_patterns_greedily(m, ps);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(seen, 0);
  EXPECT_EQ(m.nodes().size(), 2u);
}

TEST(PatternGreedyDriver, PatternPassRunsItsPatterns) {
  Model m;
  GraphBuilder b(m);
  Value x = b.parameter("x", ElementType::f32, {4});
  b.result(b.op(Op::Negative, {b.op(Op::Negative, {x})}), "out");
  auto pass = make_pattern_pass("my-pass", {{"neg-neg", op(Op::Negative, {op(Op::Negative, {any("x")})}), replace_with("x")}});
  EXPECT_STREQ(pass->name(), "my-pass");
  auto r = pass->run(m);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(*r);
  EXPECT_EQ(m.find("out")->inputs[0], x);
}

}  // namespace
}  // namespace ingot
