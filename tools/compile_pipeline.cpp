#include "tools/compile_pipeline.h"

#include <algorithm>
#include <cstdio>
#include <unistd.h>
#include <chrono>
#include <cstdio>
#include <iostream>

#include "frontend/hf_config.h"
#include "ir/verifier.h"
#include "passes/memory_planning.h"
#include "passes/pass_manager.h"
#include "tools/ingotc_cli.h"
#include "base/clock.h"

namespace ingot {
namespace {

using cli::ends_with;
using cli::option_value;

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const std::string& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

// ---------------------------------------------------------------- the graph phases

StatusOr<std::string> run_import(CompileState& s) {
  if (ends_with(s.path, ".ir")) {
    INGOT_ASSIGN_OR_RETURN(std::string text, hf::read_file(s.path));
    INGOT_ASSIGN_OR_RETURN(s.im.model, parse_model(text, s.path));
    s.im.format = "ir";
    s.im.path = s.path;
  } else {
    INGOT_ASSIGN_OR_RETURN(s.im, import_model(s.path, s.import));
  }
  return std::to_string(s.im.model->nodes().size()) + " nodes";
}

StatusOr<std::string> run_quantize(CompileState& s) {
  INGOT_ASSIGN_OR_RETURN(QuantRecipe recipe, QuantRecipe::parse(s.quant.quant, s.quant.overrides));
  s.quantizer = std::make_unique<QuantizeWeightsPass>(recipe);
  if (s.progress)
    s.quantizer->set_progress([&s](int64_t done, int64_t total) {
      s.progress(static_cast<double>(done), static_cast<double>(total), "B");
    });
  INGOT_RETURN_IF_ERROR(s.quantizer->run(s.model()).status());
  int64_t before = 0, after = 0, converted = 0;
  for (auto& d : s.quantizer->decisions()) {
    before += d.bytes_before;
    after += d.bytes_after;
    converted += d.from != d.to;
  }
  for (auto& d : s.quantizer->decisions())
    if (!d.note.empty() && d.from != d.to) std::fprintf(stderr, "  note: %s: %s\n", d.tensor.c_str(), d.note.c_str());
  char sizes[96];
  std::snprintf(sizes, sizeof(sizes), "%.2f MiB -> %.2f MiB", static_cast<double>(before) / (1 << 20),
                static_cast<double>(after) / (1 << 20));
  return std::to_string(converted) + " of " + std::to_string(s.quantizer->decisions().size()) +
         " weights converted, " + sizes;
}

StatusOr<std::string> run_plan_memory(CompileState& s) {
  INGOT_ASSIGN_OR_RETURN(MemoryPlan plan, plan_memory(s.model(), MemoryPlanOptions{.max_batch = s.max_batch}));
  INGOT_RETURN_IF_ERROR(check_memory_plan(s.model(), plan));
  s.model().set_memory_plan(std::make_shared<MemoryPlan>(plan));
  s.plan = std::move(plan);
  return "arena " + format_byte_size(s.plan->arena_bytes) + ", KV " + format_byte_size(s.plan->state_bytes);
}

}  // namespace

const std::vector<std::string>& compile_phases() {
  static const std::vector<std::string> phases = {"import", "quantize", "optimize", "plan-memory",
                                                  "kernels", "schedule", "bundle"};
  return phases;
}

bool parse_phase_option(const std::vector<std::string>& args, size_t& i, PhaseOptions& o, std::string* error) {
  const std::string& a = args[i];
  if (a == "--stats") o.stats = true;
  else if (a == "--verify-each") o.verify_each = true;
  else if (a == "--debug-match") o.debug_match = true;
  else if (option_value(args, i, "--print-after", &o.print_after, error)) {}
  else if (option_value(args, i, "--stop-after", &o.stop_after, error)) {}
  else return false;
  return true;
}

CompilePipeline::CompilePipeline(PhaseOptions options) : options_(std::move(options)) {
  add({"import", [](const CompileState& s) { return "import " + s.path; }, run_import});
  add({"quantize",
       [](const CompileState& s) {
         const std::string& aq = s.im.config.act_quant;
         auto recipe = QuantRecipe::parse(s.quant.quant, s.quant.overrides);
         return "quantize weights (" + (recipe.ok() ? recipe->str() : s.quant.quant) +
                ", activations " + (aq == "none" ? "f32" : aq) + (s.quant.act_quant == "auto" ? " by default" : "") + ")";
       },
       run_quantize});
  add({"optimize", [](const CompileState& s) { return "optimize (" + std::to_string(s.passes.size()) + " passes)"; },
       [this](CompileState& s) -> StatusOr<std::string> {
         // Pass-level options go to the pass manager; phase names are this pipeline's business.
         auto is_pass = [&](const std::string& n) { return std::find(s.passes.begin(), s.passes.end(), n) != s.passes.end(); };
         PassManagerOptions pm_opts;
         pm_opts.verify_each = options_.verify_each;
         pm_opts.print_after = options_.print_after == "all" || is_pass(options_.print_after) ? options_.print_after : "";
         pm_opts.print_stream = &std::cerr;
         pm_opts.print_options = options_.print;
         pm_opts.stop_after = is_pass(options_.stop_after) ? options_.stop_after : "";
         pm_opts.stats = options_.stats;
         pm_opts.debug_match = options_.debug_match ? &std::cerr : nullptr;
         if (options_.on_step)
           pm_opts.on_pass = [this](const PassStats& st, const Model& m) { options_.on_step("optimize", st.pass, st, m); };
         PassManager pm(pm_opts);
         INGOT_RETURN_IF_ERROR(pm.add_pipeline(s.passes));
         auto changed = pm.run(s.model());
         for (const std::string& p : pm.ran()) s.ran.push_back(p);
         if (!changed.ok()) return changed.status();
         if (options_.stats) s.pass_stats = pm.stats_report();
         return std::to_string(s.model().nodes().size()) + " nodes";
       }});
  add({"plan-memory",
       [](const CompileState& s) { return "plan memory (max batch " + std::to_string(s.max_batch) + ")"; },
       run_plan_memory});
}

Status CompilePipeline::check_options(CompileState& state, const std::string& last) const {
  if (state.passes.empty()) state.passes = default_pipeline();
  auto last_it = std::find_if(phases_.begin(), phases_.end(), [&](const Phase& p) { return p.name == last; });
  INGOT_ASSERT(last_it != phases_.end(), "a command runs up to one of its own phases");
  const size_t count = static_cast<size_t>(last_it - phases_.begin()) + 1;
  // Names in the options must exist: a typo would otherwise print nothing or run everything.
  std::vector<std::string> phase_names;
  for (size_t i = 0; i < count; ++i) phase_names.push_back(phases_[i].name);
  auto known = [&](const std::string& n) {
    return std::find(phase_names.begin(), phase_names.end(), n) != phase_names.end() ||
           std::find(state.passes.begin(), state.passes.end(), n) != state.passes.end();
  };
  for (auto [option, value] : {std::pair{"--stop-after", options_.stop_after}, {"--print-after", options_.print_after}})
    if (!value.empty() && value != "all" && !known(value))
      return Status::Error(std::string(option) + ": '" + value + "' is neither a phase of this command (" +
                           join(phase_names) + ") nor a pass of its optimize phase (" + join(state.passes) + ")");
  if (options_.stop_after == "all") return Status::Error("--stop-after needs a phase or pass name");
  return Status::Ok();
}

void CompilePipeline::progress_line(const std::string& line) {
  if (!progress_) return;
  std::fprintf(stderr, "%s  %s\n", phase_line_open_ ? "\n" : "", line.c_str());
  std::fflush(stderr);
  phase_line_open_ = false;
}

void CompilePipeline::progress_fraction(double done, double total, const char* unit) {
  if (!progress_ || total <= 0) return;
  const auto now = std::chrono::steady_clock::now();
  const double secs = std::chrono::duration<double>(now - phase_t0_).count();
  const bool tty = ::isatty(STDERR_FILENO) != 0;
  const double every = tty ? 0.25 : 3.0;
  if (secs < 1.0 || std::chrono::duration<double>(now - last_fraction_).count() < every) return;
  last_fraction_ = now;
  const double rate = done / secs, left = rate > 0 ? (total - done) / rate : 0;
  char rate_text[48];
  if (std::string(unit) == "B")
    std::snprintf(rate_text, sizeof(rate_text), "%.0f MB/s", rate / 1e6);
  else
    std::snprintf(rate_text, sizeof(rate_text), "%.1f %s/s", rate, unit);
  char line[160];
  std::snprintf(line, sizeof(line), "%3.0f%%, %s, ETA %.0f s", 100.0 * done / total, rate_text, left);
  if (tty) {
    std::fprintf(stderr, "\r\033[K%s ... %s", phase_head_.c_str(), line);
  } else {
    std::fprintf(stderr, "%s  %s: %s\n", phase_line_open_ ? "\n" : "", phase_head_.c_str(), line);
    phase_line_open_ = false;
  }
  fraction_shown_ = true;
  std::fflush(stderr);
}

StatusOr<bool> CompilePipeline::run(CompileState& state, const std::string& last) {
  INGOT_RETURN_IF_ERROR(check_options(state, last));
  state.progress = [this](double done, double total, const char* unit) { progress_fraction(done, total, unit); };
  const size_t count = static_cast<size_t>(
      std::find_if(phases_.begin(), phases_.end(), [&](const Phase& p) { return p.name == last; }) - phases_.begin() + 1);
  for (size_t i = 0; i < count; ++i) {
    Phase& phase = phases_[i];
    const auto t0 = std::chrono::steady_clock::now();
    phase_t0_ = last_fraction_ = t0;
    fraction_shown_ = false;
    phase_head_ = "[" + std::to_string(i + 1) + "/" + std::to_string(count) + "] " + phase.label(state);
    if (progress_) {
      std::fprintf(stderr, "[%zu/%zu] %s ...", i + 1, count, phase.label(state).c_str());
      std::fflush(stderr);
      phase_line_open_ = true;
    }
    const size_t ran_before = state.ran.size();
    // The optimize phase reports its passes itself (PassManagerOptions::on_pass).
    const bool snapshot_phase = options_.on_step && phase.name != "optimize";
    NodeSnapshot before;
    if (snapshot_phase && state.im.model) before = NodeSnapshot(state.model());
    StatusOr<std::string> summary = phase.run(state);
    if (!summary.ok()) {
      if (progress_ && phase_line_open_) std::fprintf(stderr, "\n");
      phase_line_open_ = false;
      return summary.status();
    }
    state.timings.emplace_back(phase.name, ms_since(t0));
    if (progress_ && fraction_shown_ && phase_line_open_ && ::isatty(STDERR_FILENO))
      std::fprintf(stderr, "\r\033[K%s ...", phase_head_.c_str());  // the fraction gives way to the result
    if (progress_ && !phase_line_open_)  // progress lines came between: say again which phase ends
      std::fprintf(stderr, "[%zu/%zu] %s: done in", i + 1, count, phase.label(state).c_str());
    if (progress_) std::fprintf(stderr, " %.0f ms%s%s\n", state.timings.back().second, summary->empty() ? "" : ", ", summary->c_str());
    phase_line_open_ = false;
    // The optimize phase lists its passes; the others list themselves.
    if (state.ran.size() == ran_before) state.ran.push_back(phase.name);
    if (snapshot_phase && state.im.model) {
      PassStats st;
      st.pass = phase.name;
      st.ms = state.timings.back().second;
      before.diff(state.model(), st, true);
      st.reported_change = st.added || st.removed || st.changed;
      options_.on_step(phase.name, phase.name, st, state.model());
    }
    if (options_.verify_each && state.im.model) {
      if (Status v = verify(state.model()); !v.ok())
        return v.with_context("the model fails verification after phase '" + phase.name + "'");
    }
    if (state.im.model && (options_.print_after == "all" || options_.print_after == phase.name))
      std::cerr << print_after_header("phase " + phase.name) << print_model(state.model(), options_.print) << std::flush;
    const bool stop_in_phase = phase.name == "optimize" && !options_.stop_after.empty() &&
                               std::find(state.passes.begin(), state.passes.end(), options_.stop_after) != state.passes.end();
    if (options_.stop_after == phase.name || stop_in_phase) return true;
  }
  return false;
}

}  // namespace ingot
