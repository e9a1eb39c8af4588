// The memory-planning pass: liveness over the execution order, every activation at an offset in
// one arena sized for max_batch tokens per call, in-place reuse for element-wise ops, the state
// (KV cache) in a second arena. The plan (ir/memory_plan.h) is stored on the model.
//
//   INGOT_ASSIGN_OR_RETURN(MemoryPlan plan, plan_memory(model, MemoryPlanOptions{.max_batch = 512}));
//   std::cout << memory_plan_report(plan);
#pragma once

#include <cstdint>
#include <memory>

#include "ir/memory_plan.h"
#include "ir/model.h"
#include "base/status.h"
#include "passes/pass_manager.h"

namespace ingot {

struct MemoryPlanOptions {
  int64_t max_batch = 512;  // the most tokens one call takes (a prompt chunk)
  int64_t alignment = 64;   // of every offset and size; a power of two
  bool in_place = true;     // let eligible element-wise ops overwrite an input that dies there
};

// Plans the model as it is; the context bound comes from its state variables' max_shape[0].
// Errors: a value whose size cannot be bounded (an unknown dimension, a symbol other than
// tokens and past), bad options, a graph without a topological order.
StatusOr<MemoryPlan> plan_memory(const Model& m, const MemoryPlanOptions& options = {});

// "memory-planning": plans with these options and stores the plan on the model (the nodes do
// not change, so the pass reports no change).
std::unique_ptr<Pass> create_memory_planning_pass();
std::unique_ptr<Pass> create_memory_planning_pass(const MemoryPlanOptions& options);

}  // namespace ingot
