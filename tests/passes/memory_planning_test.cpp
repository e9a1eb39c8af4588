// The memory-planning pass: sizes over the token and context bounds, liveness, in-place reuse and
// where it must not happen, plans of random graphs checked exhaustively and run by the reference
// evaluator on the planned arena with garbage in every dead byte (bitwise the normal results),
// a broken plan that the checker rejects and that corrupts results, the demo decoder over several
// calls, and the tinyllama-1.1b shape at max batch 512 (arena within 1.2 x the lower bound).
#include "passes/memory_planning.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <iostream>

#include "frontend/demo_model.h"
#include "frontend/importer.h"
#include "frontend/synth.h"
#include "ir/builder.h"
#include "ir/evaluator.h"
#include "ir/text.h"
#include "ir/verifier.h"
#include "tests/common/files.h"
#include "tests/passes/equivalence.h"

namespace ingot {
namespace {

using testing::Rng;

const Dim kTokens = Dim::symbol("tokens");
const Dim kPast = Dim::symbol("past");

::testing::AssertionResult bitwise_equal(const std::string& what, const Tensor& a, const Tensor& b) {
  if (a.type() != b.type() || a.shape() != b.shape())
    return ::testing::AssertionFailure() << what << ": " << type_name(a.type()) << dims_str(a.shape()) << " vs "
                                         << type_name(b.type()) << dims_str(b.shape());
  if (a.nbytes() != b.nbytes() || (a.nbytes() > 0 && std::memcmp(a.raw(), b.raw(), a.nbytes()) != 0))
    return ::testing::AssertionFailure() << what << ": bytes differ";
  return ::testing::AssertionSuccess();
}

// One call's inputs.
using Inputs = std::map<std::string, Tensor>;

// Runs the calls on a normal evaluator and on one that follows `plan` with garbage in dead bytes;
// every result and the final state must be bitwise equal.
void expect_planned_runs_match(const Model& m, std::shared_ptr<const MemoryPlan> plan, const std::vector<Inputs>& calls) {
  Evaluator normal(m), planned(m);
  planned.set_memory_plan(std::move(plan));
  for (size_t c = 0; c < calls.size(); ++c) {
    auto a = normal.run(calls[c]);
    auto b = planned.run(calls[c]);
    ASSERT_TRUE(a.ok()) << a.message();
    ASSERT_TRUE(b.ok()) << b.message();
    ASSERT_EQ(a->size(), b->size());
    for (size_t i = 0; i < a->size(); ++i)
      EXPECT_TRUE(bitwise_equal("call " + std::to_string(c) + " result " + std::to_string(i), (*a)[i], (*b)[i]));
  }
  ASSERT_EQ(normal.state().size(), planned.state().size());
  for (auto& [name, t] : normal.state()) EXPECT_TRUE(bitwise_equal("state " + name, t, planned.state().at(name)));
}

// Random inputs for every Parameter under `symbols`.
Inputs inputs_for(const Model& m, const SymbolBindings& symbols, Rng& rng) {
  return testing::random_inputs(m, symbols, rng);
}

std::shared_ptr<const MemoryPlan> plan_or_die(const Model& m, const MemoryPlanOptions& o = {}) {
  auto p = plan_memory(m, o);
  EXPECT_TRUE(p.ok()) << p.message();
  if (!p.ok()) return nullptr;
  Status checked = check_memory_plan(m, *p);
  EXPECT_TRUE(checked.ok()) << checked.message();
  return std::make_shared<const MemoryPlan>(std::move(*p));
}

// ---------------------------------------------------------------- sizes

TEST(MaxStorageBytes, IsTheLargestSizeOverTheTokenAndContextBounds) {
  auto bytes = [](TensorType t, int64_t batch, int64_t context) {
    auto r = max_storage_bytes(t, batch, context);
    EXPECT_TRUE(r.ok()) << r.message();
    return r.ok() ? *r : -1;
  };
  EXPECT_EQ(bytes({ElementType::f32, {7, 3}}, 512, 2048), 84);
  EXPECT_EQ(bytes({ElementType::f32, {kTokens, 5}}, 512, 2048), 512 * 5 * 4);
  EXPECT_EQ(bytes({ElementType::f16, {kPast + kTokens, 2, 3}}, 512, 2048), 2048 * 6 * 2);
  EXPECT_EQ(bytes({ElementType::f32, {kPast, 3}}, 512, 2048), 2047 * 12);          // at least one new token
  EXPECT_EQ(bytes({ElementType::f32, {kTokens, kPast + kTokens}}, 512, 2048), 512 * 2048 * 4);
  EXPECT_EQ(bytes({ElementType::f32, {kTokens, kPast + kTokens}}, 4096, 2048), 2048 * 2048 * 4);  // tokens <= context
  // tokens * past peaks inside an edge of the domain, not at a vertex: 4 * 4 for a context of 8.
  EXPECT_EQ(bytes({ElementType::f32, {kTokens, kPast}}, 8, 8), 16 * 4);
  // A factor that shrinks as past grows next to one that grows: scanned.
  EXPECT_EQ(bytes({ElementType::f32, {kPast + 1, Dim(10) - kPast}}, 1, 9), 30 * 4);
  // Without state, past is 0; tokens is bounded by the batch alone.
  EXPECT_EQ(bytes({ElementType::f32, {kPast + kTokens, 2}}, 16, 0), 16 * 8);
  EXPECT_EQ(bytes({ElementType::i64, {kTokens * Dim(2) - Dim(1)}}, 16, 0), 31 * 8);
  EXPECT_EQ(bytes({ElementType::q8_0, {kTokens, 64}}, 3, 0), 3 * 2 * 34);

  auto unknown = max_storage_bytes({ElementType::f32, {Dim::unknown(), 4}}, 8, 0);
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.message().find("unknown dimension"), std::string::npos) << unknown.message();
  auto other = max_storage_bytes({ElementType::f32, {Dim::symbol("n"), 4}}, 8, 0);
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.message().find("'n'"), std::string::npos) << other.message();
}

