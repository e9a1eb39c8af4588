// The reference evaluator: runs any model on concrete inputs, carrying state across calls.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ir/memory_plan.h"
#include "ir/model.h"
#include "base/status.h"
#include "ir/tensor.h"

namespace ingot {

class Evaluator {
 public:
  // The model must outlive the evaluator and stay unchanged while it is used.
  explicit Evaluator(const Model& model) : model_(model) {}

  // Runs one call. `inputs` maps Parameter names to tensors. Returns the Results in model order.
  // State variables start empty (symbolic dims 0) and are updated by Assign at the end of a
  // successful call. Every node's computed shape is checked against its inferred type.
  StatusOr<std::vector<Tensor>> run(const std::map<std::string, Tensor>& inputs);

  void reset_state() { state_.clear(); }
  const std::map<std::string, Tensor>& state() const { return state_; }
  void set_state(std::map<std::string, Tensor> s) { state_ = std::move(s); }

  // Called after each node with its outputs (for dumps and accuracy reports).
  using Observer = std::function<void(const Node&, const std::vector<Tensor>&)>;
  void set_observer(Observer o) { observer_ = std::move(o); }

  // Runs the following calls on the arena of `plan` (null: back to separate tensors), to test the
  // plan: the nodes run in the plan's order; the inputs are copied into their buffers first; every
  // output is written at its planned offset of one byte arena and every input read back from
  // there; and, with `garbage`, after every step each arena byte that no live buffer holds is
  // overwritten with 0xFF (NaN for floats, -1 for integers). Results are read from the arena after
  // the last step. A correct plan gives bitwise the results of a normal run; a wrong one differs
  // or fails. The plan is not checked first (check_memory_plan does that); a buffer too small for
  // a value is an error.
  void set_memory_plan(std::shared_ptr<const MemoryPlan> plan, bool garbage = true) {
    plan_ = std::move(plan);
    garbage_ = garbage;
  }

 private:
  StatusOr<std::vector<Tensor>> run_planned(const std::map<std::string, Tensor>& inputs);
  Status commit_state(std::map<std::string, Tensor> next_state);

  const Model& model_;
  std::map<std::string, Tensor> state_;
  Observer observer_;
  std::shared_ptr<const MemoryPlan> plan_;
  bool garbage_ = true;
};

}  // namespace ingot
