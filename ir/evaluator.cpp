#include "ir/evaluator.h"

#include <algorithm>
#include <cstring>
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
  if (plan_) return run_planned(inputs);
  INGOT_ASSIGN_OR_RETURN(std::vector<Node*> order, model_.topological_order());
  // Parameters and ReadValues go first: they bind the symbols ("tokens", "past") that other
  // nodes' attributes use. They have no inputs, so the order stays topological.
  {
    std::vector<Node*> sources, rest;
    for (Node* n : order) (n->is(Op::Parameter) || n->is(Op::ReadValue) ? sources : rest).push_back(n);
    sources.insert(sources.end(), rest.begin(), rest.end());
    order = std::move(sources);
  }
  for (auto& [name, t] : inputs) {
    Node* p = model_.find(name);
    if (!p || !p->is(Op::Parameter)) return Status::Error("input '" + name + "' is not a parameter of the model");
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
    if (n->is(Op::Result)) results[result_slot.at(n)] = out[0];
    values[n] = std::move(out);
    for (auto& v : n->inputs)
      if (--remaining[v.node] == 0) values.erase(v.node);
  }
  INGOT_RETURN_IF_ERROR(commit_state(std::move(next_state)));
  return results;
}

Status Evaluator::commit_state(std::map<std::string, Tensor> next_state) {
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
  return Status::Ok();
}