TEST(MemoryPlanning, AnUnboundedValueIsAnErrorNamingTheNode) {
  Model m("unbounded");
  GraphBuilder b(m);
  Value x = b.parameter("x", ElementType::f32, {Dim::symbol("n"), 4});
  b.result(b.op(Op::Tanh, {x}, {}, "squash"), "out");
  ASSERT_TRUE(b.ok());
  auto p = plan_memory(m);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.message().find("Parameter 'x'"), std::string::npos) << p.message();
  EXPECT_NE(p.message().find("'n'"), std::string::npos) << p.message();

  auto bad = plan_memory(m, MemoryPlanOptions{.max_batch = 0});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("at least 1"), std::string::npos) << bad.message();
  auto unaligned = plan_memory(m, MemoryPlanOptions{.alignment = 48});
  ASSERT_FALSE(unaligned.ok());
  EXPECT_NE(unaligned.message().find("power of two"), std::string::npos) << unaligned.message();
}

// ---------------------------------------------------------------- liveness and in-place

// x -> a = Tanh(x) -> b = Exp(a) -> Result; with `keep_a`, a is also read by a later Add.
std::unique_ptr<Model> chain(bool keep_a) {
  auto m = std::make_unique<Model>("chain");
  GraphBuilder b(*m);
  Value x = b.parameter("x", ElementType::f32, {kTokens, 5});
  Value a = b.op(Op::Tanh, {x}, {}, "a");
  Value e = b.op(Op::Exp, {a}, {}, "e");
  b.result(keep_a ? b.op(Op::Add, {e, a}, {}, "sum") : e, "out");
  EXPECT_TRUE(b.ok()) << b.status().message();
  return m;
}

