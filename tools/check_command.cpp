// ingotc check BUNDLE MODEL: runs a compiled bundle's kernels and the reference evaluator side by
// side on the same tokens and reports, for every step of the schedule, how far the kernel's output
// is from the reference's. The model is re-imported with the options recorded in the bundle's
// provenance (activation numerics, KV type, context), so both run the same optimized graph; node
// names tie a schedule step to its graph node.
//
// The kernels are fed the reference's own greedy tokens (teacher forcing), so one early flip does
// not make every later step incomparable. With --tolerance 0 and no tier forced, every kernel set
// of the bundle this CPU runs is checked against the same reference run: tiers differ only in
// machine code, so each must be exact.
#include "tools/check_command.h"
#include "tools/compile_pipeline.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <thread>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "base/parse.h"
#include "frontend/importer.h"
#include "ir/evaluator.h"
#include "passes/pass_manager.h"
#include "passes/quant/quantize_weights.h"
#include "runtime/engine.h"
#include "tools/compile_command.h"
#include "tools/ingotc_cli.h"

namespace ingot {

using cli::fail;
using cli::option_value;
using cli::usage_error;

namespace {

struct Difference {
  double nmse = 0;     // sum (kernel - reference)^2 / sum reference^2
  double max_abs = 0;  // largest |kernel - reference|
  bool nonfinite = false;
};

Difference compare(const float* got, const std::vector<float>& want) {
  double err = 0, norm = 0;
  Difference d;
  for (size_t i = 0; i < want.size(); ++i) {
    if (!std::isfinite(got[i]) && std::isfinite(want[i])) d.nonfinite = true;
    const double e = static_cast<double>(got[i]) - want[i];
    err += e * e;
    norm += static_cast<double>(want[i]) * want[i];
    d.max_abs = std::max(d.max_abs, std::fabs(e));
  }
  d.nmse = norm > 0 ? err / norm : err;
  return d;
}

struct NodeSummary {
  std::string node, op;
  Difference worst;     // over all steps (by NMSE)
  int worst_step = -1;
  double nmse_sum = 0;
  int steps = 0;
};

int argmax(const std::vector<float>& v) {
  return static_cast<int>(std::max_element(v.begin(), v.end()) - v.begin());
}

}  // namespace

int cmd_check(const std::vector<std::string>& args) {
  std::string bundle_path, model_path, prompt = "Once upon a time";
  int64_t n = 16;
  int threads = 1;
  double tolerance = 1e-6;
  bool all_steps = false;
  std::string tier;  // --tier: check this kernel set only
  QuantCliOptions quant;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string error, v;
    if (parse_quant_option(args, i, quant, &error)) {
      if (!error.empty()) return usage_error("check: " + error);
      if (args[i].rfind("--act-quant", 0) == 0) return usage_error("check: --act-quant comes from the bundle's provenance");
    } else if (option_value(args, i, "-p", &prompt, &error) || option_value(args, i, "--prompt", &prompt, &error)) {
      if (!error.empty()) return usage_error("check: " + error);
    } else if (std::string name; option_value(args, i, name = "-n", &v, &error) ||
                                 option_value(args, i, name = "--threads", &v, &error) ||
                                 option_value(args, i, name = "--tolerance", &v, &error)) {
      if (!error.empty()) return usage_error("check: " + error);
      // Range-checked (base/parse.h): integers never pass through a float.
      if (name == "-n") {
        auto x = parse_int(name, v, 0, std::numeric_limits<int32_t>::max());
        if (!x.ok()) return usage_error("check: " + x.message());
        n = *x;
      } else if (name == "--threads") {
        auto x = parse_int(name, v, 1, kMaxSessionThreads);
        if (!x.ok()) return usage_error("check: " + x.message());
        threads = static_cast<int>(*x);
        const int hc = static_cast<int>(std::thread::hardware_concurrency());
        if (hc > 0 && threads > hc) {
          std::fprintf(stderr, "ingotc: note: check: --threads %d is more than the %d hardware threads of this machine; using %d\n",
                       threads, hc, hc);
          threads = hc;
        }
      } else {
        auto x = parse_double(name, v, 0, 1e30);
        if (!x.ok()) return usage_error("check: " + x.message());
        tolerance = *x;
      }
    } else if (option_value(args, i, "--tier", &tier, &error)) {
      if (!error.empty()) return usage_error("check: " + error);
      if (tier.empty()) return usage_error("check: --tier needs a tier name");
    } else if (args[i] == "--all-steps") {
      all_steps = true;
    } else if (!args[i].empty() && args[i][0] == '-') {
      return usage_error("check: unknown option '" + args[i] + "'");
    } else if (bundle_path.empty()) {
      bundle_path = args[i];
    } else if (model_path.empty()) {
      model_path = args[i];
    } else {
      return usage_error("check: give one bundle and one model");
    }
  }
  if (bundle_path.empty() || model_path.empty()) return usage_error("check: needs BUNDLE and MODEL");

