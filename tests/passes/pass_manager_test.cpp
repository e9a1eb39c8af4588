// The pass manager: registry, verify-each, stop-after, print-after, statistics, determinism.
#include "passes/pass_manager.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "frontend/demo_model.h"
#include "ir/builder.h"
#include "ir/verifier.h"
#include "passes/pattern.h"
#include "tests/passes/equivalence.h"

namespace ingot {
namespace {

// x -> Sigmoid twice (a duplicate for cse) -> Add -> Result; plus constants c1 + c2 (for folding).
std::unique_ptr<Model> small_model() {
  auto m = std::make_unique<Model>("small");
  GraphBuilder b(*m);
  Value x = b.parameter("x", ElementType::f32, {2});
  Value a = b.op(Op::Sigmoid, {x}, {}, "a");
  Value s = b.op(Op::Sigmoid, {x}, {}, "b");
  Value c1 = b.constant(std::make_shared<Tensor>(Tensor::from_f32({2}, {1, 2})), "c1");
  Value c2 = b.constant(std::make_shared<Tensor>(Tensor::from_f32({2}, {3, 4})), "c2");
  Value k = b.op(Op::Add, {c1, c2}, {}, "k");
  Value sum = b.op(Op::Add, {a, s}, {}, "sum");
  b.result(b.op(Op::Multiply, {sum, k}, {}, "y"), "out");
  EXPECT_TRUE(b.ok()) << b.status().message();
  return m;
}

// Gives a Sigmoid the wrong output type: the kind of bug verify-each is there to catch.
class BreakTypesPass : public Pass {
 public:
  const char* name() const override { return "break-types"; }
  StatusOr<bool> run(Model& m) override {
    for (auto& n : m.nodes())
      if (n->is(Op::Sigmoid)) {
        n->outputs[0].type = ElementType::i64;
        return true;
      }
    return false;
  }
};

// Renames a node and claims it changed nothing.
class SilentPass : public Pass {
 public:
  const char* name() const override { return "silent"; }
  StatusOr<bool> run(Model& m) override {
    m.find("a")->name = "renamed";
    return false;
  }
};

class FailingPass : public Pass {
 public:
  const char* name() const override { return "failing"; }
  StatusOr<bool> run(Model&) override { return Status::Error("cannot do it"); }
};

TEST(PassRegistry, UnknownPassListsTheKnownOnes) {
  auto p = create_pass("constant-fold");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.message(), "unknown pass 'constant-fold'; known passes: " + known_pass_names());
  for (const char* name : {"constant-folding", "cse", "dce", "simplify"})
    EXPECT_NE(known_pass_names().find(name), std::string::npos) << known_pass_names();
  PassManager pm;
  Status st = pm.add_pipeline({"dce", "nope"});
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("unknown pass 'nope'; known passes: "), std::string::npos);
}

// Pass names given to --passes= in the RUN lines of every lit test.
std::set<std::string> passes_run_by_lit_tests() {
  std::set<std::string> run;
  for (auto& entry : std::filesystem::recursive_directory_iterator(std::filesystem::path(INGOT_SOURCE_DIR) / "tests/lit")) {
    if (entry.path().extension() != ".ir") continue;
    std::ifstream f(entry.path());
    std::string line;
    while (std::getline(f, line)) {
      if (line.find("RUN:") == std::string::npos) continue;
      for (size_t at = line.find("--passes="); at != std::string::npos; at = line.find("--passes=", at + 1)) {
        std::string list = line.substr(at + 9, line.find_first_of(" \t|", at) - at - 9);
        std::stringstream ss(list);
        std::string name;
        while (std::getline(ss, name, ',')) run.insert(name);
      }
    }
  }
  return run;
}

TEST(PassRegistry, EveryPassIsNamedAsRegisteredAndTestedByLit) {
  std::set<std::string> names;
  const std::set<std::string> tested = passes_run_by_lit_tests();
  for (const PassInfo& info : registered_passes()) {
    auto p = create_pass(info.name);
    ASSERT_TRUE(p.ok());
    EXPECT_STREQ((*p)->name(), info.name);
    EXPECT_TRUE(names.insert(info.name).second) << "registered twice: " << info.name;
    EXPECT_TRUE(tested.count(info.name)) << "no lit test under tests/lit runs --passes=" << info.name;
  }
  for (const std::string& p : default_pipeline()) EXPECT_TRUE(names.count(p)) << p;
}