TEST(MemoryPlanning, LivenessAndInPlaceOfAnInputThatDiesThere) {
  auto m = chain(false);
  auto plan = plan_or_die(*m, MemoryPlanOptions{.max_batch = 4});
  ASSERT_TRUE(plan);
  EXPECT_EQ(plan->order, (std::vector<std::string>{"x", "a", "e", "out"}));
  const MemoryPlan::Buffer* x = plan->find("x");
  const MemoryPlan::Buffer* a = plan->find("a");
  const MemoryPlan::Buffer* e = plan->find("e");
  const MemoryPlan::Buffer* out = plan->find("out");
  ASSERT_TRUE(x && a && e && out);
  EXPECT_EQ(x->bytes, 128);  // 4 * 5 * 4 = 80, rounded up to 64
  EXPECT_EQ(x->first_step, 0);
  EXPECT_EQ(x->last_step, 1);
  EXPECT_EQ(a->in_place_of, "x:0");
  EXPECT_FALSE(a->view);
  EXPECT_EQ(e->in_place_of, "a:0");
  EXPECT_EQ(out->in_place_of, "e:0");
  EXPECT_TRUE(out->view);
  EXPECT_EQ(out->last_step, 3);
  EXPECT_EQ(plan->arena_bytes, 128);
  EXPECT_EQ(plan->lower_bound_bytes, 128);
  EXPECT_EQ(plan->naive_bytes, 3 * 128);  // x, a, e: the Result is a view
  Rng rng(1);
  expect_planned_runs_match(*m, plan, {inputs_for(*m, {{"tokens", 4}}, rng), inputs_for(*m, {{"tokens", 1}}, rng)});

  auto no_reuse = plan_or_die(*m, MemoryPlanOptions{.max_batch = 4, .in_place = false});
  ASSERT_TRUE(no_reuse);
  EXPECT_TRUE(no_reuse->find("a")->in_place_of.empty());
  EXPECT_EQ(no_reuse->find("out")->in_place_of, "e:0");  // views stay
  EXPECT_EQ(no_reuse->arena_bytes, 256);                  // two buffers take turns
}

TEST(MemoryPlanning, DontInPlaceAnInputReadLater) {
  auto m = chain(true);
  auto plan = plan_or_die(*m, MemoryPlanOptions{.max_batch = 4});
  ASSERT_TRUE(plan);
  EXPECT_EQ(plan->find("a")->in_place_of, "x:0");
  EXPECT_TRUE(plan->find("e")->in_place_of.empty()) << "a is read by the Add after the Exp";
  EXPECT_EQ(plan->find("sum")->in_place_of, "e:0");  // either input dies at the Add; the first wins
  EXPECT_EQ(plan->arena_bytes, 256);
  Rng rng(2);
  expect_planned_runs_match(*m, plan, {inputs_for(*m, {{"tokens", 3}}, rng)});
}

TEST(MemoryPlanning, DontInPlaceABroadcastInputOrAnotherElementSize) {
  Model m("dont");
  GraphBuilder b(m);
  Value row = b.parameter("row", ElementType::f32, {1, 8});
  Value x = b.parameter("x", ElementType::f32, {kTokens, 8});
  Value wide = b.op(Op::Add, {row, b.op(Op::Tanh, {x}, {}, "t")}, {}, "wide");  // row is broadcast; t dies here
  Value half = b.convert(wide, ElementType::f16);                            // 2-byte elements
  Value back = b.convert(half, ElementType::f32);
  Value ints = b.convert(back, ElementType::i32);  // same size: in place
  b.result(ints, "out");
  ASSERT_TRUE(b.ok()) << b.status().message();
  auto plan = plan_or_die(m, MemoryPlanOptions{.max_batch = 5});
  ASSERT_TRUE(plan);
  EXPECT_EQ(plan->find("wide")->in_place_of, "t:0") << "not row, which is broadcast";
  EXPECT_TRUE(plan->find(half.node->name)->in_place_of.empty());
  EXPECT_TRUE(plan->find(back.node->name)->in_place_of.empty());
  EXPECT_EQ(plan->find(ints.node->name)->in_place_of, back.node->name + ":0");
  Rng rng(3);
  expect_planned_runs_match(m, plan, {inputs_for(m, {{"tokens", 5}}, rng)});
}

