#include "ir/evaluator.h"

#include <algorithm>
#include <unordered_map>

#include "ir/ops.h"

namespace ingot {

// Binds plain symbols of `declared` from `actual` and checks every dim under the bindings.
static Status bind_and_check(const Node& n, int out_index, const TensorType& declared, const Tensor& actual,
                             SymbolBindings& symbols) {
  std::string where = std::string(n.op_name()) + " '" + n.name + "' output " + std::to_string(out_index);
  if (actual.type() != declared.type)
    return Status::Error(where + ": kernel produced " + std::string(type_name(actual.type())) + ", type says " +
                         declared.str());
  if (actual.rank() != static_cast<int64_t>(declared.shape.size()))
    return Status::Error(where + ": kernel produced shape " + dims_str(actual.shape()) + ", type says " + declared.str());
  for (size_t d = 0; d < declared.shape.size(); ++d) {
    const Dim& dim = declared.shape[d];
    if (dim.is_symbol() && !symbols.count(dim.symbol_name())) symbols[dim.symbol_name()] = actual.shape()[d];
  }
  for (size_t d = 0; d < declared.shape.size(); ++d) {
    const Dim& dim = declared.shape[d];
    if (dim.is_unknown()) continue;
    auto v = dim.evaluate(symbols);
    if (!v) continue;  // a symbol no input binds: nothing to check against
    if (*v != actual.shape()[d]) {
      std::string bound;
      for (auto& [k, val] : symbols) bound += " " + k + "=" + std::to_string(val);
      return Status::Error(where + ": dimension " + std::to_string(d) + " is " + std::to_string(actual.shape()[d]) +
                           " but the type says " + dim.str() + " =" + std::to_string(*v) + " (bound:" + bound + ")");
    }
  }
  return Status::Ok();
}

StatusOr<std::vector<Tensor>> Evaluator::run(const std::map<std::string, Tensor>& inputs) {
  INGOT_ASSIGN_OR_RETURN(std::vector<Node*> order, model_.topological_order());
  // Parameters and ReadValues go first: they bind the symbols ("tokens", "past") that other
  // nodes' attributes use. They have no inputs, so the order stays topological.
  {
    std::vector<Node*> sources, rest;
    for (Node* n : order) (n->is("Parameter") || n->is("ReadValue") ? sources : rest).push_back(n);
    sources.insert(sources.end(), rest.begin(), rest.end());
    order = std::move(sources);
  }
  for (auto& [name, t] : inputs) {
    Node* p = model_.find(name);
    if (!p || !p->is("Parameter")) return Status::Error("input '" + name + "' is not a parameter of the model");
  }
  SymbolBindings symbols;
  std::map<std::string, Tensor> next_state = state_;
  EvalContext ctx{&symbols, &inputs, &state_, &next_state, &model_};
  std::unordered_map<const Node*, std::vector<Tensor>> values;
  // Counts remaining users so intermediate values are freed as soon as possible.
  std::unordered_map<const Node*, int> remaining;
  for (Node* n : order)
    for (auto& v : n->inputs) ++remaining[v.node];

  // Results come back in model (creation) order, whatever order they execute in.
  std::unordered_map<const Node*, size_t> result_slot;
  for (Node* r : model_.results()) result_slot.emplace(r, result_slot.size());
  std::vector<Tensor> results(result_slot.size());
  for (Node* n : order) {
    std::vector<Tensor> in;
    in.reserve(n->inputs.size());
    for (auto& v : n->inputs) in.push_back(values.at(v.node).at(static_cast<size_t>(v.index)));
    std::vector<Tensor> out;
    Status st = n->op().eval(*n, ctx, in, out);
    if (!st.ok()) return st.with_context(std::string(n->op_name()) + " '" + n->name + "'");
    if (out.size() != n->outputs.size())
      return Status::Error(std::string(n->op_name()) + " '" + n->name + "': kernel produced " +
                           std::to_string(out.size()) + " outputs, expected " + std::to_string(n->outputs.size()));
    for (size_t i = 0; i < out.size(); ++i)
      INGOT_RETURN_IF_ERROR(bind_and_check(*n, static_cast<int>(i), n->outputs[i], out[i], symbols));
    if (observer_) observer_(*n, out);
    if (n->is("Result")) results[result_slot.at(n)] = out[0];
    values[n] = std::move(out);
    for (auto& v : n->inputs)
      if (--remaining[v.node] == 0) values.erase(v.node);
  }
  // A state variable may never outgrow its declared maximum: that memory is all a runtime has.
  for (auto& [name, t] : next_state) {
    const StateVariable* var = model_.find_variable(name);
    if (!var) return Status::Error("state variable '" + name + "' is not declared");
    bool fits = t.rank() == static_cast<int64_t>(var->max_shape.size());
    for (int64_t d = 0; fits && d < t.rank(); ++d) fits = t.shape()[d] <= var->max_shape[d];
    if (!fits)
      return Status::Error("state variable '" + name + "' would hold " + dims_str(t.shape()) + ", more than its maximum " +
                           dims_str(var->max_shape) + " (the context is full)");
  }
  // State is committed only after the whole call succeeded.
  state_ = std::move(next_state);
  return results;
}

}  // namespace ingot
