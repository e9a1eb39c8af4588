// Every registered pass, and the default pipeline, keeps the results of the demo model and of a
// small stateful graph that gives every generic pass something to do: the reference evaluator gives
// the same outputs and final state before and after, over two consecutive calls on random inputs.
// The generic passes must keep them exactly; other passes (fusions) within Tolerance::fused().
#include <gtest/gtest.h>

#include "frontend/demo_model.h"
#include "ir/builder.h"
#include "tests/passes/equivalence.h"

namespace ingot {
namespace {

using testing::expect_pipeline_keeps_results;

const std::vector<SymbolBindings> kTwoCalls = {{{"tokens", 3}}, {{"tokens", 5}}};

// A KV-cache-like model with work for every pass: duplicates, constant subexpressions,
// identities, dead nodes.
std::unique_ptr<Model> kitchen_sink() {
  auto m = std::make_unique<Model>("sink");
  EXPECT_TRUE(m->add_variable({"cache", ElementType::f32, {32, 4}}).ok());
  GraphBuilder b(*m);
  const Dim tokens = Dim::symbol("tokens"), past = Dim::symbol("past");
  Value x = b.parameter("x", ElementType::f32, {tokens, 4});
  Value h = b.parameter("h", ElementType::f16, {tokens, 4});
  Value ids = b.parameter("ids", ElementType::i64, {tokens});
  Value old = b.read_value("cache", ElementType::f32, {past, 4}, "old");
  Value all = b.concat({old, b.mul(x, b.scalar_f32(1.0f))}, 0);  // x*1
  b.assign("cache", all, "save");
  // Constant subexpressions: (2 + 3) * w, folded; a 2.0 made twice, merged.
  Value w = b.constant(std::make_shared<Tensor>(Tensor::from_f32({4}, {0.5f, -1.0f, 2.0f, 0.25f})), "w");
  Value scale = b.mul(b.add(b.scalar_f32(2.0f), b.scalar_f32(3.0f)), w);
  Value p1 = b.op(Op::Power, {all, b.scalar_f32(2.0f)});
  Value p2 = b.op(Op::Power, {all, b.scalar_f32(2.0f)});
  Value sum = b.add(b.mul(p1, scale), p2);
  // Identities: reshape chains, transposes, exact convert round trips, double negation.
  Value r = b.reshape(b.reshape(sum, {past + tokens, 2, 2}), {past + tokens, 4});
  Value t = b.transpose(b.transpose(r, {1, 0}), {1, 0});
  Value hf = b.convert(b.convert(b.convert(h, ElementType::f32), ElementType::f16), ElementType::f32);  // f16->f32->f16 exact
  Value lossy = b.convert(b.convert(x, ElementType::f16), ElementType::f32);                             // rounds: kept
  Value neg = b.op(Op::Negative, {b.op(Op::Negative, {b.add(hf, lossy)})});
  Value rows = b.op(Op::Gather, {t, b.op(Op::Range, {b.scalar_i64(0)}, {{"length", Attribute::Dims({tokens})}})}, {{"axis", Attribute::Int(0)}});
  b.result(b.add(b.div(rows, b.scalar_f32(1.0f)), neg), "out");
  b.result(b.op(Op::Gather, {b.constant(std::make_shared<Tensor>(Tensor::from_f32({3, 4}, std::vector<float>(12, 0.5f)))), ids},
                {{"axis", Attribute::Int(0)}}),
           "embedded");
  b.op(Op::Exp, {x});  // dead
  EXPECT_TRUE(b.ok()) << b.status().message();
  return m;
}

class EveryPass : public ::testing::TestWithParam<std::string> {
 protected:
  std::vector<std::string> pipeline() const {
    return GetParam() == "default-pipeline" ? default_pipeline() : std::vector<std::string>{GetParam()};
  }
  bool generic() const {
    for (const char* g : {"dce", "cse", "constant-folding", "simplify"})
      if (GetParam() == g) return true;
    return false;
  }
  testing::Tolerance tolerance() const { return generic() ? testing::Tolerance::exact() : testing::Tolerance::fused(); }
};

TEST_P(EveryPass, KeepsTheDemoModelsResults) {
  auto m = build_demo_model();
  ASSERT_TRUE(m.ok());
  testing::RandomInputOptions opts;
  opts.int_range["token_ids"] = {0, demo_config().vocab};
  // The position of the first new token is the number of tokens before it, as callers pass it.
  opts.per_call["pos"] = {Tensor::scalar_i64(0), Tensor::scalar_i64(kTwoCalls[0].at("tokens"))};
  expect_pipeline_keeps_results(**m, pipeline(), kTwoCalls, opts, tolerance());
}

TEST_P(EveryPass, KeepsAStatefulGraphsResults) {
  auto m = kitchen_sink();
  testing::RandomInputOptions opts;
  opts.int_range["ids"] = {0, 3};
  bool changed = expect_pipeline_keeps_results(*m, pipeline(), kTwoCalls, opts, tolerance());
  if (generic()) EXPECT_TRUE(changed) << GetParam() << " had work to do on this graph";
}

std::vector<std::string> pass_names() {
  std::vector<std::string> names;
  for (const PassInfo& p : registered_passes()) names.push_back(p.name);
  names.push_back("default-pipeline");
  return names;
}

INSTANTIATE_TEST_SUITE_P(Passes, EveryPass, ::testing::ValuesIn(pass_names()), [](const auto& info) {
  std::string s = info.param;
  for (char& c : s)
    if (c == '-') c = '_';
  return s;
});

}  // namespace
}  // namespace ingot