TEST(MemoryPlanning, DontInPlaceWhenAViewOfTheInputIsReadLaterOrIsTheOtherInput) {
  Model m("views");
  GraphBuilder b(m);
  Value x = b.parameter("x", ElementType::f32, {kTokens, 6});
  Value t = b.op(Op::Tanh, {x}, {}, "t");
  Value r = b.reshape(t, {kTokens, 2, 3});
  Value s = b.op(Op::Sigmoid, {t}, {}, "s");           // t's last direct use, but its view r is read below
  Value r2 = b.reshape(s, {kTokens, 2, 3});
  Value both = b.op(Op::Multiply, {s, b.reshape(r2, {kTokens, 6})}, {}, "both");  // the other input shares s's bytes
  b.result(b.add(b.reshape(r, {kTokens, 6}), both), "out");
  ASSERT_TRUE(b.ok()) << b.status().message();
  auto plan = plan_or_die(m, MemoryPlanOptions{.max_batch = 3});
  ASSERT_TRUE(plan);
  EXPECT_EQ(plan->find(r.node->name)->in_place_of, "t:0");
  EXPECT_TRUE(plan->find(r.node->name)->view);
  EXPECT_TRUE(plan->find("s")->in_place_of.empty()) << "the view of t is read after the Sigmoid";
  EXPECT_TRUE(plan->find("both")->in_place_of.empty()) << "its other input is a view of s";
  Rng rng(4);
  expect_planned_runs_match(m, plan, {inputs_for(m, {{"tokens", 3}}, rng), inputs_for(m, {{"tokens", 2}}, rng)});
}

TEST(MemoryPlanning, FusedMatMulOverwritesItsResidualOnly) {
  Model m("residual");
  GraphBuilder b(m);
  Rng rng(5);
  std::vector<float> w(7 * 7);
  for (float& v : w) v = static_cast<float>(rng.uniform(-1, 1));
  Value x = b.parameter("x", ElementType::f32, {kTokens, 7});
  Value h = b.op(Op::Tanh, {x}, {}, "h");
  Value weight = b.constant(std::make_shared<Tensor>(Tensor::from_f32({7, 7}, w)), "w");
  Value y = b.op(Op::FusedMatMul, {h, weight, x}, {{"has_residual", Attribute::Bool(true)}}, "y");
  Value z = b.op(Op::FusedMatMul, {y, weight}, {}, "z");  // no residual: never in place
  b.result(z, "out");
  ASSERT_TRUE(b.ok()) << b.status().message();
  auto plan = plan_or_die(m, MemoryPlanOptions{.max_batch = 9});
  ASSERT_TRUE(plan);
  EXPECT_TRUE(plan->find("h")->in_place_of.empty()) << "x is the residual, read later";
  EXPECT_EQ(plan->find("y")->in_place_of, "x:0");
  EXPECT_TRUE(plan->find("z")->in_place_of.empty());
  EXPECT_EQ(plan->find("w"), nullptr) << "weights stay outside the arena";
  expect_planned_runs_match(m, plan, {inputs_for(m, {{"tokens", 9}}, rng)});
}

// ---------------------------------------------------------------- random graphs