  // The kernel set the runtime picks, and with --tolerance 0 every other one this CPU runs.
  std::vector<std::unique_ptr<Engine>> engines;
  {
    auto loaded = Engine::load(bundle_path, EngineOptions{.tier = tier});
    if (!loaded.ok()) return fail(loaded.status());
    engines.push_back(std::move(*loaded));
    const char* forced_by_env = std::getenv("INGOT_TIER");
    const Bundle& b = engines[0]->bundle();
    if (tolerance == 0 && tier.empty() && !(forced_by_env && *forced_by_env)) {
      for (int i = 0; i < static_cast<int>(b.kernel_sets().size()); ++i) {
        if (i == b.chosen_kernel_set() || !b.check_cpu(i).empty()) continue;
        auto other = Engine::load(bundle_path, EngineOptions{.tier = b.kernel_sets()[size_t(i)].tier});
        if (!other.ok()) return fail(other.status());
        engines.push_back(std::move(*other));
      }
      std::sort(engines.begin(), engines.end(), [](const auto& x, const auto& y) {
        return x->bundle().chosen_kernel_set() < y->bundle().chosen_kernel_set();
      });
    }
  }
  const Engine* engine = engines[0].get();  // what every tier shares: manifest, schedule, tokenizer
  const pb::Provenance& prov = engine->bundle().manifest().provenance();
  if (!engine->tokenizer()) return fail(Status::Error(bundle_path + ": the bundle has no tokenizer"));

  ImportOptions opts;
  opts.act_quant = prov.act_quant().empty() ? "none" : prov.act_quant();
  opts.kv_type = prov.kv_type() == "f16" ? ElementType::f16 : ElementType::f32;
  opts.max_context = engine->max_context();
  opts.all_logits = engine->all_logits();
  auto recipe = QuantRecipe::parse(quant.quant, quant.overrides);
  if (!recipe.ok()) return usage_error("check: " + recipe.message());
  if (recipe->str() != prov.quantization())
    return fail(Status::Error(bundle_path + " was compiled with the weight recipe '" + prov.quantization() +
                              "', but this check uses '" + recipe->str() + "': pass the same --quant options"));
  // The compiler's own phases, with the passes the bundle's provenance says ran.
  CompileState state;
  state.path = model_path;
  state.import = opts;
  state.quant = quant;
  for (const std::string& p : prov.passes())
    if (p != "memory-planning") state.passes.push_back(p);
  CompilePipeline pipeline(PhaseOptions{.verify_each = true});
  auto ran = pipeline.run(state, "optimize");
  if (!ran.ok()) return fail(ran.status());
  ImportedModel* im = &state.im;

  // The steps of the schedule must be the graph's nodes, by name.
  std::map<std::string, const Node*> by_name;
  for (auto& node : im->model->nodes()) by_name[node->name] = node.get();
  for (const Engine::Call& c : engine->calls())
    if (!by_name.count(c.node))
      return fail(Status::Error(bundle_path + ": schedule step '" + c.node + "' is not a node of " + model_path +
                                "'s optimized graph; was the bundle compiled from this model with these options?"));