TEST(PassManager, VerifyEachNamesThePassThatBrokeTheModel) {
  auto m = small_model();
  PassManagerOptions o;
  o.verify_each = true;
  PassManager pm(o);
  ASSERT_TRUE(pm.add("cse").ok());
  pm.add(std::make_unique<BreakTypesPass>());
  ASSERT_TRUE(pm.add("dce").ok());
  auto r = pm.run(*m);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("the model fails verification after pass 'break-types'"), std::string::npos) << r.message();
  EXPECT_NE(r.message().find("a"), std::string::npos) << r.message();

  // Without verify-each the broken model goes through unnoticed.
  auto m2 = small_model();
  PassManager quiet;
  quiet.add(std::make_unique<BreakTypesPass>());
  EXPECT_TRUE(quiet.run(*m2).ok());
  EXPECT_FALSE(verify(*m2).ok());
}

TEST(PassManager, VerifyEachCatchesAPassThatHidesItsChanges) {
  auto m = small_model();
  PassManagerOptions o;
  o.verify_each = true;
  PassManager pm(o);
  pm.add(std::make_unique<SilentPass>());
  auto r = pm.run(*m);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.message(), "pass 'silent' reported no change but added 1, removed 1 and changed 1 nodes");
}

TEST(PassManager, PassErrorsNameThePass) {
  auto m = small_model();
  PassManager pm;
  pm.add(std::make_unique<FailingPass>());
  auto r = pm.run(*m);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.message(), "pass 'failing': cannot do it");
}

TEST(PassManager, StopAfter) {
  auto m = small_model();
  PassManagerOptions o;
  o.stop_after = "cse";
  o.stats = true;
  PassManager pm(o);
  ASSERT_TRUE(pm.add_pipeline({"constant-folding", "cse", "simplify", "dce"}).ok());
  auto r = pm.run(*m);
  ASSERT_TRUE(r.ok()) << r.message();
  ASSERT_EQ(pm.stats().size(), 2u);
  EXPECT_EQ(pm.stats()[0].pass, "constant-folding");
  EXPECT_EQ(pm.stats()[1].pass, "cse");

  PassManagerOptions bad;
  bad.stop_after = "cse";
  PassManager pm2(bad);
  ASSERT_TRUE(pm2.add("dce").ok());
  auto r2 = pm2.run(*m);
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.message(), "stop-after: pass 'cse' is not in the pipeline dce");
}

TEST(PassManager, PrintAfterOnePassOrAll) {
  auto m = small_model();
  std::ostringstream out;
  PassManagerOptions o;
  o.print_after = "cse";
  o.print_stream = &out;
  PassManager pm(o);
  ASSERT_TRUE(pm.add_pipeline({"cse", "dce"}).ok());
  ASSERT_TRUE(pm.run(*m).ok());
  // dce finds nothing after cse: the IR printed after cse is the final one.
  EXPECT_EQ(out.str(), "// ----- IR after cse -----\n" + print_model(*m));

  auto m2 = small_model();
  std::ostringstream all;
  o.print_after = "all";
  o.print_stream = &all;
  PassManager pm2(o);
  ASSERT_TRUE(pm2.add_pipeline({"cse", "constant-folding", "dce"}).ok());
  ASSERT_TRUE(pm2.run(*m2).ok());
  std::string s = all.str();
  size_t a = s.find("// ----- IR after cse -----\nmodel \"small\" {\n");
  size_t b = s.find("// ----- IR after constant-folding -----\n");
  size_t c = s.find("// ----- IR after dce -----\n");
  EXPECT_TRUE(a == 0 && b != std::string::npos && c != std::string::npos && a < b && b < c) << s;

  PassManagerOptions bad;
  bad.print_after = "simplify";
  PassManager pm3(bad);
  ASSERT_TRUE(pm3.add("dce").ok());
  auto r = pm3.run(*m2);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.message(), "print-after: pass 'simplify' is not in the pipeline dce");
}

TEST(PassManager, StatsCountAddedRemovedAndChangedNodes) {
  auto m = small_model();
  PassManagerOptions o;
  o.stats = true;
  PassManager pm(o);
  ASSERT_TRUE(pm.add_pipeline({"cse", "constant-folding", "dce"}).ok());
  auto r = pm.run(*m);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(*r);
  ASSERT_EQ(pm.stats().size(), 3u);
  const PassStats& cse = pm.stats()[0];
  // Sigmoid 'b' merges into 'a': one node removed, 'sum' now reads 'a' twice.
  EXPECT_EQ(cse.nodes_before, 9);
  EXPECT_EQ(cse.nodes_after, 8);
  EXPECT_EQ(cse.added, 0);
  EXPECT_EQ(cse.removed, 1);
  EXPECT_EQ(cse.changed, 1);
  EXPECT_TRUE(cse.reported_change);
  const PassStats& fold = pm.stats()[1];
  // c1 + c2 becomes one Constant named 'k'; the Add and both inputs go; 'y' reads the new node.
  EXPECT_EQ(fold.added, 1);
  EXPECT_EQ(fold.removed, 3);
  EXPECT_EQ(fold.changed, 1);
  EXPECT_EQ(fold.nodes_after, 6);
  const PassStats& dce = pm.stats()[2];
  EXPECT_FALSE(dce.reported_change);
  EXPECT_EQ(dce.added + dce.removed + dce.changed, 0);
  EXPECT_GE(cse.ms, 0.0);
  std::string report = pm.stats_report();
  EXPECT_NE(report.find("constant-folding"), std::string::npos) << report;
  EXPECT_NE(report.find("total"), std::string::npos) << report;
  EXPECT_EQ(m->find("k")->op_name(), "Constant");
  EXPECT_EQ(m->find("k")->constant->to_f32_vector(), (std::vector<float>{4, 6}));
}