// A random DAG over [tokens, D] values with odd widths: element-wise unary and binary ops (some
// broadcasting a row), MatMul by constant weights, Reshape round trips, Transpose pairs, Concat,
// Softmax, RMSNorm, Converts, and a KV-cache-like state (ReadValue -> Concat -> Assign) that brings
// in past. Several Results, some of them mid-graph.
std::unique_ptr<Model> random_graph(uint64_t seed) {
  Rng rng(seed);
  auto m = std::make_unique<Model>("random_" + std::to_string(seed));
  GraphBuilder b(*m);
  const int64_t widths[] = {1, 3, 5, 7, 9, 13};
  auto width = [&] { return widths[rng.integer(0, 6)]; };
  auto weights = [&](std::vector<int64_t> shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::vector<float> v(static_cast<size_t>(n));
    for (float& f : v) f = static_cast<float>(rng.uniform(-0.7, 0.7));
    return b.constant(std::make_shared<Tensor>(Tensor::from_f32(shape, v)));
  };
  struct Item {
    Value v;
    int64_t d;
  };
  std::vector<Item> pool;
  for (int i = 0, n = static_cast<int>(rng.integer(1, 4)); i < n; ++i) {
    int64_t d = width();
    pool.push_back({b.parameter("in" + std::to_string(i), ElementType::f32, {kTokens, d}), d});
  }
  const bool stateful = rng.integer(0, 2) == 1;
  Value cache_all;
  if (stateful) {
    const int64_t d = pool[0].d;
    EXPECT_TRUE(m->add_variable({"cache", ElementType::f32, {24, d}}).ok());
    Value old = b.read_value("cache", ElementType::f32, {kPast, d});
    cache_all = b.concat({old, pool[0].v}, 0);
    b.assign("cache", cache_all);
    // Attention-like: scores over the cache, softmax, weighted sum: [tokens, past+tokens] values.
    Value scores = b.matmul(pool[0].v, cache_all, /*transpose_b=*/true);
    Value probs = b.op(Op::Softmax, {scores}, {{"axis", Attribute::Int(-1)}});
    pool.push_back({b.matmul(probs, cache_all), d});
  }
  const Op unary[] = {Op::Tanh, Op::Sigmoid, Op::Negative, Op::Abs, Op::Sin, Op::Cos};
  const Op binary[] = {Op::Add, Op::Subtract, Op::Multiply, Op::Maximum, Op::Minimum};
  const int n_ops = static_cast<int>(rng.integer(6, 26));
  for (int i = 0; i < n_ops; ++i) {
    // Later values are picked more often, so chains form as well as fans.
    auto pick = [&]() -> Item& {
      size_t k = static_cast<size_t>(std::max<int64_t>(rng.integer(0, static_cast<int64_t>(pool.size())),
                                                       rng.integer(0, static_cast<int64_t>(pool.size()))));
      return pool[k];
    };
    Item a = pick();
    switch (rng.integer(0, 9)) {
      case 0:
      case 1:
        pool.push_back({b.op(unary[rng.integer(0, 6)], {a.v}), a.d});
        break;
      case 2:
      case 3: {
        std::vector<Item> same;
        for (const Item& it : pool)
          if (it.d == a.d) same.push_back(it);
        Item c = same[static_cast<size_t>(rng.integer(0, static_cast<int64_t>(same.size())))];
        if (rng.integer(0, 4) == 0) c.v = weights({1, a.d});  // a broadcast row
        Value x = rng.integer(0, 2) ? b.op(binary[rng.integer(0, 5)], {a.v, c.v}) : b.op(binary[rng.integer(0, 5)], {c.v, a.v});
        pool.push_back({x, a.d});
        break;
      }
      case 4: {
        int64_t e = width();
        pool.push_back({b.matmul(a.v, weights({a.d, e})), e});
        break;
      }
      case 5: {
        Value r = b.reshape(a.v, {kTokens, 1, a.d});
        Value t = b.op(Op::Tanh, {r});
        pool.push_back({b.reshape(t, {kTokens, a.d}), a.d});
        break;
      }
      case 6: {
        Value t = b.transpose(a.v, {1, 0});  // [d, tokens]
        pool.push_back({b.transpose(b.op(Op::Exp, {b.op(Op::Negative, {b.op(Op::Abs, {t})})}), {1, 0}), a.d});
        break;
      }
      case 7: {
        Item c = pick();
        pool.push_back({b.concat({a.v, c.v}, 1), a.d + c.d});
        break;
      }
      default: {
        if (rng.integer(0, 2)) pool.push_back({b.op(Op::RMSNorm, {a.v, weights({a.d})}, {{"eps", Attribute::Float(1e-5)}}), a.d});
        else pool.push_back({b.convert(b.convert(a.v, ElementType::i32), ElementType::f32), a.d});
        break;
      }
    }
  }
  b.result(pool.back().v, "out");
  for (int i = 0, n = static_cast<int>(rng.integer(0, 3)); i < n; ++i)
    b.result(pool[static_cast<size_t>(rng.integer(0, static_cast<int64_t>(pool.size())))].v, "extra" + std::to_string(i));
  EXPECT_TRUE(b.ok()) << b.status().message();
  return m;
}