  std::vector<int32_t> prompt_ids = engine->tokenizer()->encode(prompt, true);
  if (prompt_ids.empty()) return fail(Status::Error("the prompt encodes to no tokens"));
  if (static_cast<int64_t>(prompt_ids.size()) + n > engine->max_context())
    return fail(Status::Error("the prompt and -n exceed the bundle's context of " + std::to_string(engine->max_context())));
  // Per tier: a session, each step's difference this call, and the summaries.
  struct TierRun {
    const Engine* engine = nullptr;
    std::string tier;
    std::unique_ptr<Session> session;
    std::vector<NodeSummary> nodes;
    std::vector<Difference> step_diffs;
    int agree = 0;
    bool bad = false;
  };
  std::vector<TierRun> runs(engines.size());
  for (size_t t = 0; t < engines.size(); ++t) {
    TierRun& run = runs[t];
    run.engine = engines[t].get();
    run.tier = run.engine->tier().empty() ? "(no kernels)" : run.engine->tier();
    auto created = Session::create(*run.engine, threads);
    if (!created.ok()) return fail(created.status());
    run.session = std::move(*created);
    run.nodes.resize(run.engine->calls().size());
    for (size_t s = 0; s < run.nodes.size(); ++s) {
      run.nodes[s].node = run.engine->calls()[s].node;
      run.nodes[s].op = std::string(by_name[run.nodes[s].node]->op_name());
    }
    run.step_diffs.resize(run.engine->calls().size());
  }

  Evaluator ev(*im->model);
  std::map<std::string, std::vector<float>> reference;  // node -> output 0 of this step
  ev.set_observer([&](const Node& node, const std::vector<Tensor>& outs) {
    if (!outs.empty() && (outs[0].type() == ElementType::f32)) reference[node.name] = outs[0].to_f32_vector();
  });
  for (TierRun& run : runs)
    run.session->set_step_observer([&reference, &run](size_t step, const Engine::Call& c, const uint8_t* arena, int64_t) {
      auto it = reference.find(c.node);
      if (it == reference.end() || c.args.empty()) return;
      run.step_diffs[step] = compare(reinterpret_cast<const float*>(arena + c.args[0].offset), it->second);
    });

