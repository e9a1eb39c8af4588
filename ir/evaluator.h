// The reference evaluator: runs any model on concrete inputs, carrying state across calls.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "ir/model.h"
#include "ir/status.h"
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

 private:
  const Model& model_;
  std::map<std::string, Tensor> state_;
  Observer observer_;
};

}  // namespace ingot
