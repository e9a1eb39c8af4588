// The compiler as one flat list of named phases:
//
//   import -> quantize -> optimize -> plan-memory -> kernels -> schedule -> bundle
//
// `ingotc compile` runs them all (the last three with -o); check, dump, eval and summary run a
// prefix, through the same code. --print-after, --stop-after and --verify-each take a phase name
// or the name of a pass of the optimize phase, so any stage of any command can be inspected;
// what ran is recorded (a bundle's provenance lists it).
#pragma once

#include <chrono>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "frontend/importer.h"
#include "ir/memory_plan.h"
#include "ir/model.h"
#include "base/status.h"
#include "ir/text.h"
#include "passes/pass_manager.h"
#include "passes/quant/quantize_weights.h"
#include "tools/compile_command.h"

namespace ingot {

// Every phase, in order.
const std::vector<std::string>& compile_phases();

// Inspection options, for every phase and for each pass of the optimize phase.
struct PhaseOptions {
  std::string print_after{};  // a phase or pass name, or "all": the IR after it, on stderr
  std::string stop_after{};   // a phase or pass name: nothing runs after it
  bool verify_each = false; // the verifier after every phase and pass; a failure names it
  bool stats = false;       // pass statistics on stderr
  bool debug_match = false; // pattern-match explanations on stderr
  PrintOptions print{};
  // Called after every phase and every pass of the optimize phase that ran, with the phase's name,
  // the step's name (the phase again, or the pass), what it changed (node counts and names, from
  // NodeSnapshot before and after it: passes/pass_manager.h) and the model it left. `ingotc viz`
  // keeps these snapshots for its per-pass diff.
  std::function<void(const std::string& phase, const std::string& step, const PassStats&, const Model&)> on_step{};
  bool any() const { return !print_after.empty() || !stop_after.empty() || stats || verify_each || debug_match; }
};

// Consumes one of --print-after=X, --stop-after=X, --verify-each, --stats, --debug-match at
// args[i]; false if args[i] is not one.
bool parse_phase_option(const std::vector<std::string>& args, size_t& i, PhaseOptions& o, std::string* error);

// What the phases read and produce.
struct CompileState {
  // Read by import and quantize.
  std::string path;       // a GGUF, a Hugging Face folder, "demo", or an IR text file (.ir)
  ImportOptions import;   // act_quant as import_act_quant() resolves it
  QuantCliOptions quant;
  std::vector<std::string> passes;  // the optimize phase's pipeline (default_pipeline() unless set)
  int64_t max_batch = 512;          // plan-memory

  // Produced.
  ImportedModel im;                 // im.model is the graph every phase works on
  std::unique_ptr<QuantizeWeightsPass> quantizer;  // its decisions and report
  std::string pass_stats;           // with PhaseOptions::stats
  std::optional<MemoryPlan> plan;
  std::vector<std::string> ran;     // the phases and passes that ran, in order
  std::vector<std::pair<std::string, double>> timings;  // milliseconds per phase that ran
  // Set by CompilePipeline::run: a phase reports how far it is (CompilePipeline::progress_fraction).
  std::function<void(double done, double total, const char* unit)> progress;

  Model& model() { return *im.model; }
  double phase_ms(const std::string& phase) const {
    for (auto& [name, ms] : timings)
      if (name == phase) return ms;
    return 0;
  }
};

// One phase: its name, a label for progress ("quantize weights (q4_0, ...)"), and its work, which
// returns a one-line summary.
struct Phase {
  std::string name;
  std::function<std::string(const CompileState&)> label;
  std::function<StatusOr<std::string>(CompileState&)> run;
};

class CompilePipeline {
 public:
  // The graph phases, import to plan-memory; a command appends the others it needs.
  explicit CompilePipeline(PhaseOptions options);
  void add(Phase phase) { phases_.push_back(std::move(phase)); }

  // Progress lines ("[2/6] quantize weights ... 130 ms, ...") on stderr, for long commands.
  void show_progress(bool on) { progress_ = on; }
  // A line of progress inside the running phase (one tier's kernels compiled), on stderr when
  // progress is shown; the phase's closing line then repeats its label. Not thread-safe: callers
  // on several threads serialize.
  void progress_line(const std::string& line);
  // How far the running phase is (done of total, in `unit`: "B" for bytes, "" for items), shown
  // with its rate and the time left once the phase has run for a second: rewritten in place on a
  // terminal, a line every few seconds otherwise. Not thread-safe.
  void progress_fraction(double done, double total, const char* unit);

  // Runs the phases in order up to and including `last` (a phase name), or fewer with
  // stop_after. An unknown phase or pass name in the options is an error before anything runs.
  // Returns whether stop_after stopped it (at a phase or pass it names).
  StatusOr<bool> run(CompileState& state, const std::string& last);
  // The same checks of the option names, alone (a command reports them as usage errors).
  Status check_options(CompileState& state, const std::string& last) const;

 private:
  PhaseOptions options_;
  std::vector<Phase> phases_;
  bool progress_ = false;
  bool phase_line_open_ = false;  // "[i/n] label ..." printed, its end not yet
  std::string phase_head_;        // "[i/n] label" of the running phase
  std::chrono::steady_clock::time_point phase_t0_, last_fraction_;
  bool fraction_shown_ = false;   // a fraction was printed for the running phase
};

}  // namespace ingot