TEST(MemoryPlanning, RandomGraphsPlanCheckAndRunBitwiseOnTheArena) {
  int in_place = 0, views = 0, stateful = 0;
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    auto m = random_graph(seed);
    ASSERT_TRUE(verify(*m).ok()) << verify(*m).message();
    stateful += m->variables().empty() ? 0 : 1;
    for (bool reuse : {true, false}) {
      const int64_t batch = 3 + static_cast<int64_t>(seed % 5);
      auto plan = plan_or_die(*m, MemoryPlanOptions{.max_batch = batch, .alignment = seed % 2 ? 64 : 16, .in_place = reuse});
      ASSERT_TRUE(plan) << print_model(*m);
      EXPECT_LE(plan->lower_bound_bytes, plan->arena_bytes);
      EXPECT_LE(plan->arena_bytes, plan->naive_bytes);
      for (const auto& buf : plan->buffers) {
        if (buf.in_place_of.empty()) continue;
        (buf.view ? views : in_place) += reuse ? 1 : 0;
        if (!reuse) EXPECT_TRUE(buf.view) << buf.node;
      }
      Rng rng(seed);
      // Prefill, then smaller calls: the cache grows, sizes vary below the planned maximum.
      std::vector<Inputs> calls;
      for (int64_t t : {batch, int64_t{1}, batch - 1, int64_t{2}}) calls.push_back(inputs_for(*m, {{"tokens", t}}, rng));
      expect_planned_runs_match(*m, plan, calls);
      if (::testing::Test::HasFailure()) {
        std::cerr << print_model(*m) << print_memory_plan(*m, *plan);
        return;
      }
    }
  }
  EXPECT_GT(in_place, 40) << "in-place reuse should fire often on these graphs";
  EXPECT_GT(views, 40);
  EXPECT_GT(stateful, 5);
}

// ---------------------------------------------------------------- a broken plan

MemoryPlan::Buffer& buffer_of(MemoryPlan& p, const std::string& node) {
  for (MemoryPlan::Buffer& b : p.buffers)
    if (b.node == node && b.output == 0) return b;
  ADD_FAILURE() << "no buffer for " << node;
  return p.buffers.front();
}