StatusOr<std::vector<Tensor>> Evaluator::run_planned(const std::map<std::string, Tensor>& inputs) {
  const MemoryPlan& plan = *plan_;
  using Buffer = MemoryPlan::Buffer;
  std::unordered_map<std::string, Node*> by_name;
  for (const auto& n : model_.nodes()) by_name[n->name] = n.get();
  std::vector<Node*> order;
  for (const std::string& name : plan.order) {
    auto it = by_name.find(name);
    if (it == by_name.end()) return Status::Error("memory plan: the order names '" + name + "', which is not in the model");
    order.push_back(it->second);
  }
  if (order.size() != model_.nodes().size())
    return Status::Error("memory plan: the order has " + std::to_string(order.size()) + " nodes, the model " +
                         std::to_string(model_.nodes().size()));
  std::map<std::pair<const Node*, int>, const Buffer*> buffers;
  for (const Buffer& b : plan.buffers) {
    auto it = by_name.find(b.node);
    if (it == by_name.end()) return Status::Error("memory plan: a buffer names '" + b.node + "', which is not in the model");
    buffers[{it->second, b.output}] = &b;
  }
  for (auto& [name, t] : inputs) {
    auto it = by_name.find(name);
    if (it == by_name.end() || !it->second->is(Op::Parameter))
      return Status::Error("input '" + name + "' is not a parameter of the model");
  }
  if (plan.arena_bytes < 0) return Status::Error("memory plan: negative arena size");

  SymbolBindings symbols;
  std::map<std::string, Tensor> next_state = state_;
  EvalContext ctx{&symbols, &inputs, &state_, &next_state, &model_};
  auto fail_at = [](const Node& n, const Status& st) { return st.with_context(std::string(n.op_name()) + " '" + n.name + "'"); };

  // Parameters and ReadValues first: they bind the symbols ("tokens", "past") that other nodes'
  // attributes use.
  std::unordered_map<const Node*, std::vector<Tensor>> sources;
  for (Node* n : order) {
    if (!n->is(Op::Parameter) && !n->is(Op::ReadValue)) continue;
    std::vector<Tensor> out;
    Status st = n->op().eval(*n, ctx, {}, out);
    if (!st.ok()) return fail_at(*n, st);
    for (size_t i = 0; i < out.size(); ++i)
      INGOT_RETURN_IF_ERROR(bind_and_check(*n, static_cast<int>(i), n->outputs[i], out[i], symbols));
    sources[n] = std::move(out);
  }

  std::vector<uint8_t> arena(static_cast<size_t>(plan.arena_bytes), 0xFF);
  std::unordered_map<const Node*, std::vector<Tensor>> constants;
  std::map<std::pair<const Node*, int>, std::vector<int64_t>> shapes;  // of the values now in the arena
  auto buffer_of = [&](const Node* n, int i) -> StatusOr<const Buffer*> {
    auto it = buffers.find({n, i});
    if (it == buffers.end())
      return Status::Error("memory plan: " + std::string(n->op_name()) + " '" + n->name + "' output " + std::to_string(i) +
                           " has no buffer");
    const Buffer* b = it->second;
    if (b->offset < 0 || b->bytes < 0 || b->offset > plan.arena_bytes - b->bytes)
      return Status::Error("memory plan: the buffer of '" + n->name + "' lies outside the arena");
    return b;
  };
  auto store = [&](const Node* n, int i, const Tensor& t) -> Status {
    INGOT_ASSIGN_OR_RETURN(const Buffer* b, buffer_of(n, i));
    if (static_cast<int64_t>(t.nbytes()) > b->bytes)
      return Status::Error("memory plan: " + std::string(n->op_name()) + " '" + n->name + "' output " + std::to_string(i) +
                           " has " + std::to_string(t.nbytes()) + " bytes, its buffer " + std::to_string(b->bytes));
    if (t.nbytes() > 0) std::memcpy(arena.data() + b->offset, t.raw(), t.nbytes());
    shapes[{n, i}] = t.shape();
    return Status::Ok();
  };
  auto load = [&](const Value& v) -> StatusOr<Tensor> {
    if (v.node->is(Op::Constant)) return constants.at(v.node).at(static_cast<size_t>(v.index));
    INGOT_ASSIGN_OR_RETURN(const Buffer* b, buffer_of(v.node, v.index));
    auto it = shapes.find({v.node, v.index});
    if (it == shapes.end()) return Status::Error("memory plan: '" + v.node->name + "' is read before it is written");
    Tensor t = Tensor::zeros(v.type().type, it->second);
    if (static_cast<int64_t>(t.nbytes()) > b->bytes) return Status::Error("memory plan: the buffer of '" + v.node->name + "' is too small");
    if (t.nbytes() > 0) std::memcpy(t.mutable_raw(), arena.data() + b->offset, t.nbytes());
    return t;
  };
  // Garbage in every byte that no buffer live after `step` holds.
  auto scrub = [&](int step) {
    std::vector<std::pair<int64_t, int64_t>> keep;
    for (const Buffer& b : plan.buffers)
      if (b.first_step <= step && step < b.last_step) keep.push_back({b.offset, b.offset + b.bytes});
    std::sort(keep.begin(), keep.end());
    int64_t at = 0;
    for (auto [begin, end] : keep) {
      if (begin > at) std::memset(arena.data() + at, 0xFF, static_cast<size_t>(begin - at));
      at = std::max(at, end);
    }
    if (at < plan.arena_bytes) std::memset(arena.data() + at, 0xFF, static_cast<size_t>(plan.arena_bytes - at));
  };

  // The runtime copies the inputs into the arena before the first step.
  for (Node* n : order)
    if (n->is(Op::Parameter)) INGOT_RETURN_IF_ERROR(store(n, 0, sources.at(n)[0]));

  std::vector<Node*> result_nodes;
  for (size_t s = 0; s < order.size(); ++s) {
    Node* n = order[s];
    std::vector<Tensor> out;
    if (sources.count(n)) {
      out = sources.at(n);
    } else {
      std::vector<Tensor> in;
      in.reserve(n->inputs.size());
      for (const Value& v : n->inputs) {
        INGOT_ASSIGN_OR_RETURN(Tensor t, load(v));
        in.push_back(std::move(t));
      }
      Status st = n->op().eval(*n, ctx, in, out);
      if (!st.ok()) return fail_at(*n, st);
    }
    if (out.size() != n->outputs.size())
      return Status::Error(std::string(n->op_name()) + " '" + n->name + "': kernel produced " +
                           std::to_string(out.size()) + " outputs, expected " + std::to_string(n->outputs.size()));
    for (size_t i = 0; i < out.size(); ++i)
      INGOT_RETURN_IF_ERROR(bind_and_check(*n, static_cast<int>(i), n->outputs[i], out[i], symbols));
    if (observer_) observer_(*n, out);
    if (n->is(Op::Constant)) {
      constants[n] = std::move(out);
    } else if (!n->is(Op::Parameter)) {
      for (size_t i = 0; i < out.size(); ++i) INGOT_RETURN_IF_ERROR(store(n, static_cast<int>(i), out[i]));
    }
    if (n->is(Op::Result)) result_nodes.push_back(n);
    if (garbage_ && s + 1 < order.size()) scrub(static_cast<int>(s));
  }
  // Results stay live to the end: read them back only now.
  std::vector<Tensor> results;
  for (Node* n : result_nodes) {
    INGOT_ASSIGN_OR_RETURN(Tensor t, load(n->out(0)));
    results.push_back(std::move(t));
  }
  INGOT_RETURN_IF_ERROR(commit_state(std::move(next_state)));
  return results;
}

}  // namespace ingot