TEST(PassManager, DebugMatchOptionReportsPatternAttempts) {
  Model m;
  GraphBuilder b(m);
  Value x = b.parameter("x", ElementType::f32, {2});
  b.result(b.op(Op::Multiply, {x, b.scalar_f32(1.0f)}, {}, "m"), "out");
  std::ostringstream log;
  PassManagerOptions o;
  o.debug_match = &log;
  PassManager pm(o);
  ASSERT_TRUE(pm.add("simplify").ok());
  ASSERT_TRUE(pm.run(m).ok());
  EXPECT_NE(log.str().find("[match] mul-one at Multiply 'm': matched, rewritten"), std::string::npos) << log.str();
  EXPECT_NE(match_debug_stream(), &log) << "the option applies during run() only";
}

TEST(PassManager, DefaultPipelineIsDeterministicAndIdempotentOnTheDemo) {
  auto a = build_demo_model();
  auto b = build_demo_model();
  ASSERT_TRUE(a.ok() && b.ok());
  std::string imported = print_model(**a);
  std::string ta = testing::run_and_print(**a, default_pipeline());
  std::string tb = testing::run_and_print(**b, default_pipeline());
  EXPECT_EQ(ta, tb);
  EXPECT_NE(ta, imported) << "the default pipeline does something on the demo";
  // A second run finds nothing more to do.
  PassManager again;
  ASSERT_TRUE(again.add_pipeline(default_pipeline()).ok());
  auto r = again.run(**a);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(*r);
  EXPECT_EQ(print_model(**a), ta);
  // The optimized text reads back to itself.
  auto parsed = parse_model(ta);
  ASSERT_TRUE(parsed.ok()) << parsed.message();
  EXPECT_EQ(print_model(**parsed), ta);
}

// on_pass sees every pass with the names of the nodes it added, removed and changed, taken from
// the model before and after it: `ingotc viz` draws its per-pass diff from these.
TEST(PassManager, OnPassNamesTheNodesEachPassAddedRemovedAndChanged) {
  auto m = build_demo_model();
  ASSERT_TRUE(m.ok());
  std::set<std::string> names;
  for (auto& n : (*m)->nodes()) names.insert(n->name);
  std::vector<std::string> seen;
  int fused_rms = 0;
  PassManagerOptions o;
  o.on_pass = [&](const PassStats& st, const Model& after) {
    seen.push_back(st.pass);
    std::set<std::string> now;
    for (auto& n : after.nodes()) now.insert(n->name);
    EXPECT_EQ(st.added, static_cast<int>(st.added_nodes.size())) << st.pass;
    EXPECT_EQ(st.removed, static_cast<int>(st.removed_nodes.size())) << st.pass;
    EXPECT_EQ(st.changed, static_cast<int>(st.changed_nodes.size())) << st.pass;
    EXPECT_EQ(st.nodes_after, static_cast<int>(after.nodes().size()));
    EXPECT_EQ(st.nodes_before - st.removed + st.added, st.nodes_after) << st.pass;
    for (const std::string& a : st.added_nodes) EXPECT_TRUE(now.count(a)) << st.pass << " added " << a;
    for (const std::string& r : st.removed_nodes) EXPECT_TRUE(names.count(r)) << st.pass << " removed " << r << ", which did not exist";
    for (const std::string& c : st.changed_nodes) EXPECT_TRUE(now.count(c) && names.count(c)) << st.pass << " changed " << c;
    if (st.pass == "fuse-rms-norm") {
      for (const std::string& a : st.added_nodes) fused_rms += after.find(a) && after.find(a)->is(Op::RMSNorm);
      EXPECT_GT(st.removed, st.added) << "each RMSNorm replaces several primitive ops";
    }
    names = now;
  };
  PassManager pm(o);
  ASSERT_TRUE(pm.add_pipeline(default_pipeline()).ok());
  ASSERT_TRUE(pm.run(**m).ok());
  EXPECT_EQ(seen, default_pipeline());
  EXPECT_GT(fused_rms, 0) << "fuse-rms-norm added RMSNorm nodes";
}

}  // namespace
}  // namespace ingot