TEST(MemoryPlanning, ABrokenPlanIsRejectedAndCorruptsTheResults) {
  Model m("broken");
  GraphBuilder b(m);
  Value x = b.parameter("x", ElementType::f32, {kTokens, 16});
  Value a = b.op(Op::Tanh, {x}, {}, "a");
  Value s = b.op(Op::Sigmoid, {x}, {}, "s");
  b.result(b.op(Op::Subtract, {a, s}, {}, "d"), "out");
  ASSERT_TRUE(b.ok());
  auto good = plan_or_die(m, MemoryPlanOptions{.max_batch = 4});
  ASSERT_TRUE(good);
  Rng rng(9);
  std::vector<Inputs> calls = {inputs_for(m, {{"tokens", 4}}, rng)};
  expect_planned_runs_match(m, good, calls);

  // a and s are both live when the Subtract reads them: put s over a.
  MemoryPlan overlap = *good;
  buffer_of(overlap, "s").offset = buffer_of(overlap, "a").offset;
  buffer_of(overlap, "s").in_place_of.clear();  // it took over x, which stays where it was
  Status st = check_memory_plan(m, overlap);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("share bytes"), std::string::npos) << st.message();
  Evaluator normal(m), planned(m);
  planned.set_memory_plan(std::make_shared<const MemoryPlan>(overlap));
  auto want = normal.run(calls[0]);
  auto got = planned.run(calls[0]);
  ASSERT_TRUE(want.ok() && got.ok()) << got.message();
  EXPECT_FALSE(bitwise_equal("out", (*want)[0], (*got)[0])) << "overlapping live buffers must corrupt the result";

  // A live range cut short: a dies (to the checker and the garbage) before the Subtract reads it.
  MemoryPlan short_lived = *good;
  buffer_of(short_lived, "a").last_step = buffer_of(short_lived, "a").first_step;
  st = check_memory_plan(m, short_lived);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("must be live from step"), std::string::npos) << st.message();
  planned.set_memory_plan(std::make_shared<const MemoryPlan>(short_lived));
  got = planned.run(calls[0]);
  ASSERT_TRUE(got.ok()) << got.message();
  EXPECT_FALSE(bitwise_equal("out", (*want)[0], (*got)[0])) << "garbage must reach the result";
  // Without garbage the same plan happens to work: the garbage is what exposes it.
  planned.set_memory_plan(std::make_shared<const MemoryPlan>(short_lived), /*garbage=*/false);
  got = planned.run(calls[0]);
  ASSERT_TRUE(got.ok()) << got.message();
  EXPECT_TRUE(bitwise_equal("out", (*want)[0], (*got)[0]));
}

// ---------------------------------------------------------------- the pass

TEST(MemoryPlanningPass, StoresThePlanOnTheModelAndChangesNoNode) {
  auto m = chain(false);
  const std::string before = print_model(*m);
  auto pass = create_pass("memory-planning");
  ASSERT_TRUE(pass.ok()) << pass.message();
  auto changed = (*pass)->run(*m);
  ASSERT_TRUE(changed.ok()) << changed.message();
  EXPECT_FALSE(*changed);
  EXPECT_EQ(print_model(*m), before);
  ASSERT_TRUE(m->memory_plan());
  EXPECT_EQ(m->memory_plan()->max_batch, 512);
  EXPECT_TRUE(check_memory_plan(*m, *m->memory_plan()).ok());
  EXPECT_EQ(m->memory_plan()->find("x")->bytes, 512 * 5 * 4);

  auto small = create_memory_planning_pass(MemoryPlanOptions{.max_batch = 2});
  ASSERT_TRUE(small->run(*m).ok());
  EXPECT_EQ(m->memory_plan()->find("x")->bytes, 64);
  // Editing the graph through the model drops the plan.
  GraphBuilder b(*m);
  b.result(b.op(Op::Tanh, {m->find("x")->out()}));
  EXPECT_FALSE(m->memory_plan());
}

TEST(MemoryPlanningPass, PrintsAReadablePlan) {
  auto m = chain(true);
  auto plan = plan_or_die(*m, MemoryPlanOptions{.max_batch = 4});
  ASSERT_TRUE(plan);
  const std::string report = memory_plan_report(*plan);
  EXPECT_NE(report.find("activation arena          256 B  (256 bytes)"), std::string::npos) << report;
  EXPECT_NE(report.find("naive (no reuse)          512 B"), std::string::npos) << report;
  EXPECT_NE(report.find("lower bound"), std::string::npos) << report;
  const std::string text = print_memory_plan(*m, *plan);
  EXPECT_NE(text.find("%a:0 Tanh f32[tokens, 5] @0 +128 live 1..3 in place of %x:0"), std::string::npos) << text;
  EXPECT_NE(text.find("%out:0 Result f32[tokens, 5] @"), std::string::npos) << text;
  EXPECT_EQ(format_byte_size(1536), "1.50 KiB");
  EXPECT_EQ(format_byte_size(64), "64 B");
  EXPECT_EQ(format_byte_size(3 << 20), "3.00 MiB");
}

// ---------------------------------------------------------------- decoders

