// ingotc check BUNDLE MODEL: runs a compiled bundle's kernels and the reference evaluator side by
// side on the same tokens and reports, for every step of the schedule, how far the kernel's output
// is from the reference's. The model is re-imported with the options recorded in the bundle's
// provenance (activation numerics, KV type, context), so both run the same optimized graph; node
// names tie a schedule step to its graph node.
//
// The kernels are fed the reference's own greedy tokens (teacher forcing), so one early flip does
// not make every later step incomparable.
#include "tools/check_command.h"
#include "tools/compile_pipeline.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

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
      char* end = nullptr;
      const double x = std::strtod(v.c_str(), &end);
      if (end == v.c_str() || *end != '\0' || !(x >= 0) || (name != "--tolerance" && x != std::floor(x)))
        return usage_error("check: " + name + " needs a " + (name == "--tolerance" ? "non-negative number" : "whole number") +
                           ", got '" + v + "'");
      if (name == "-n") n = static_cast<int64_t>(x);
      else if (name == "--threads") threads = std::max(1, static_cast<int>(x));
      else tolerance = x;
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

  auto loaded = Engine::load(bundle_path);
  if (!loaded.ok()) return fail(loaded.status());
  std::unique_ptr<Engine> engine = std::move(*loaded);
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
  auto created = Session::create(*engine, threads);
  if (!created.ok()) return fail(created.status());
  std::unique_ptr<Session> session = std::move(*created);

  Evaluator ev(*im->model);
  std::map<std::string, std::vector<float>> reference;  // node -> output 0 of this step
  ev.set_observer([&](const Node& node, const std::vector<Tensor>& outs) {
    if (!outs.empty() && (outs[0].type() == ElementType::f32)) reference[node.name] = outs[0].to_f32_vector();
  });
  std::vector<NodeSummary> nodes(engine->calls().size());
  for (size_t s = 0; s < nodes.size(); ++s) {
    nodes[s].node = engine->calls()[s].node;
    nodes[s].op = std::string(by_name[nodes[s].node]->op_name());
  }
  std::vector<Difference> step_diffs(engine->calls().size());
  session->set_step_observer([&](size_t step, const Engine::Call& c, const uint8_t* arena, int64_t) {
    auto it = reference.find(c.node);
    if (it == reference.end() || c.args.empty()) return;
    step_diffs[step] = compare(reinterpret_cast<const float*>(arena + c.args[0].offset), it->second);
  });

  std::printf("check %s against the reference evaluator on %s (act-quant %s, kv %s, %d thread%s)\n", bundle_path.c_str(),
              model_path.c_str(), opts.act_quant.c_str(), prov.kv_type().empty() ? "f32" : prov.kv_type().c_str(), threads,
              threads == 1 ? "" : "s");
  std::printf("%-6s %-7s %-12s %-26s %-12s %s\n", "call", "tokens", "worst NMSE", "at node", "logits NMSE", "argmax kernel/reference (margin)");
  std::vector<int32_t> feed = prompt_ids;
  int64_t pos = 0;
  int agree = 0, calls = 0;
  bool bad = false;
  for (int64_t call = 0; call <= n; ++call) {
    reference.clear();
    std::vector<int64_t> wide(feed.begin(), feed.end());
    auto out = ev.run({{"token_ids", Tensor::from_i64({static_cast<int64_t>(wide.size())}, wide)}, {"pos", Tensor::scalar_i64(pos)}});
    if (!out.ok()) return fail(out.status());
    // One kernel call per evaluator call: prefill the whole prompt at once, if the bundle allows.
    if (static_cast<int64_t>(feed.size()) > engine->max_batch())
      return fail(Status::Error("the prompt (" + std::to_string(feed.size()) + " tokens) exceeds the bundle's --max-batch " +
                                std::to_string(engine->max_batch())));
    std::fill(step_diffs.begin(), step_diffs.end(), Difference{});
    if (Status st = session->prefill(feed); !st.ok()) return fail(st);
    pos += static_cast<int64_t>(feed.size());

    std::vector<float> want = (*out)[0].to_f32_vector();
    want.erase(want.begin(), want.end() - engine->vocab());
    std::vector<float> got(session->logits().begin(), session->logits().end());
    const Difference logits = compare(got.data(), want);
    const int k = argmax(got), r = argmax(want);
    float second = -INFINITY;
    for (size_t i = 0; i < want.size(); ++i)
      if (static_cast<int>(i) != r) second = std::max(second, want[i]);
    agree += k == r;
    ++calls;

    size_t worst = 0;
    for (size_t s = 0; s < step_diffs.size(); ++s) {
      NodeSummary& ns = nodes[s];
      const Difference& d = step_diffs[s];
      ns.nmse_sum += d.nmse;
      ++ns.steps;
      if (ns.worst_step < 0 || d.nmse > ns.worst.nmse || d.nonfinite) {
        ns.worst = d;
        ns.worst_step = static_cast<int>(call);
      }
      if (d.nmse > step_diffs[worst].nmse) worst = s;
      bad |= d.nonfinite;
    }
    std::printf("%-6lld %-7zu %-12.3g %-26s %-12.3g %d/%d (%.4f)%s\n", static_cast<long long>(call), feed.size(),
                step_diffs[worst].nmse, nodes[worst].node.c_str(), logits.nmse, k, r, want[r] - second, k == r ? "" : "  <- differs");
    if (all_steps) {
      for (size_t s = 0; s < step_diffs.size(); ++s)
        std::printf("    %-4zu %-13s %-26s NMSE %-10.3g max |diff| %.3g\n", s, nodes[s].op.c_str(), nodes[s].node.c_str(),
                    step_diffs[s].nmse, step_diffs[s].max_abs);
    }
    feed = {r};  // teacher forcing: the reference's choice
  }

  std::printf("\nper schedule step, over %d calls (NMSE: sum of squared differences / sum of squares):\n", calls);
  std::printf("  %-4s %-13s %-28s %-12s %-12s %-12s %s\n", "step", "op", "node", "mean NMSE", "worst NMSE", "max |diff|", "at call");
  for (size_t s = 0; s < nodes.size(); ++s) {
    const NodeSummary& ns = nodes[s];
    const bool over = ns.worst.nmse > tolerance || ns.worst.nonfinite;
    bad |= over;
    std::printf("  %-4zu %-13s %-28s %-12.3g %-12.3g %-12.3g %d%s\n", s, ns.op.c_str(), ns.node.c_str(),
                ns.steps ? ns.nmse_sum / ns.steps : 0.0, ns.worst.nmse, ns.worst.max_abs, ns.worst_step,
                ns.worst.nonfinite ? "  NON-FINITE" : over ? "  over tolerance" : "");
  }
  std::printf("\nargmax agrees on %d of %d calls; tolerance %.3g NMSE per step: %s\n", agree, calls, tolerance,
              bad ? "EXCEEDED" : "ok");
  return bad ? 3 : 0;
}

}  // namespace ingot
