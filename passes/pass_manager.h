// Passes, the pass registry and the pass manager that runs a pipeline of them.
//
//   PassManager pm(PassManagerOptions{.verify_each = true});
//   INGOT_RETURN_IF_ERROR(pm.add_pipeline(default_pipeline()));
//   INGOT_ASSIGN_OR_RETURN(bool changed, pm.run(model));
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ir/model.h"
#include "base/status.h"
#include "ir/text.h"

namespace ingot {

// A transformation of a whole model. It must keep the model valid (the verifier passes after it)
// and its results unchanged, and be deterministic: same input text, same output text and names.
class Pass {
 public:
  virtual ~Pass() = default;
  virtual const char* name() const = 0;
  // Returns whether it changed the model.
  virtual StatusOr<bool> run(Model& m) = 0;
};

// ---------------------------------------------------------------- registry (passes/registry.cpp)

struct PassInfo {
  const char* name;     // as given to --passes: "constant-folding"
  const char* summary;  // one line for help texts
  std::unique_ptr<Pass> (*create)();
};

// Every pass, in the order of the table in passes/registry.cpp.
std::span<const PassInfo> registered_passes();
// The pass registered under `name`; an error listing the known passes otherwise.
StatusOr<std::unique_ptr<Pass>> create_pass(std::string_view name);
// "constant-folding, cse, dce, simplify": for error messages and help.
std::string known_pass_names();
// The pipeline of `ingotc dump --stage optimized` and the compiler.
std::vector<std::string> default_pipeline();

// ---------------------------------------------------------------- the pass manager

struct PassStats;

// Every member has an initializer, so designated initializers may name only what they set:
// PassManagerOptions{.verify_each = true}.
struct PassManagerOptions {
  bool verify_each = false;              // run the verifier after every pass; a failure names the pass
  std::string print_after{};             // a pass name, or "all": print the IR after it...
  std::ostream* print_stream = nullptr;  // ...to this stream (std::cerr when null)
  PrintOptions print_options{};
  std::string stop_after{};              // stop the pipeline after the first pass of this name
  bool stats = false;                    // collect PassStats (wall time, node changes)
  std::ostream* debug_match = nullptr;   // pattern match failures and rewrites go here
  // Called after every pass with its statistics, the names of the nodes it added, removed and
  // changed filled in (PassStats::added_nodes...), and the model as the pass left it: the
  // per-pass snapshots of `ingotc viz` come from here.
  std::function<void(const PassStats&, const Model&)> on_pass{};
};

// What one pass did. Nodes are compared by identity (the same node object under the same name)
// and, for nodes present before and after, by a signature of op, inputs, attributes, types and
// constant data: "changed" counts nodes whose signature differs.
struct PassStats {
  std::string pass{};
  double ms = 0;
  bool reported_change = false;  // what the pass returned
  int nodes_before = 0, nodes_after = 0;
  int added = 0, removed = 0, changed = 0;
  // With PassManagerOptions::on_pass (or NodeSnapshot::diff with names): the nodes themselves,
  // by name, in the model's node order (removed ones in the order they had before).
  std::vector<std::string> added_nodes{}, removed_nodes{}, changed_nodes{};
};

// The nodes of a model at one moment, by identity (object and name) with a signature of each,
// so that a later state of the same model can be compared with it (PassStats's counts and names).
class NodeSnapshot {
 public:
  NodeSnapshot() = default;
  explicit NodeSnapshot(const Model& m);
  // Fills st's counts (and, with names, its node lists) for `after` against this snapshot.
  void diff(const Model& after, PassStats& st, bool names) const;
  bool empty() const { return nodes_.empty(); }

 private:
  struct Entry {
    size_t signature = 0;
    size_t order = 0;
  };
  std::map<std::pair<const Node*, std::string>, Entry> nodes_;
};

class PassManager {
 public:
  explicit PassManager(PassManagerOptions options = {}) : options_(std::move(options)) {}

  // Appends a registered pass; an error listing the known passes for an unknown name.
  Status add(std::string_view name);
  Status add_pipeline(const std::vector<std::string>& names);
  // Appends any pass (tests, passes that are not registered).
  void add(std::unique_ptr<Pass> pass);

  // Runs the passes in order, honouring the options. Returns whether any pass changed the model.
  // A pass error, or a verifier failure with verify_each, names the pass and stops the run.
  StatusOr<bool> run(Model& m);

  const std::vector<PassStats>& stats() const { return stats_; }
  // The passes the last run() ran, in order (fewer than passes() after stop_after or an error).
  const std::vector<std::string>& ran() const { return ran_; }
  // A table of stats(), one line per pass run, and a total.
  std::string stats_report() const;
  const std::vector<std::unique_ptr<Pass>>& passes() const { return passes_; }

 private:
  Status check_options() const;
  PassManagerOptions options_;
  std::vector<std::unique_ptr<Pass>> passes_;
  std::vector<PassStats> stats_;
  std::vector<std::string> ran_;
};

// The header printed before the IR after a pass.
std::string print_after_header(std::string_view pass);

}  // namespace ingot