std::vector<Inputs> decode_calls(const std::vector<int64_t>& lengths) {
  std::vector<Inputs> calls;
  int64_t pos = 0;
  Rng rng(11);
  for (int64_t t : lengths) {
    std::vector<int64_t> ids;
    for (int64_t i = 0; i < t; ++i) ids.push_back(rng.integer(0, demo_config().vocab));
    calls.push_back({{"token_ids", Tensor::from_i64({t}, ids)}, {"pos", Tensor::scalar_i64(pos)}});
    pos += t;
  }
  return calls;
}

TEST(MemoryPlanning, TheDemoDecoderRunsBitwiseOnItsArenaUnfusedAndOptimized) {
  for (bool optimized : {false, true}) {
    SCOPED_TRACE(optimized ? "optimized" : "unfused");
    auto m = build_demo_model();
    ASSERT_TRUE(m.ok()) << m.message();
    if (optimized) {
      PassManager pm(PassManagerOptions{.verify_each = true});
      ASSERT_TRUE(pm.add_pipeline(default_pipeline()).ok());
      ASSERT_TRUE(pm.add("memory-planning").ok());
      auto r = pm.run(**m);
      ASSERT_TRUE(r.ok()) << r.message();
      ASSERT_TRUE((*m)->memory_plan());
      EXPECT_TRUE(check_memory_plan(**m, *(*m)->memory_plan()).ok());
    }
    auto plan = plan_or_die(**m, MemoryPlanOptions{.max_batch = 8});
    ASSERT_TRUE(plan);
    EXPECT_EQ(plan->max_context, demo_config().max_context);
    EXPECT_EQ(plan->state.size(), (*m)->variables().size());
    // 2 layers x (K and V) x 256 positions x 2 KV heads x 8 values x f32.
    EXPECT_EQ(plan->state_bytes, 2 * 2 * 256 * 16 * 4);
    EXPECT_EQ(plan->kv_bytes_per_token, 2 * 2 * 16 * 4);
    int in_place = 0;
    for (const auto& b : plan->buffers) in_place += !b.in_place_of.empty() && !b.view;
    EXPECT_GT(in_place, 0);
    // A prefill of 8 (the batch bound), then decode steps of one token and a chunk of 3.
    expect_planned_runs_match(**m, plan, decode_calls({8, 1, 1, 3, 1}));
  }
}

TEST(MemoryPlanning, TinyLlamaArenaIsWithinTwentyPercentOfTheLowerBound) {
  const std::string dir = testing::make_temp_dir("memplan");
  const std::string path = dir + "/tinyllama.gguf";
  auto shape = synth_shape("tinyllama-1.1b");
  ASSERT_TRUE(shape.ok()) << shape.message();
  Status made = synth_model(*shape, ElementType::q4_0, nullptr, 1, path, nullptr);
  ASSERT_TRUE(made.ok()) << made.message();
  {
    auto im = import_model(path);
    ASSERT_TRUE(im.ok()) << im.message();
    PassManager pm;
    ASSERT_TRUE(pm.add_pipeline(default_pipeline()).ok());
    ASSERT_TRUE(pm.add("memory-planning").ok());
    auto r = pm.run(*im->model);
    ASSERT_TRUE(r.ok()) << r.message();
    ASSERT_TRUE(im->model->memory_plan());
    const MemoryPlan& plan = *im->model->memory_plan();
    EXPECT_TRUE(check_memory_plan(*im->model, plan).ok());
    std::cout << memory_plan_report(plan);
    EXPECT_EQ(plan.max_batch, 512);
    EXPECT_EQ(plan.max_context, shape->context);
    EXPECT_LE(static_cast<double>(plan.arena_bytes), 1.2 * static_cast<double>(plan.lower_bound_bytes));
    // 22 layers x K and V x 4 KV heads x 64 values x f32.
    EXPECT_EQ(plan.kv_bytes_per_token, 22 * 2 * 4 * 64 * 4);
    EXPECT_EQ(plan.state_bytes, plan.kv_bytes_per_token * shape->context);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ingot
