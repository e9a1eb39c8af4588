// The pass registry: one line per pass, and the default pipeline.
#include <algorithm>

#include "passes/fusion/fusion_passes.h"
#include "passes/generic_passes.h"
#include "passes/memory_planning.h"
#include "passes/pass_manager.h"

namespace ingot {

std::span<const PassInfo> registered_passes() {
  static const std::vector<PassInfo> kPasses = [] {
    std::vector<PassInfo> passes = {
        // name, summary, factory
        {"constant-folding", "evaluates nodes whose inputs are all constants (small results, or no bigger than the inputs)", create_constant_folding_pass},
        {"cse", "merges identical nodes and identical constants", create_cse_pass},
        {"dce", "removes nodes whose values nobody uses", create_dce_pass},
        {"memory-planning", "places every activation in one arena (max batch 512) and the state in another; stores the plan on the model", create_memory_planning_pass},
        {"simplify", "algebraic identities: x*1, x+0, reshape/transpose/convert chains, -(-x)", create_simplify_pass},
    };
    // The LLM fusions, one line each in passes/fusion/fusion_passes.cpp.
    for (const PassInfo& p : fusion::fusion_passes()) passes.push_back(p);
    return passes;
  }();
  return kPasses;
}

std::vector<std::string> default_pipeline() {
  std::vector<std::string> pipeline = {
      "simplify",          // identities first: they expose constants and duplicates
      "constant-folding",  // shape arithmetic and small constant subgraphs
      "cse",               // duplicate scalars (each RMS norm has its own 2.0 and eps), repeated subgraphs
      "simplify",          // identities that folding and merging exposed
      "dce",
  };
  // Then the LLM fusions in their order (passes/fusion/fusion_passes.cpp), and a final cleanup.
  for (const std::string& f : fusion::fusion_pipeline()) pipeline.push_back(f);
  pipeline.push_back("cse");
  pipeline.push_back("dce");
  return pipeline;
}

std::string known_pass_names() {
  std::string s;
  for (const PassInfo& p : registered_passes()) s += (s.empty() ? "" : ", ") + std::string(p.name);
  return s;
}

StatusOr<std::unique_ptr<Pass>> create_pass(std::string_view name) {
  for (const PassInfo& p : registered_passes())
    if (name == p.name) return p.create();
  return Status::Error("unknown pass '" + std::string(name) + "'; known passes: " + known_pass_names());
}

}  // namespace ingot