  std::string tier_names;
  for (const TierRun& run : runs) tier_names += (tier_names.empty() ? "" : ", ") + run.tier;
  const bool several = runs.size() > 1;
  std::printf("check %s against the reference evaluator on %s (act-quant %s, kv %s, %d thread%s; tier%s %s)\n",
              bundle_path.c_str(), model_path.c_str(), opts.act_quant.c_str(),
              prov.kv_type().empty() ? "f32" : prov.kv_type().c_str(), threads, threads == 1 ? "" : "s", several ? "s" : "",
              tier_names.c_str());
  std::printf("%-6s %s%-7s %-12s %-26s %-12s %s\n", "call", several ? "tier       " : "", "tokens", "worst NMSE", "at node",
              "logits NMSE", "argmax kernel/reference (margin)");
  std::vector<int32_t> feed = prompt_ids;
  int64_t pos = 0;
  int calls = 0;
  for (int64_t call = 0; call <= n; ++call) {
    reference.clear();
    std::vector<int64_t> wide(feed.begin(), feed.end());
    auto out = ev.run({{"token_ids", Tensor::from_i64({static_cast<int64_t>(wide.size())}, wide)}, {"pos", Tensor::scalar_i64(pos)}});
    if (!out.ok()) return fail(out.status());
    // One kernel call per evaluator call: prefill the whole prompt at once, if the bundle allows.
    if (static_cast<int64_t>(feed.size()) > engine->max_batch())
      return fail(Status::Error("the prompt (" + std::to_string(feed.size()) + " tokens) exceeds the bundle's --max-batch " +
                                std::to_string(engine->max_batch())));
    pos += static_cast<int64_t>(feed.size());
    std::vector<float> want = (*out)[0].to_f32_vector();
    want.erase(want.begin(), want.end() - engine->vocab());
    const int r = argmax(want);
    float second = -INFINITY;
    for (size_t i = 0; i < want.size(); ++i)
      if (static_cast<int>(i) != r) second = std::max(second, want[i]);
    ++calls;

    for (TierRun& run : runs) {
      std::fill(run.step_diffs.begin(), run.step_diffs.end(), Difference{});
      if (Status st = run.session->prefill(feed); !st.ok()) return fail(st);
      std::vector<float> got(run.session->logits().begin(), run.session->logits().end());
      const Difference logits = compare(got.data(), want);
      const int k = argmax(got);
      run.agree += k == r;
      size_t worst = 0;
      for (size_t s = 0; s < run.step_diffs.size(); ++s) {
        NodeSummary& ns = run.nodes[s];
        const Difference& d = run.step_diffs[s];
        ns.nmse_sum += d.nmse;
        ++ns.steps;
        if (ns.worst_step < 0 || d.nmse > ns.worst.nmse || d.nonfinite) {
          ns.worst = d;
          ns.worst_step = static_cast<int>(call);
        }
        if (d.nmse > run.step_diffs[worst].nmse) worst = s;
        run.bad |= d.nonfinite;
      }
      std::printf("%-6lld %s%-7zu %-12.3g %-26s %-12.3g %d/%d (%.4f)%s\n", static_cast<long long>(call),
                  several ? (run.tier + std::string(11 - std::min<size_t>(10, run.tier.size()), ' ')).c_str() : "",
                  feed.size(), run.step_diffs.empty() ? 0.0 : run.step_diffs[worst].nmse,
                  run.nodes.empty() ? "" : run.nodes[worst].node.c_str(), logits.nmse, k, r, want[r] - second,
                  k == r ? "" : "  <- differs");
      if (all_steps) {
        for (size_t s = 0; s < run.step_diffs.size(); ++s)
          std::printf("    %-4zu %-13s %-26s NMSE %-10.3g max |diff| %.3g\n", s, run.nodes[s].op.c_str(),
                      run.nodes[s].node.c_str(), run.step_diffs[s].nmse, run.step_diffs[s].max_abs);
      }
    }
    feed = {r};  // teacher forcing: the reference's choice
  }

  bool bad = false;
  std::string failed;
  for (TierRun& run : runs) {
    std::printf("\nper schedule step%s, over %d calls (NMSE: sum of squared differences / sum of squares):\n",
                several ? (" of tier " + run.tier).c_str() : "", calls);
    std::printf("  %-4s %-13s %-28s %-12s %-12s %-12s %s\n", "step", "op", "node", "mean NMSE", "worst NMSE", "max |diff|", "at call");
    for (size_t s = 0; s < run.nodes.size(); ++s) {
      const NodeSummary& ns = run.nodes[s];
      const bool over = ns.worst.nmse > tolerance || ns.worst.nonfinite;
      run.bad |= over;
      std::printf("  %-4zu %-13s %-28s %-12.3g %-12.3g %-12.3g %d%s\n", s, ns.op.c_str(), ns.node.c_str(),
                  ns.steps ? ns.nmse_sum / ns.steps : 0.0, ns.worst.nmse, ns.worst.max_abs, ns.worst_step,
                  ns.worst.nonfinite ? "  NON-FINITE" : over ? "  over tolerance" : "");
    }
    bad |= run.bad;
    if (run.bad) failed += (failed.empty() ? "" : ", ") + run.tier;
  }
  std::printf("\n");
  for (const TierRun& run : runs)
    std::printf("%sargmax agrees on %d of %d calls; tolerance %.3g NMSE per step: %s\n",
                several ? ("tier " + run.tier + ": ").c_str() : "", run.agree, calls, tolerance, run.bad ? "EXCEEDED" : "ok");
  if (several)
    std::printf("%zu tiers checked (%s): %s\n", runs.size(), tier_names.c_str(),
                bad ? ("EXCEEDED on " + failed).c_str() : "ok");
  return bad ? 3 : 0;
}

}  // namespace ingot
