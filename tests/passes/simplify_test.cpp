// simplify: each rule fires where it should and not where it would change a type or a value.
#include <gtest/gtest.h>

#include "ir/builder.h"
#include "ir/text.h"
#include "passes/generic_passes.h"
#include "tests/passes/equivalence.h"

namespace ingot {
namespace {

using testing::expect_pipeline_keeps_results;
using testing::run_and_print;

using testing::f32;

// Builds `out = Result(f(x))` and returns what `out` reads after simplify.
struct Case {
  Model m{"case"};
  GraphBuilder b{m};
  Value x;
  Value simplified() {
    EXPECT_TRUE(b.ok()) << b.status().message();
    run_and_print(m, {"simplify"});
    return m.find("out")->inputs[0];
  }
};

TEST(SimplifyPass, ArithmeticIdentities) {
  struct Rule {
    const char* name;
    std::function<Value(GraphBuilder&, Value)> build;
  };
  const Rule rules[] = {
      {"x*1", [](GraphBuilder& b, Value x) { return b.mul(x, b.scalar_f32(1)); }},
      {"1*x", [](GraphBuilder& b, Value x) { return b.mul(b.scalar_f32(1), x); }},
      {"x*ones", [](GraphBuilder& b, Value x) { return b.mul(x, b.constant(f32({4}, {1, 1, 1, 1}))); }},
      {"x+0", [](GraphBuilder& b, Value x) { return b.add(x, b.scalar_f32(0)); }},
      {"0+x", [](GraphBuilder& b, Value x) { return b.add(b.scalar_f32(0), x); }},
      {"x-0", [](GraphBuilder& b, Value x) { return b.sub(x, b.scalar_f32(0)); }},
      {"x/1", [](GraphBuilder& b, Value x) { return b.div(x, b.scalar_f32(1)); }},
      {"-(-x)", [](GraphBuilder& b, Value x) { return b.op(Op::Negative, {b.op(Op::Negative, {x})}); }},
      {"reshape to the same shape", [](GraphBuilder& b, Value x) { return b.reshape(x, {Dim::symbol("tokens"), -1}); }},
      {"reshape of reshape", [](GraphBuilder& b, Value x) { return b.reshape(b.reshape(x, {-1}), {Dim::symbol("tokens"), 4}); }},
      {"transpose of transpose", [](GraphBuilder& b, Value x) { return b.transpose(b.transpose(x, {1, 0}), {1, 0}); }},
      {"identity transpose", [](GraphBuilder& b, Value x) { return b.transpose(x, {0, 1}); }},
      {"broadcast to the same shape", [](GraphBuilder& b, Value x) { return b.op(Op::Broadcast, {x}, {{"shape", Attribute::Dims({Dim::symbol("tokens"), 4})}}); }},
      {"convert to the same type", [](GraphBuilder& b, Value x) { return b.convert(x, ElementType::f32); }},
      {"f32 -> bf16 -> f32 -> bf16 -> f32, the last round trip exact",
       [](GraphBuilder& b, Value x) {
         Value rounded = b.convert(x, ElementType::bf16);
         return b.convert(b.convert(b.convert(rounded, ElementType::f32), ElementType::bf16), ElementType::f32);
       }},
  };
  for (const Rule& rule : rules) {
    Case c;
    c.x = c.b.parameter("x", ElementType::f32, {Dim::symbol("tokens"), 4});
    c.b.result(rule.build(c.b, c.x), "out");
    Value got = c.simplified();
    if (std::string(rule.name).find("bf16") != std::string::npos) {
      // One rounding to bf16 and back stays: Convert(Convert(x, bf16), f32).
      ASSERT_TRUE(got.node->is(Op::Convert)) << rule.name << "\n" << print_model(c.m);
      ASSERT_TRUE(got.node->inputs[0].node->is(Op::Convert)) << rule.name << "\n" << print_model(c.m);
      EXPECT_EQ(got.node->inputs[0].node->inputs[0], c.x) << rule.name << "\n" << print_model(c.m);
      EXPECT_EQ(c.m.nodes().size(), 4u) << rule.name << "\n" << print_model(c.m);
      continue;
    }
    EXPECT_EQ(got, c.x) << rule.name << "\n" << print_model(c.m);
    EXPECT_EQ(c.m.nodes().size(), 2u) << rule.name << ": everything else is dead\n" << print_model(c.m);
  }
}

TEST(SimplifyPass, ComposesTransposesAndReshapes) {
  Case c;
  c.x = c.b.parameter("x", ElementType::f32, {2, 3, 4});
  Value t = c.b.transpose(c.b.transpose(c.x, {1, 2, 0}), {0, 2, 1});  // [3, 4, 2] -> [3, 2, 4]
  c.b.result(t, "out");
  Value got = c.simplified();
  ASSERT_TRUE(got.node->is(Op::Transpose));
  EXPECT_EQ(got.node->inputs[0], c.x);
  EXPECT_EQ(got.node->attr("perm").as_ints(), (std::vector<int64_t>{1, 0, 2}));
  EXPECT_EQ(got.type().str(), "f32[3, 2, 4]");

  Case r;
  r.x = r.b.parameter("x", ElementType::f32, {Dim::symbol("tokens"), 8});
  r.b.result(r.b.reshape(r.b.reshape(r.b.reshape(r.x, {-1}), {Dim::symbol("tokens"), 2, 4}), {Dim::symbol("tokens"), 4, 2}), "out");
  Value rgot = r.simplified();
  ASSERT_TRUE(rgot.node->is(Op::Reshape));
  EXPECT_EQ(rgot.node->inputs[0], r.x);
  EXPECT_EQ(r.m.nodes().size(), 3u) << print_model(r.m);
}

TEST(SimplifyPass, ExactConvertChains) {
  struct Chain {
    ElementType from, mid, to;
    bool shortened;  // Convert(Convert(x, mid), to) -> Convert(x, to) (or x when to == from)
  };
  const Chain chains[] = {
      {ElementType::f16, ElementType::f32, ElementType::f16, true},
      {ElementType::bf16, ElementType::f32, ElementType::bf16, true},
      {ElementType::i8, ElementType::i32, ElementType::f32, true},
      {ElementType::u8, ElementType::f16, ElementType::u8, true},
      {ElementType::i32, ElementType::i64, ElementType::i32, true},
      {ElementType::boolean, ElementType::f32, ElementType::boolean, true},
      {ElementType::f32, ElementType::f16, ElementType::f32, false},   // rounds to f16
      {ElementType::f16, ElementType::bf16, ElementType::f16, false},  // bf16 has fewer mantissa bits
      {ElementType::i32, ElementType::f32, ElementType::i32, false},   // 2^24 + 1 does not fit a float
      {ElementType::i64, ElementType::i32, ElementType::i64, false},   // saturates
      {ElementType::u8, ElementType::i8, ElementType::u8, false},      // 255 does not fit
      {ElementType::f32, ElementType::i32, ElementType::f32, false},   // truncates
  };
  for (const Chain& ch : chains) {
    Case c;
    c.x = c.b.parameter("x", ch.from, {3});
    c.b.result(c.b.convert(c.b.convert(c.x, ch.mid), ch.to), "out");
    Value got = c.simplified();
    std::string what = std::string(type_name(ch.from)) + " -> " + std::string(type_name(ch.mid)) + " -> " +
                       std::string(type_name(ch.to)) + "\n" + print_model(c.m);
    if (!ch.shortened) {
      EXPECT_EQ(c.m.nodes().size(), 4u) << what;
    } else if (ch.to == ch.from) {
      EXPECT_EQ(got, c.x) << what;
    } else {
      ASSERT_TRUE(got.node->is(Op::Convert)) << what;
      EXPECT_EQ(got.node->inputs[0], c.x) << what;
    }
  }
}

TEST(SimplifyPass, DoesNotFireWhereItWouldChangeATypeOrAValue) {
  Model m("dont");
  GraphBuilder b(m);
  Value x = b.parameter("x", ElementType::f32, {4});
  Value u = b.parameter("u", ElementType::f32, {Dim::unknown()});
  // x * ones[2, 4] broadcasts x to [2, 4]: replacing it by x would change the type.
  b.result(b.op(Op::Multiply, {x, b.constant(f32({2, 4}, std::vector<float>(8, 1.0f)))}, {}, "broadcasting"), "r1");
  // u[?] * ones[3] is [?] too, but [3] when u is [1] at run time: unknown dims prove nothing.
  b.result(b.op(Op::Multiply, {u, b.constant(f32({3}, {1, 1, 1}))}, {}, "unknown"), "r2");
  b.result(b.op(Op::Subtract, {b.scalar_f32(0), x}, {}, "zero_minus_x"), "r3");            // 0 - x is -x
  b.result(b.op(Op::Divide, {b.scalar_f32(1), x}, {}, "one_over_x"), "r4");                 // 1 / x
  b.result(b.op(Op::Multiply, {x, b.constant(f32({4}, {1, 1, 2, 1}))}, {}, "not_ones"), "r5");
  // The inner reshape has another user: it stays, and so does the outer one's input.
  Value inner = b.op(Op::Reshape, {x}, {{"shape", Attribute::Dims({2, 2})}}, "inner");
  b.result(b.op(Op::Reshape, {inner}, {{"shape", Attribute::Dims({1, 4})}}, "outer"), "r6");
  b.result(inner, "r7");
  b.result(b.op(Op::Transpose, {b.op(Op::Reshape, {x}, {{"shape", Attribute::Dims({2, 2})}})}, {{"perm", Attribute::Ints({1, 0})}}, "real_transpose"), "r8");
  ASSERT_TRUE(b.ok()) << b.status().message();
  std::string before = print_model(m);
  auto pass = create_pass("simplify");
  ASSERT_TRUE(pass.ok());
  auto r = (*pass)->run(m);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_FALSE(*r) << print_model(m);
  EXPECT_EQ(print_model(m), before);
}

TEST(SimplifyPass, KeepsResults) {
  Model m("numeric");
  ASSERT_TRUE(m.add_variable({"s", ElementType::f16, {16, 4}}).ok());
  GraphBuilder b(m);
  const Dim tokens = Dim::symbol("tokens"), past = Dim::symbol("past");
  Value x = b.parameter("x", ElementType::f32, {tokens, 4});
  Value i = b.parameter("i", ElementType::i8, {tokens, 4});
  Value old = b.read_value("s", ElementType::f16, {past, 4});
  Value fresh = b.convert(b.mul(b.scalar_f32(1), b.add(x, b.scalar_f32(0))), ElementType::f16);
  Value all = b.concat({old, fresh}, 0);
  b.assign("s", all);
  Value allf = b.convert(b.convert(b.convert(all, ElementType::f32), ElementType::f16), ElementType::f32);
  Value t = b.transpose(b.transpose(b.reshape(b.reshape(allf, {-1}), {past + tokens, 2, 2}), {2, 0, 1}), {1, 2, 0});
  Value y = b.op(Op::Negative, {b.op(Op::Negative, {b.div(b.reshape(t, {past + tokens, 4}), b.scalar_f32(1))})});
  Value ints = b.convert(b.convert(i, ElementType::i32), ElementType::f32);
  b.result(b.op(Op::ReduceSum, {y}, {{"axes", Attribute::Ints({0})}}), "sum");
  b.result(b.add(b.sub(x, b.scalar_f32(0)), ints), "mixed");
  b.result(b.convert(b.convert(x, ElementType::f16), ElementType::f32), "rounded");  // narrowing: kept
  ASSERT_TRUE(b.ok()) << b.status().message();
  testing::RandomInputOptions opts;
  opts.int_lo = -128;
  opts.int_hi = 128;
  EXPECT_TRUE(expect_pipeline_keeps_results(m, {"simplify"}, {{{"tokens", 3}}, {{"tokens", 5}}}, opts));
  std::string text = print_model(m);
  EXPECT_EQ(text.find("Negative"), std::string::npos) << text;
  EXPECT_EQ(text.find("Transpose"), std::string::npos) << text;
  EXPECT_EQ(text.find("Divide"), std::string::npos) << text;
  EXPECT_NE(text.find("Convert(%i"), std::string::npos) << "i8 -> i32 -> f32 becomes one Convert\n" << text;
}

TEST(SimplifyPass, EveryRuleHasAName) {
  for (const RewritePattern& p : simplify_patterns()) {
    EXPECT_FALSE(p.name.empty());
    EXPECT_TRUE(p.pattern.root_op().has_value()) << p.name;
    EXPECT_TRUE(p.rewrite) << p.name;
  }
}

}  // namespace
}  // namespace ingot
